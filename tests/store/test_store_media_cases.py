"""Match cases in the store: opened on a match, reviewed through the allowed moves, never the image."""

from __future__ import annotations

import pytest

from safestack.errors import StoreError
from safestack.store import CaseMatch, Store

MATCH = CaseMatch(
    bank="ncmec", entry_id="e1", kind="pdq", value="a" * 64, distance=12, variant="original"
)


def open_one(store: Store) -> str:
    case = store.media_cases.open(
        md5="b" * 32,
        sha256="c" * 64,
        pdq="a" * 63 + "b",
        quality=100,
        matches=[MATCH],
        context={"key_id": "ssk_1", "ip": "203.0.113.7", "endpoint": "/v1/chat/completions"},
    )
    return case.id


def test_a_case_keeps_hashes_matches_and_context(store: Store) -> None:
    case = store.media_cases.get(open_one(store))
    assert case.status == "open" and case.reviewer is None
    assert case.matches == [MATCH]
    assert case.context["ip"] == "203.0.113.7"
    assert (case.sha256, case.quality) == ("c" * 64, 100)
    assert [c.id for c in store.media_cases.find(status="open")] == [case.id]
    assert store.media_cases.find(status="confirmed") == []


def test_review_moves_and_refusals(store: Store) -> None:
    case_id = open_one(store)
    with pytest.raises(
        StoreError, match="is open; it can become confirmed or dismissed, not reported"
    ):
        store.media_cases.review(case_id, status="reported", reviewer="ana")
    confirmed = store.media_cases.review(
        case_id, status="confirmed", reviewer="ana", note="clear copy"
    )
    assert (confirmed.status, confirmed.reviewer, confirmed.decision_note) == (
        "confirmed",
        "ana",
        "clear copy",
    )
    assert confirmed.reviewed_at is not None
    reported = store.media_cases.review(case_id, status="reported", reviewer="ben")
    assert reported.status == "reported"
    with pytest.raises(StoreError, match=r"is reported; it can become nothing else \(final\)"):
        store.media_cases.review(case_id, status="dismissed", reviewer="ana")


def test_unknown_case_and_missing_reviewer_are_clear_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="no media case 'nope'"):
        store.media_cases.review("nope", status="confirmed", reviewer="ana")
    with pytest.raises(StoreError, match="needs the reviewer's name"):
        store.media_cases.review(open_one(store), status="confirmed", reviewer=" ")
    with pytest.raises(ValueError, match="at least one match"):
        store.media_cases.open(md5="b" * 32, sha256="c" * 64, pdq=None, quality=None, matches=[])
