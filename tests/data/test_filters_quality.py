"""The quality filter: each Gopher rule, the spam rules and language id, on crafted documents."""

from __future__ import annotations

import hashlib

import pytest

from safestack.data.document import Document
from safestack.data.filters.quality import QualityFilter, check_quality
from safestack.policy import default_policy

ARTICLE = """The honey bee is a eusocial flying insect within the genus Apis. Honey bees are known for their construction of perennial colonies from wax, for the large size of their colonies, and for their production of honey.

A colony typically consists of one queen, several thousand drones and tens of thousands of female worker bees. Workers carry out the tasks of the hive, from cleaning cells and feeding larvae to foraging for nectar and pollen.

Honey bees communicate the location of food sources through the waggle dance, in which the direction and duration of the dance indicate the direction and distance of the flowers relative to the sun."""

LIMITS = default_policy().data.quality


def _rule(text: str) -> str | None:
    failure = check_quality(text, LIMITS)
    return None if failure is None else failure.rule


def test_normal_article_passes() -> None:
    assert _rule(ARTICLE) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Too short to be a document at all.", "gopher_word_count"),
        (" ".join(["the cat and the dog"] * 8 + ["a"] * 60), "gopher_mean_word_length"),
        (ARTICLE + " #tag" * 40, "gopher_symbol_word_ratio"),
        (
            "\n".join(f"- the item {i} of the list and the other" for i in range(30)),
            "gopher_bullet_lines",
        ),
        (
            "\n".join(
                f"The story number {i} of the day was about the bees and the honey and then..."
                for i in range(30)
            ),
            "gopher_ellipsis_lines",
        ),
        (ARTICLE + " " + " ".join(["123", "4.5", "--", "%%"] * 60), "gopher_alpha_words"),
        (
            " ".join(
                f"Honeybees gather pollen from flowers {i}; this colony is from a hive near "
                "orchards, it is small, as colonies are, for sure."
                for i in range(4)
            ),
            "gopher_stop_words",
        ),
        (
            ("The same line of text, with the bees and the honey.\n" * 10) + ARTICLE,
            "repetition_dup_line_frac",
        ),
    ],
)
def test_each_gopher_rule_triggers(text: str, rule: str) -> None:
    assert _rule(text) == rule


def test_repeated_ngrams_trigger() -> None:
    repeated = "the queen and the drones of the hive fly over the meadow"
    text = ARTICLE + " " + " ".join([repeated] * 6)
    assert (_rule(text) or "").startswith("repetition_")


def test_keyword_stuffing_links_and_boilerplate() -> None:
    words = ARTICLE.split()
    stuffing = " ".join(w + (" casino" if i % 4 == 0 else "") for i, w in enumerate(words))
    assert _rule(stuffing) == "keyword_stuffing"
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(30)]
    links = (
        ARTICLE
        + "\n"
        + "\n".join(
            f"[{w} {x}](https://{d[:8]}.test/{d[8:16]})"
            for d, w, x in zip(digests, ARTICLE.split()[::3], ARTICLE.split()[1::3], strict=False)
        )
    )
    assert _rule(links) == "link_density"


def test_boilerplate_lines() -> None:
    nav = [
        "Home",
        "About us",
        "Contact us",
        "Privacy policy",
        "Cookie settings",
        "Sign in",
        "Back to top",
        "Sitemap",
        "Subscribe to our newsletter",
        "Follow us on Facebook",
        "Share on Twitter",
        "Terms of use",
        "© 2024 All rights reserved",
        "Log in",
    ]
    prose = ARTICLE.replace("\n\n", "\n").split("\n")
    assert _rule("\n".join([*nav[:7], *prose, *nav[7:]])) == "boilerplate"
    assert _rule("\n".join([*nav[:2], *prose])) is None


def test_language_other_than_allowed_is_removed() -> None:
    german = (
        "Der Stadtrat hat am Dienstag beschlossen, das Busnetz auf die neuen Wohngebiete am "
        "östlichen Stadtrand auszuweiten. Die Anwohner hatten sich seit Jahren dafür eingesetzt. "
        "Für den Kuchen braucht man zweihundert Gramm Butter, ebenso viel Zucker, vier Eier und "
        "Mehl. Den Teig in eine Form geben und etwa fünfzig Minuten backen, bis er goldbraun ist."
    )
    (removal,) = QualityFilter(default_policy()).apply([Document("1", german)])
    assert removal is not None and removal.reason == "quality.language"
    assert removal.evidence and removal.evidence.startswith("de")
    assert removal.threshold == LIMITS.min_language_confidence


def test_removal_carries_score_and_threshold() -> None:
    (removal,) = QualityFilter(default_policy()).apply([Document("1", "Just a few words here.")])
    assert removal is not None and removal.reason == "quality.gopher_word_count"
    assert (removal.score, removal.threshold) == (5, 50)
