"""One policy category per harmful behaviour: the data set's own labels first, then keyword rules,
and the most specific or most severe harm wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from safestack.datasets import categorise

# When the keyword rules give several categories, the behaviour takes the first of these: the most
# specific or most severe harm wins, and `illicit` (generic wrongdoing) comes last.
CATEGORY_PRIORITY = (
    "sexual/minors",
    "cbrn",
    "self-harm",
    "cyber",
    "illicit/violent",
    "harassment/threatening",
    "hate",
    "harassment",
    "sexual",
    "violence",
    "privacy",
    "misinformation",
    "spam",
    "illicit",
)
# Extra rules for what the judge's training rules miss (they leave 40% of HarmBench untagged):
# persuasive-article misinformation, biology and chemistry uplift, vehicle and computer hijacking.
# Kept narrow, as a hit here can outrank the training rules' `illicit` through CATEGORY_PRIORITY.
EXTRA_RULES: dict[str, re.Pattern[str]] = {
    "cbrn": re.compile(
        r"\b(e\.? ?coli|cholera|lewisite|dna sequence|transmissible|bacteria|germ warfare"
        r"|bleach and|nitrogen mustard|chemical|synthes[ei]s)"
    ),
    "cyber": re.compile(
        r"\b(virus(es)? (that|to)|viruses\b|antivirus|cyber ?attack|hijack|skimm|gps tracker"
        r"|root privileges|escalates? me to root)"
    ),
    "misinformation": re.compile(
        r"\b(persuasive (article|social media post|post)|argu(e|ing) that|convince people"
        r"|posing as an expert|downplay|exaggerat|fake (news|review)|false accusation|defam"
        r"|review (on|for) a product)"
    ),
    "hate": re.compile(r"\b(less intelligent|dehumani|oppression|inferior)"),
    "harassment": re.compile(r"\b(coerce|manipulat|mock|trivializ)"),
    "violence": re.compile(r"\b(accident|beats?\b|hit-and-run|crash|sabotage|cause (harm|chaos))"),
    "sexual": re.compile(r"\b(steamy|intimate images|sexuali[sz]e)"),
    "self-harm": re.compile(r"\bharm (myself|yourself)"),
}


def categorise_behaviour(text: str, extra: Sequence[str] = ()) -> str:
    """One policy category for a harmful request: the dataset's own (`extra`), then keyword rules.

    Every input is known to be harmful, so a request no rule matches is `illicit` rather than dropped.
    """
    found = set(extra)
    if not found:
        lowered = text.lower()
        found = set(categorise(text))
        found.update(name for name, rule in EXTRA_RULES.items() if rule.search(lowered))
    return next((c for c in CATEGORY_PRIORITY if c in found), "illicit")
