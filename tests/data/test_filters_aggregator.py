"""The aggregator filter: people-search pages go, contact pages and family histories stay."""

from __future__ import annotations

import json
import random

import pytest

from safestack.data.document import Document
from safestack.data.eval_corpus import _dox_paste, _people_search_page, _person, corpus_path
from safestack.data.filters.aggregator import AggregatorFilter, PageSignals
from safestack.policy import default_policy

CONTACT = """Contact Northwind Traders. We are here to help with orders and returns.

Head office: 4521 Oak Avenue, Springfield, IL. Reception is open Monday to Friday, 9am to 5pm.

Customer service: call (312) 555-0142 or email support@example.com. Please have your order number ready.

Press enquiries: press@example.com. For urgent media requests outside office hours, call (312) 555-0177.

Careers: see our current vacancies, or write to jobs@example.com with your CV and a short cover letter."""

GENEALOGY = """The Marsh family came to the valley in 1852, when Thomas Marsh bought a small farm.

Thomas was born in 1821 in Cornwall and worked as a tin miner. He married Sarah Penrose in 1847; she was born in 1826 and died in 1903.

Their eldest son, William, born in 1849, took over the farm. Mary, born in 1864, ran the village school for thirty years."""


@pytest.fixture(scope="module")
def aggregator() -> AggregatorFilter:
    return AggregatorFilter(default_policy())


def test_people_search_page_on_an_unknown_site_is_removed(aggregator: AggregatorFilter) -> None:
    rng = random.Random(1)
    page = _people_search_page([_person(rng) for _ in range(5)], rng)
    (removal,) = aggregator.apply([Document("1", page, url="https://findfolks.test/x")])
    assert removal is not None and removal.reason == "aggregator.structure"
    assert removal.score >= removal.threshold == 3


def test_known_people_search_domain_is_removed(aggregator: AggregatorFilter) -> None:
    (removal,) = aggregator.apply([Document("1", GENEALOGY, url="https://www.spokeo.com/John-Doe")])
    assert removal is not None and removal.reason == "aggregator.domain"
    assert removal.evidence == "spokeo.com"


def test_dox_paste_is_removed(aggregator: AggregatorFilter) -> None:
    rng = random.Random(2)
    text = _dox_paste(_person(rng), [_person(rng) for _ in range(3)], rng)
    (removal,) = aggregator.apply([Document("1", text, url="https://pastebin.com/abc")])
    assert removal is not None and removal.reason in {
        "aggregator.structure",
        "aggregator.pii_density",
    }


def test_contact_page_news_and_genealogy_are_kept(aggregator: AggregatorFilter) -> None:
    news = "The council voted to extend the bus network, said spokesperson Ann Lee (312) 555-0100."
    docs = [
        Document("1", CONTACT, url="https://northwind.example.com/contact"),
        Document("2", GENEALOGY, url="https://family.example.org/marsh"),
        Document("3", news * 3, url="https://news.example.org/a"),
    ]
    assert aggregator.apply(docs) == [None, None, None]


def test_signals_count_person_markers() -> None:
    signals = PageSignals("Jane Roe, Age 43\nPhone: (312) 555-0101\nRelatives: John Roe")
    assert signals.records == 1
    assert signals.weighted == 2 + 1 + 2  # age, phone, relatives


def test_eval_corpus_aggregator_precision_floor(aggregator: AggregatorFilter) -> None:
    rows = [json.loads(line) for line in corpus_path().read_text("utf-8").splitlines()]
    rows = [r for r in rows if r["label"] in ("keep", "aggregator")]
    docs = [Document(r["id"], r["text"], url=r["url"]) for r in rows]
    removed = [r is not None for r in aggregator.apply(docs)]
    tp = sum(hit and r["label"] == "aggregator" for hit, r in zip(removed, rows, strict=True))
    fp = sum(hit and r["label"] == "keep" for hit, r in zip(removed, rows, strict=True))
    positives = sum(r["label"] == "aggregator" for r in rows)
    assert tp / positives >= 0.95  # measured 1.0 (docs/data-filter.md)
    assert fp <= 1  # measured 0
