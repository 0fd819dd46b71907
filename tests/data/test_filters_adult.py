"""The adult filter: UT1 domains (and subdomains, and the user's lists) and sexual content."""

from __future__ import annotations

from pathlib import Path

import pytest

from safestack.data.document import Document
from safestack.data.filters.adult import AdultFilter, AdultOptions, host_levels
from safestack.policy import default_policy

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
