"""Corroboration of attack findings: does the text have the shape of the attack it was flagged for?

Classifiers for jailbreaks and injections key on vocabulary, so the look-alikes of an attack score
like the attack: "What is a system prompt?", a CSV note saying "ignore the previous row". An attack
has a target the look-alike lacks — an extraction refers to *this* assistant's instructions; an
injection in data speaks to the assistant; a jailbreak sets up a persona, a game, or asks to drop
rules. A finding without such a shape is flagged for review instead of blocked (LlamaFirewall's
human-review state); the guard's other defences (spotlighting, canary, overlap) still apply.
These cues never flag anything by themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from safestack.judge.normalise import Normalised
from safestack.records import Trust


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE | re.MULTILINE)


_ROLE_MARKERS = r"""<\|?(?:im_start|im_end|system|endoftext)\|?> | \[/?(?:inst|sys)\] | <<sys>>
  | ^\s*\#{1,4}\s*(?:system|instruction|assistant)\b | ^\s*(?:system|assistant|developer)\s*:"""

# An extraction names the assistant's own instructions (not "a system prompt" in general).
EXTRACTION = _rx(
    rf"""\byour\s+(?:[\w-]+\s+){{0,3}}?(?:prompt|instructions?|rules|guidelines|directives|
          configuration|system\s+message|initial\s+message|context|setup|programming)\b
      | \byours\b
      | \b(?:the|this)\s+(?:system|developer|hidden|secret|initial|original|first)\s+
          (?:prompt|message|instructions?)\b
      | \b(?:above|preceding|previous|prior|earlier|initial|original|hidden|secret|confidential)\s+
          (?:instructions?|prompt|message|text|lines?|words|rules)\b
      | \b(?:everything|text|words|lines|all)\s+(?:above|before\s+(?:this|my))\b
      | \byou\s+(?:were|have\s+been|['’]ve\s+been|are|got)\s+(?:given|told|instructed|programmed|
          configured|initiali[sz]ed)\b
      | \bwhat\s+(?:were|are)\s+you\s+told\b
      | \b(?:verbatim|word\s+for\s+word|starting\s+with|begin(?:ning)?\s+with)\b
      | \b(?:print|repeat|reveal|show|output|dump|leak|recite|echo|spell\s+out|write\s+out)\s+
          (?:it|that|them|this|those)\b
      | {_ROLE_MARKERS}"""
)

# A direct injection tries to override the instructions or poses as privileged text.
DIRECT_INJECTION = _rx(
    rf"""\b(?:ignore|disregard|forget|override|overrule|bypass|skip)\b
      | \b(?:new|updated|real|actual|hidden|secret)\s+(?:system\s+)?(?:instructions?|prompt|task|rules)\b
      | \bfrom\s+now\s+on\b | \binstead\b | \b(?:admin|developer|debug|god|sudo)\s+mode\b
      | \b(?:print|say|output|respond\s+with|reply\s+with)\s+["'“‘]
      | {_ROLE_MARKERS}"""
)

# A jailbreak sets up a persona, a frame, or asks to drop the rules.
JAILBREAK = _rx(
    r"""\b(?:pretend|act(?:ing)?\s+as|role-?\s?play|imagine|simulate|persona|in\s+character|
          stay\s+in\s+character|let['’]s\s+play|game|hypothetical(?:ly)?|fiction(?:al)?|story|novel|
          screenplay|scenario|opposite|evil|unfiltered|uncensored|unrestricted|jailbr\w*|dan|
          developer\s+mode|god\s+mode|sudo|override|bypass|ignore|disregard|forget|
          never\s+refuse|always\s+(?:answer|comply)|can\s+do\s+anything|do\s+anything\s+now|
          grandm(?:a|other)|deceased|for\s+educational\s+purposes|no\s+longer\s+bound)\b
      | \byou\s+are\s+(?:now|no\s+longer|going\s+to\s+be|an?|my)\b | \byou['’]re\s+(?:now|an?|my)\b
      | \bfrom\s+now\s+on\b
      | \b(?:no|without(?:\s+any)?|free\s+(?:of|from))\s+(?:restrictions|rules|limits|limitations|
          filters|guidelines|ethics|morals|censorship|boundaries)\b"""
)

# Injected text in data speaks to the assistant, about its instructions, or about the user.
ADDRESSES_ASSISTANT = _rx(
    rf"""\b(?:ai|a\.i\.|assistant|chat\s?bot|bot|language\s+model|ai\s+model|llm|gpt|chatgpt|claude|
          gemini|copilot)\b
      | \b(?:instructions?|system\s+prompt|prompt|directives?|guardrails|guidelines)\b
      | \b(?:the\s+user|user['’]s|users['’]|the\s+human)\b
      | \byou\s+(?:must|should|will|need\s+to|have\s+to|shall|are\s+(?:now|required|instructed|to))\b
      | \b(?:from\s+now\s+on|new\s+task)\b | \binstead,?\s+(?:you|do|say|write|respond|reply|tell)\b
      | \b(?:ignore|disregard|forget|override)\s+(?:everything|all|anything|the\s+above|what\b|your)
      | \b(?:respond|reply|answer)\s+(?:only\s+)?with\b | \bsay\s+["'“‘]
      | !\[[^\]]*\]\(https?:// | {_ROLE_MARKERS}"""
)

_USER_SHAPES = {
    "jailbreak": JAILBREAK,
    "prompt-injection": DIRECT_INJECTION,
    "system-prompt-extraction": EXTRACTION,
}


def shape_for(category: str, trust: Trust) -> re.Pattern[str] | None:
    """The cue an attack finding needs in text of this trust level; None: nothing to corroborate."""
    if trust is Trust.UNTRUSTED:
        return ADDRESSES_ASSISTANT
    return _USER_SHAPES.get(category)


def corroborated(category: str, trust: Trust, texts: Iterable[Normalised]) -> bool:
    """True when the text (any of its normalised views) has the attack's shape."""
    shape = shape_for(category, trust)
    if shape is None:
        return True
    for normalised in texts:
        for view in normalised.views():
            if shape.search(view.text) or shape.search(view.folded):
                return True
    return False
