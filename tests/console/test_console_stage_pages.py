"""The gate's and the media cases' console pages over HTTP (TestClient, a real SQLite file):
who opens them, CSRF, the scorecard and its evidence, a review and a decision prepared in the
console and signed outside it with `safestack gate sign`, a tampered log shown as broken, and a
media case reviewed and exported."""

from __future__ import annotations

import html
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from console_harness import (
    Keys,
    gate_keys,
    matched_case,
    signed_in,
    signer_id,
    stage_app,
    token,
)
from fake_target import fake_target
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from safestack.cli.main import app as cli
from safestack.gate.check import check_release
from safestack.gate.decisions import read_log
from safestack.gate.evidence import pin_run, register_model_version
from safestack.gate.framework import load_framework
from safestack.gate.scorecard import assess_model
from safestack.store import Store
from safestack.store.tables import GateLogRow

sys.path.insert(0, str(Path(__file__).parents[1] / "gate"))
from gate_harness import GUARDED, RAW, demo_evidence

PF = load_framework("pf-beta-2023")
SCORECARD = "/gate/scorecard?model=model&version=1&framework=pf-beta-2023"
ENTRY = re.compile(r'<input type="hidden" name="entry" value="([^"]*)">')


@pytest.fixture
def app(store: Store, tmp_path: Path) -> Iterator[FastAPI]:
    with fake_target() as (base_url, _):
        yield stage_app(store, base_url, tmp_path)


@pytest.fixture
def gate(store: Store, tmp_path: Path) -> dict[str, Path]:
    demo_evidence(store, tmp_path)
    return gate_keys(store, tmp_path / "keys")


def prepare(client: TestClient, **form: Any) -> str:
    """Prepare an entry on the page; returns the entry JSON the page asks to be signed."""
    page = client.post("/gate/prepare", data={"csrf_token": token(client, "/gate/"), **form})
    assert page.status_code == 200, page.text
    match = ENTRY.search(page.text)
    assert match, page.text
    return html.unescape(match.group(1))


def sign(entry: str, key: Path, tmp_path: Path) -> str:
    """What the person runs on their own machine: `safestack gate sign entry.json --key K`."""
    path = tmp_path / "entry.json"
    path.write_text(entry, "utf-8")
    result = CliRunner().invoke(cli, ["gate", "sign", str(path), "--key", str(key)])
    assert result.exit_code == 0, result.stderr
    assert "signing entry" in result.stderr
    return result.stdout.strip()


def submit(client: TestClient, entry: str, signature: str) -> Any:
    return client.post(
        "/gate/submit",
        data={
            "entry": entry,
            "signature": signature,
            "framework": "pf-beta-2023",
            "csrf_token": token(client, "/gate/"),
        },
        follow_redirects=False,
    )


def scorecard_form(store: Store, kind: str, person: str, **fields: str) -> dict[str, str]:
    """A review or decision form on the scorecard of model@1 under pf-beta-2023."""
    subject = {"model": "model", "version": "1", "framework": "pf-beta-2023"}
    return {"kind": kind, "signer": signer_id(store, person), **subject, **fields}


def review_form(store: Store, person: str = "ana", **extra: str) -> dict[str, str]:
    return scorecard_form(
        store,
        "review",
        person,
        **{
            "recommendation": "deploy",
            "reasons": "post-mitigation Low everywhere",
            "dissent": "sam: the autonomy eval is thin",
            **extra,
        },
    )


def decision_form(store: Store, person: str = "lee", **extra: str) -> dict[str, str]:
    fields = {"outcome": "deploy", "reasons": "the advisory group concurs", **extra}
    return scorecard_form(store, "decision", person, **fields)


def record(client: TestClient, form: dict[str, str], key: Path, tmp_path: Path) -> None:
    entry = prepare(client, **form)
    response = submit(client, entry, sign(entry, key, tmp_path))
    assert response.status_code == 303, response.text


# -- who opens the pages ------------------------------------------------------------------------
def test_only_review_and_admin_keys_open_the_gate_and_media_pages(
    app: FastAPI, keys: Keys, store: Store
) -> None:
    ada, lead, admin = (signed_in(app, k) for k in (keys.ada, keys.lead, keys.admin))
    for path in ("/gate/", SCORECARD, "/media/"):
        assert ada.get(path).status_code == 403, path
    assert "Gate" not in ada.get("/").text and "Media cases" not in ada.get("/").text
    home = lead.get("/").text
    assert 'href="/gate/"' in home and 'href="/media/"' in home
    assert admin.get("/gate/").status_code == 200 and admin.get("/media/").status_code == 200
    anonymous = TestClient(app, base_url="http://127.0.0.1")
    assert anonymous.get("/media/", follow_redirects=False).headers["location"] == "/login"


# -- the scorecard ------------------------------------------------------------------------------
def test_the_scorecard_shows_levels_evidence_and_the_rule(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path]
) -> None:
    lead = signed_in(app, keys.lead)
    overview = lead.get("/gate/").text
    assert "model@1" in overview and "the chain and every signature verify" in overview
    page = lead.get(SCORECARD)
    assert page.status_code == 200, page.text
    text = page.text
    for category in ("cybersecurity", "cbrn", "persuasion", "model_autonomy", "unknown_unknowns"):
        assert f"<code>{category}</code>" in text, category
    for item in store.gate.evidence("model@1"):
        assert f'id="{item.id}"' in text and item.content_hash[:16] in text
        assert item.record_hash[:16] in text
    assert "run <code>run-1</code> on model-raw" in text
    card = assess_model(store, PF, "model", "1")
    assert card.digest() in text
    assert f"post-mitigation <strong>{card.overall_post}</strong>" in text
    for category in card.categories:
        for stage in (category.pre, category.post):
            assert f"<strong>{stage.text()}</strong>" in text
    assert "Medium (cannot rule out High)" in text and "not scored" in text
    assert "<code>post &lt;= Medium</code>: " in text
    assert "Release check</dt><dd" in text and "fails: " in text
    assert "no unreversed decision" in text
    assert "Stale evidence" not in text
    unknown = lead.get("/gate/scorecard?model=nope&version=1&framework=pf-beta-2023")
    assert unknown.status_code == 409 and "is not registered" in html.unescape(unknown.text)
    assert lead.get("/gate/scorecard?model=model&version=1&framework=x").status_code == 404


def test_stale_evidence_is_named_on_the_scorecard(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path]
) -> None:
    mv = register_model_version(
        store,
        "model",
        "2",
        pre_target=RAW,
        post_target=GUARDED,
        built_at=datetime.now(UTC) + timedelta(days=1),
    )
    pin_run(store, mv, "run-1")
    text = signed_in(app, keys.lead).get(SCORECARD.replace("version=1", "version=2")).text
    assert "Stale evidence" in text and "run-1" in text


# -- signing outside the console ------------------------------------------------------------
def test_a_review_and_a_decision_are_prepared_here_and_signed_with_the_persons_own_key(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path], tmp_path: Path
) -> None:
    lead = signed_in(app, keys.lead)
    # leadership cannot decide before the advisory group has reviewed
    early = lead.post(
        "/gate/prepare", data={**decision_form(store), "csrf_token": token(lead, "/gate/")}
    )
    assert early.status_code == 400 and "no advisory review of scorecard" in html.unescape(
        early.text
    )
    entry = prepare(lead, **review_form(store))
    page = lead.post(
        "/gate/prepare", data={**review_form(store), "csrf_token": token(lead, "/gate/")}
    ).text
    assert "safestack gate sign entry-1.json --key YOUR.key" in page
    assert "safestack gate review model -v 1 --framework pf-beta-2023 --key YOUR.key" in page
    assert "PRIVATE KEY" not in page
    # a signature by someone else's key does not verify; the CLI refuses to sign with it too
    path = tmp_path / "entry.json"
    path.write_text(entry, "utf-8")
    wrong = CliRunner().invoke(cli, ["gate", "sign", str(path), "--key", str(gate["lee"])])
    assert wrong.exit_code != 0 and "not ana's" in wrong.stderr
    from safestack.gate.decisions import LogEntry, load_private_key, sign_entry

    forged = sign_entry(load_private_key(gate["lee"]), LogEntry.model_validate_json(entry))
    refused = submit(lead, entry, forged)
    assert refused.status_code == 400 and "does not verify with ana's key" in html.unescape(
        refused.text
    )
    # an entry edited against the rules after it was prepared is refused, even signed by its
    # author: another scorecard, another author, a seq that skips
    for field, value in (("scorecard_hash", "0" * 64), ("author", "lee"), ("seq", 2)):
        edited = LogEntry.model_validate({**json.loads(entry), field: value})
        edited_text = edited.model_copy(
            update={"entry_hash": edited.computed_hash()}
        ).model_dump_json()
        tampered = submit(lead, edited_text, sign(edited_text, gate["ana"], tmp_path))
        assert tampered.status_code == 400, field
        assert "not the entry the log would take now" in html.unescape(tampered.text)
    assert read_log(store) == []
    # the real one
    assert submit(lead, entry, sign(entry, gate["ana"], tmp_path)).status_code == 303
    # replaying it: the log moved on
    replay = submit(lead, entry, sign(entry, gate["ana"], tmp_path))
    assert replay.status_code == 400 and "not the entry the log would take now" in html.unescape(
        replay.text
    )
    record(lead, decision_form(store), gate["lee"], tmp_path)
    log = read_log(store)
    assert [(e.kind, e.author, e.role) for e in log] == [
        ("review", "ana", "advisory"),
        ("decision", "lee", "leadership"),
    ]
    assert log[0].dissent[0].person == "sam"
    assert check_release(store, PF, "model", "1").passed
    text = lead.get(SCORECARD).text
    assert "passes" in text and "(this one)" in text
    overview = lead.get("/gate/").text
    assert "2 entries; the chain and every signature verify" in overview
    # the board acknowledges, then reverses; the check fails from then on
    record(
        lead,
        {"kind": "reversal", "signer": signer_id(store, "bo"), "refers_to": "2", "reasons": "no"},
        gate["bo"],
        tmp_path,
    )
    assert "(reversed)" in lead.get("/gate/").text
    assert not check_release(store, PF, "model", "1").passed


def test_roles_are_enforced_on_the_server(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path]
) -> None:
    lead = signed_in(app, keys.lead)
    csrf = token(lead, "/gate/")
    as_lee = lead.post("/gate/prepare", data={**review_form(store, "lee"), "csrf_token": csrf})
    assert as_lee.status_code == 400
    assert "lee is leadership; a review is recorded by advisory" in html.unescape(as_lee.text)
    as_ana = lead.post("/gate/prepare", data={**decision_form(store, "ana"), "csrf_token": csrf})
    assert (
        as_ana.status_code == 400
        and "ana is advisory; a decision is recorded by" in html.unescape(as_ana.text)
    )
    unknown = lead.post(
        "/gate/prepare", data={**review_form(store), "signer": "nobody", "csrf_token": csrf}
    )
    assert unknown.status_code == 400 and "no registered signing key" in html.unescape(unknown.text)
    bad = lead.post(
        "/gate/prepare",
        data={**review_form(store), "recommendation": "ship-it", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "recommendation" in html.unescape(bad.text)
    dissent = lead.post(
        "/gate/prepare", data={**review_form(store), "dissent": "no colon", "csrf_token": csrf}
    )
    assert dissent.status_code == 400 and "dissent line 1" in html.unescape(dissent.text)


def test_every_gate_and_media_form_needs_the_csrf_token(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path]
) -> None:
    lead = signed_in(app, keys.lead)
    case = matched_case(store)
    for path, form in (
        ("/gate/prepare", review_form(store)),
        ("/gate/submit", {"entry": "{}", "signature": "x"}),
        (f"/media/cases/{case}/review", {"status": "confirmed"}),
    ):
        for extra in ({}, {"csrf_token": "forged"}):
            response = lead.post(path, data={**form, **extra})
            assert response.status_code == 403, (path, extra)
            assert "did not come from the console" in html.unescape(response.text)
    assert store.media_cases.get(case).status == "open" and read_log(store) == []


def test_a_tampered_decision_log_shows_as_broken_and_takes_nothing(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path], tmp_path: Path
) -> None:
    lead = signed_in(app, keys.lead)
    record(lead, review_form(store), gate["ana"], tmp_path)
    entry = read_log(store)[0].model_dump(mode="json")
    entry["recommendation"] = "do-not-deploy"
    with store.engine.begin() as connection:
        connection.execute(update(GateLogRow).where(GateLogRow.seq == 1).values(entry=entry))
    overview = lead.get("/gate/").text
    assert "The decision log is broken</strong> at entry 1" in overview
    assert "edited after signing" in overview and 'class="broken"' in overview
    scorecard = lead.get(SCORECARD).text
    assert "The decision log is broken" in scorecard and 'id="review-form"' not in scorecard
    refused = lead.post(
        "/gate/prepare", data={**decision_form(store), "csrf_token": token(lead, "/gate/")}
    )
    assert refused.status_code == 400 and "the decision log is broken" in html.unescape(
        refused.text
    )


def test_gate_pages_escape_what_people_wrote(
    app: FastAPI, keys: Keys, store: Store, gate: dict[str, Path], tmp_path: Path
) -> None:
    lead = signed_in(app, keys.lead)
    record(lead, review_form(store, reasons="<script>alert(1)</script>"), gate["ana"], tmp_path)
    text = lead.get("/gate/").text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


# -- media cases --------------------------------------------------------------------------------
def test_a_media_case_is_reviewed_and_exported_without_its_image(
    app: FastAPI, keys: Keys, store: Store
) -> None:
    case = matched_case(store, request_id="<script>x</script>")
    lead = signed_in(app, keys.lead)
    queue = lead.get("/media/").text
    assert case[:12] in queue and "b" * 16 in queue and "203.0.113.9" in queue
    assert "demo-bank" in queue and "account-17" in queue
    page = lead.get(f"/media/cases/{case}").text
    assert "a" * 32 in page and "b" * 64 in page and "flip-x" in page
    assert "<img" not in page and "<img" not in queue
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    # a move the status does not allow is refused and changes nothing
    wrong = lead.post(
        f"/media/cases/{case}/review",
        data={"status": "reported", "csrf_token": token(lead, f"/media/cases/{case}")},
    )
    assert wrong.status_code == 409 and "it can become confirmed or dismissed" in html.unescape(
        wrong.text
    )
    done = lead.post(
        f"/media/cases/{case}/review",
        data={
            "status": "confirmed",
            "note": "exact PDQ match, flipped",
            "csrf_token": token(lead, f"/media/cases/{case}"),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    stored = store.media_cases.get(case)
    assert (
        stored.status == "confirmed"
        and stored.reviewer == f"Lena Lead (console key {keys.lead_id})"
    )
    assert stored.decision_note == "exact PDQ match, flipped" and stored.reviewed_at is not None
    assert "by Lena Lead" in lead.get(f"/media/cases/{case}").text
    assert case[:12] not in lead.get("/media/").text  # no longer open
    assert case[:12] in lead.get("/media/?status=confirmed").text
    assert lead.get("/media/?status=bogus").status_code == 400
    exported = lead.get(f"/media/cases/{case}/report.json")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == f'attachment; filename="case-{case}.json"'
    report = exported.json()
    assert report["safestackCase"]["status"] == "confirmed"
    assert "Example Org" in html.unescape(exported.text) and "203.0.113.9" in html.unescape(
        exported.text
    )
    xml = lead.get(f"/media/cases/{case}/report.xml")
    assert xml.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(xml.text)
    assert "b" * 64 in ET.tostring(root, encoding="unicode")
    assert lead.get(f"/media/cases/{case}/report.pdf").status_code == 404
    assert lead.get("/media/cases/nope").status_code == 404
    ada = signed_in(app, keys.ada)
    assert ada.get(f"/media/cases/{case}/report.json").status_code == 403


def test_the_pages_are_registered_as_entry_points_in_pyproject() -> None:
    """`safestack console` loads them from the `safestack.console.pages` entry point group."""
    import importlib
    import tomllib

    from safestack.console import ENTRY_POINT_GROUP, ConsolePage

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8"))
    entries = pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    pages = {}
    for name, target in entries.items():
        module, _, attribute = target.partition(":")
        page = getattr(importlib.import_module(module), attribute)()
        assert isinstance(page, ConsolePage)
        pages[name] = page
    assert {n: (p.nav_path, sorted(p.scopes)) for n, p in pages.items()} == {
        "gate": ("/gate/", ["admin", "review"]),
        "media": ("/media/", ["admin", "review"]),
    }
