"""The adult filter: UT1 domains (and subdomains, and the user's lists), adult words in URLs and
sexual content."""

from __future__ import annotations

from pathlib import Path

import pytest

from safestack.data.document import Document, Removal
from safestack.data.filters.adult import AdultFilter, AdultOptions, host_levels
from safestack.data.filters.url_words import datatrove_word_lists, normalize
from safestack.policy import default_policy
from safestack.registry import RegistryError

PROSE = "Preheat the oven to 180C. Mix the flour and sugar, add the eggs and bake for 25 minutes."


@pytest.fixture(scope="module")
def adult() -> AdultFilter:
    return AdultFilter(default_policy())


def test_ut1_domain_is_removed_with_reason(adult: AdultFilter) -> None:
    (removal,) = adult.apply([Document("1", PROSE, url="https://www.pornhub.com/view?x=1")])
    assert removal is not None
    assert removal.reason == "adult.domain"
    assert removal.evidence == "pornhub.com"
    assert (removal.score, removal.threshold) == (1.0, 1.0)


def test_subdomain_of_a_listed_domain_is_removed(adult: AdultFilter) -> None:
    (removal,) = adult.apply([Document("1", PROSE, url="http://de.cdn.xvideos.com/a/b")])
    assert removal is not None and removal.reason == "adult.domain"


def test_ordinary_site_is_kept(adult: AdultFilter) -> None:
    assert adult.apply([Document("1", PROSE, url="https://www.bbc.co.uk/food")]) == [None]


def test_allowlist_and_extra_list(tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("# ours\nblocked.example\n", encoding="utf-8")
    options = AdultOptions(allow_domains=["xvideos.com"], extra_domains_file=extra)
    custom = AdultFilter(default_policy(), options)
    docs = [
        Document("1", PROSE, url="https://www.xvideos.com/"),
        Document("2", PROSE, url="https://shop.blocked.example/x"),
    ]
    first, second = custom.apply(docs)
    assert first is None
    assert second is not None and second.evidence == "blocked.example"


def test_sexual_content_on_an_unlisted_domain_is_removed(adult: AdultFilter) -> None:
    text = (
        "XXX webcam girls waiting to get naked live for you. Erotic shows, sexy chat and adult "
        "fun. Sign up free and start watching hot nude models now. Discreet adult encounters "
        "tonight with sexy singles and escorts, explicit nude photos, 18+ only."
    )
    (removal,) = adult.apply([Document("1", text, url="https://classifieds.test/x")])
    assert removal is not None and removal.reason == "adult.content"
    assert removal.score >= removal.threshold == default_policy().data.adult.content
    assert removal.evidence and removal.evidence.startswith("[fast]")


def test_host_levels_stop_at_the_registered_domain() -> None:
    levels, host_path = host_levels("https://a.b.example.co.uk/p/q")
    assert levels == ["a.b.example.co.uk", "b.example.co.uk", "example.co.uk"]
    assert host_path == "a.b.example.co.uk/p/q"


# --- adult words in the URL (issue 17, item 7) ---------------------------------------------------


@pytest.fixture(scope="module")
def by_url() -> AdultFilter:
    """The URL rules alone (no harm model), with the default word lists and threshold."""
    return AdultFilter(default_policy(), AdultOptions(content=False))


def url_removal(adult: AdultFilter, url: str) -> Removal | None:
    (removal,) = adult.apply([Document("1", PROSE, url=url)])
    return removal


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("https://chunked-xxx.com/", "xxx"),
        ("https://entity-porn.com/videos?page=2", "porn"),
        ("http://publish-camgirl.com/live", "camgirl"),
    ],
)
def test_unlisted_hosts_with_adult_words_are_removed(
    by_url: AdultFilter, url: str, word: str
) -> None:
    removal = url_removal(by_url, url)
    assert removal is not None
    assert (removal.reason, removal.evidence) == ("adult.url_word", word)
    assert removal.category == "sexual"


def test_allowlisted_host_is_kept_by_the_word_rules() -> None:
    options = AdultOptions(content=False, allow_domains=["www.Entity-Porn.com"])
    allowing = AdultFilter(default_policy(), options)
    assert url_removal(allowing, "https://cdn.entity-porn.com/a") is None
    removal = url_removal(allowing, "https://chunked-xxx.com/")
    assert removal is not None and removal.reason == "adult.url_word"


def test_soft_words_remove_at_the_threshold(by_url: AdultFilter) -> None:
    url = "https://pics.lantern-gallery.test/nude/sexy-selfies"
    removal = url_removal(by_url, url)
    assert removal is not None
    assert (removal.reason, removal.evidence) == ("adult.url_soft_words", "nude, sexy")
    assert (removal.score, removal.threshold) == (2.0, 2.0)
    assert url_removal(by_url, "https://pics.lantern-gallery.test/nude/selfies") is None
    stricter = AdultFilter(default_policy(), AdultOptions(content=False, soft_word_threshold=3))
    assert url_removal(stricter, url) is None


def test_word_rules_can_be_turned_off() -> None:
    off = AdultFilter(default_policy(), AdultOptions(content=False, url_words=False))
    assert url_removal(off, "https://entity-porn.com/") is None


# Real words and places that hold an adult word inside them (or across a '.'): a substring search
# for the banned and soft words removes every one; datatrove 0.10.1 keeps them all, and so must we.
TRICKY = [
    "https://www.essex.ac.uk/",
    "https://example.com/sussex-county",
    "https://docs.python.org/3/",
    "https://www.middlesex.edu/",
    "https://www.scunthorpe-united.co.uk/",
    "https://www.penistone.example/",
    "https://penisland.net/",
    "https://www.expertsexchange.com/",
    "https://therapistfinder.com/",
    "https://www.cockburn.wa.gov.au/",
    "https://www.analytics.example.com/dashboard",
    "https://example.com/recipes/cucumber-cocktails",
    "https://www.whorepresents.com/",
    "https://institute.example.org/titles/",
    "https://en.wikipedia.org/wiki/Dick_Van_Dyke",
    "https://example.org/grape-harvest/documents",
    "https://example.com/wessex-archaeology/butterfly-survey",
    "https://example.com/blog/assassins-creed-review",
]


@pytest.mark.parametrize("url", TRICKY)
def test_ordinary_urls_with_adult_substrings_are_kept(by_url: AdultFilter, url: str) -> None:
    banned, _, soft = datatrove_word_lists()
    flat = normalize(url)
    if "python" not in url:  # the case is hard only if a naive substring rule would remove it
        assert any(word in flat for word in banned | soft)
    assert url_removal(by_url, url) is None


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("https://example.org/page", "is a URL; give the domain alone, e.g. 'example.org'"),
        ("*.example.org", "is not a domain name"),
        ("example org", "is not a domain name"),
        ("co.uk", "is a public suffix"),
    ],
)
def test_allow_domains_entries_are_validated(entry: str, problem: str) -> None:
    with pytest.raises(RegistryError, match=r"filters\[0\]\.options\.allow_domains\.1: ") as info:
        AdultFilter.validate_options(
            {"allow_domains": ["example.net", entry]}, where="filters[0].options"
        )
    assert problem in str(info.value)


def test_extra_words_extend_the_lists() -> None:
    options = AdultOptions(
        content=False,
        extra_url_words=["Fetish"],
        extra_soft_words=["velvet", "lounge"],
        extra_url_subwords=["hook up"],
    )
    extended = AdultFilter(default_policy(), options)
    cases = {
        "https://river-fetish.example/": ("adult.url_word", "fetish"),
        "https://velvet-lounge.example/": ("adult.url_soft_words", "velvet, lounge"),
        "https://tonighthookups.example/": ("adult.url_subword", "hookup"),
    }
    for url, expected in cases.items():
        removal = url_removal(extended, url)
        assert removal is not None and (removal.reason, removal.evidence) == expected, url
        assert url_removal(AdultFilter(default_policy(), AdultOptions(content=False)), url) is None


@pytest.mark.parametrize(
    ("field", "entry", "problem"),
    [
        ("extra_url_words", "two words", "is not one word of letters and digits"),
        ("extra_soft_words", "", "is not one word of letters and digits"),
        ("extra_url_subwords", "x-x", "is too short for a subword"),
    ],
)
def test_extra_words_are_validated(field: str, entry: str, problem: str) -> None:
    with pytest.raises(RegistryError, match=rf"options\.{field}\.0: .*{problem}"):
        AdultFilter.validate_options({field: [entry]})
