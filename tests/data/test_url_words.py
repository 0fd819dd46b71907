"""URL word rules: datatrove's banned words, soft-banned words and subwords, read from its wheel."""

from __future__ import annotations

import random
import re
from importlib import metadata
from pathlib import Path

import pytest

from safestack.data.filters import url_words
from safestack.data.filters.url_words import (
    BlocklistError,
    UrlWordMatch,
    UrlWords,
    datatrove_word_lists,
    normalize,
)

# Made-up lists, so the rules are tested apart from datatrove's words.
TOY = UrlWords(
    banned={"zork", "2q1z"}, subwords={"frobnicate", "quuxly"}, soft={"alpha", "beta", "gamma"}
)


def test_a_banned_word_is_a_whole_token_not_a_substring() -> None:
    assert TOY.match("https://big-zork.example/") == UrlWordMatch("url_word", ("zork",))
    assert TOY.match("https://example.org/a/2q1z?x=1") == UrlWordMatch("url_word", ("2q1z",))
    assert TOY.match("https://bigzork.example/zorkish") is None


def test_soft_words_count_distinct_words_up_to_the_threshold() -> None:
    assert TOY.match("https://alpha.example/alpha/alpha") is None  # one word, three times
    assert TOY.match("https://alpha.example/beta") == UrlWordMatch(
        "url_soft_words", ("alpha", "beta")
    )
    strict = UrlWords({"zork"}, set(), {"alpha", "beta", "gamma"}, soft_threshold=3)
    assert strict.match("https://alpha.example/beta") is None
    assert strict.match("https://alpha.example/beta-gamma") == UrlWordMatch(
        "url_soft_words", ("alpha", "beta", "gamma")
    )
    with pytest.raises(ValueError, match="soft_threshold"):
        UrlWords(set(), set(), set(), soft_threshold=0)


def test_a_subword_matches_across_separators() -> None:
    assert TOY.match("https://frob-nicate.example/") == UrlWordMatch("url_subword", ("frobnicate",))
    assert TOY.match("https://example.org/x/myquuxlysite") == UrlWordMatch(
        "url_subword", ("quuxly",)
    )


def test_case_and_percent_encoding_do_not_hide_a_word() -> None:
    # datatrove compares tokens case-sensitively and splits '%20zork' into '20zork': it keeps both.
    assert TOY.match("https://Big-ZORK.example/") == UrlWordMatch("url_word", ("zork",))
    assert TOY.match("https://example.org/search?q=free%20zork") == UrlWordMatch(
        "url_word", ("zork",)
    )


def test_rules_are_checked_in_datatrove_order() -> None:
    # banned word before soft words before subwords; the evidence is every word of the rule
    url = "https://alpha-beta.example/frobnicate/zork"
    assert TOY.match(url) == UrlWordMatch("url_word", ("zork",))
    assert TOY.match("https://alpha-beta.example/frobnicate") == UrlWordMatch(
        "url_soft_words", ("alpha", "beta")
    )


def test_the_subword_trie_finds_exactly_what_a_plain_substring_search_finds() -> None:
    rng = random.Random(7)
    for _ in range(200):
        words = {"".join(rng.choices("abc", k=rng.randint(1, 5))) for _ in range(rng.randint(1, 8))}
        matcher = UrlWords(set(), words, set())
        for _ in range(20):
            url = "".join(rng.choices("abc-./", k=rng.randint(0, 30)))
            flat = normalize(url)
            expected = any(w in flat for w in words)
            found = matcher.match(url)
            assert (found is not None) == expected, (words, url)
            if found is not None:
                assert found.words[0] in flat and found.words[0] in words


def test_datatrove_lists_are_read_from_the_wheel() -> None:
    banned, subwords, soft = datatrove_word_lists()
    assert len(banned) > 150 and len(subwords) > 100 and len(soft) > 50
    assert all(w == normalize(w) and w for w in banned | subwords | soft)
    # '#' lines are datatrove's own exclusions: read as comments, never as words
    assert not {"xx", "mong"} & banned


def test_missing_datatrove_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    datatrove_word_lists.cache_clear()
    monkeypatch.setattr(url_words.metadata, "distribution", missing)
    try:
        with pytest.raises(
            BlocklistError, match=re.escape("pip install --no-deps datatrove==0.10.1")
        ):
            UrlWords.from_datatrove()
    finally:
        datatrove_word_lists.cache_clear()


def test_a_list_missing_from_the_wheel_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Empty:
        def locate_file(self, relative: str) -> Path:
            return tmp_path / relative

    datatrove_word_lists.cache_clear()
    monkeypatch.setattr(url_words.metadata, "distribution", lambda name: Empty())
    try:
        with pytest.raises(BlocklistError, match=r"banned_words\.txt.*pip install --no-deps"):
            UrlWords.from_datatrove()
    finally:
        datatrove_word_lists.cache_clear()
