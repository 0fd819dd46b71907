"""The gate's console pages: model versions and the decision log, a scorecard with its evidence,
and the advisory group's review, leadership's decision and the board's notice and reversal.

Signing: the console never holds a private key. A form prepares the next log entry (checked
against every rule of `gate.decisions`, hashed, unsigned) and shows it with the command that signs
it on the person's own machine (`safestack gate sign entry.json --key me.key`); the person pastes
the signature back, and `append_signed` prepares the entry again, checks it is identical and that
the signature verifies with the author's registered key, then appends it. Only keys with the
`review` or `admin` scope open these pages; who may sign what is the log's own role rule.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from safestack.console.pages import ConsolePage
from safestack.console.rendering import render
from safestack.console.session import LEAD_SCOPES, User
from safestack.errors import GateError, StoreError
from safestack.gate.check import check_release
from safestack.gate.decisions import (
    KIND_ROLE,
    Dissent,
    Kind,
    LogEntry,
    append_signed,
    prepare_entry,
    read_log,
    verify_entries,
)
from safestack.gate.framework import Framework, load_framework, shipped_frameworks
from safestack.gate.scorecard import Scorecard, assess_model
from safestack.store import Store

KINDS: tuple[Kind, ...] = ("review", "decision", "board-notification", "reversal")
Text = Annotated[str, Form(max_length=4000)]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _framework(frameworks: dict[str, Path], name: str) -> Framework:
    if name not in frameworks:
        raise HTTPException(
            404, f"no framework '{name}' in this console; it knows {', '.join(sorted(frameworks))}"
        )
    return load_framework(frameworks[name])


def _scorecard(store: Store, framework: Framework, model: str, version: str) -> Scorecard:
    try:
        return assess_model(store, framework, model, version)
    except GateError as exc:
        raise HTTPException(409, str(exc)) from None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _dissent(text: str) -> list[Dissent]:
    out = []
    for number, line in enumerate(_lines(text), start=1):
        person, sep, reason = line.partition(":")
        if not sep or not person.strip() or not reason.strip():
            raise HTTPException(400, f"dissent line {number}: write 'PERSON: REASON', got {line!r}")
        out.append(Dissent(person=person.strip(), reason=reason.strip()))
    return out


def cli_command(entry: LogEntry, framework: str) -> str:
    """The `safestack gate ...` command that records the same entry from a shell instead."""
    reason = ["--reason", entry.reasons]
    if entry.kind in ("review", "decision"):
        words = ["safestack", "gate", entry.kind if entry.kind == "review" else "decide"]
        words += [entry.model, "-v", entry.version, "--framework", framework, "--key", "KEY"]
        if entry.kind == "review":
            words += ["--recommend", str(entry.recommendation)]
        else:
            words += ["--outcome", str(entry.outcome)]
        words += reason
        for condition in entry.conditions:
            words += ["--condition", condition]
        for d in entry.dissent:
            words += ["--dissent", f"{d.person}: {d.reason}"]
    else:
        verb = "notify" if entry.kind == "board-notification" else "reverse"
        words = ["safestack", "gate", verb, str(entry.refers_to), "--key", "KEY", *reason]
    return " ".join(shlex.quote(word) for word in words).replace("KEY", "YOUR.key")


def gate_router(frameworks: dict[str, Path]) -> APIRouter:
    router = APIRouter(prefix="/gate")

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request, user: User) -> Response:
        store = _store(request)
        log = read_log(store)
        signers = store.gate.signers()
        verification = verify_entries(log, signers)
        reversed_ = {e.refers_to for e in log if e.kind == "reversal"}
        return render(
            request,
            "gate/overview.html",
            versions=store.gate.model_versions(),
            frameworks=sorted(frameworks),
            log=log,
            verification=verification,
            reversed=reversed_,
            signers=signers,
            board=[s for s in signers if s.role == "board"],
        )

    @router.get("/scorecard", response_class=HTMLResponse)
    def scorecard(
        request: Request,
        user: User,
        model: Annotated[str, Query(max_length=200)],
        version: Annotated[str, Query(max_length=200)],
        framework: Annotated[str, Query(max_length=200)] = "pf-beta-2023",
    ) -> Response:
        store = _store(request)
        loaded = _framework(frameworks, framework)
        card = _scorecard(store, loaded, model, version)
        digest = card.digest()
        log = read_log(store)
        verification = verify_entries(log, store.gate.signers())
        signers = store.gate.signers()
        items = {e.id: e for e in store.gate.evidence(card.model_version_id)}
        return render(
            request,
            "gate/scorecard.html",
            card=card,
            digest=digest,
            framework_id=framework,
            levels=loaded.level_names,
            evidence=[(summary, items.get(summary.id)) for summary in card.evidence],
            entries=[e for e in log if (e.model, e.version) == (card.model, card.version)],
            verification=verification,
            check=check_release(store, loaded, card.model, card.version),
            advisory=[s for s in signers if s.role == "advisory"],
            leadership=[s for s in signers if s.role == "leadership"],
            reviewed=any(e.kind == "review" and e.scorecard_hash == digest for e in log),
        )

    @router.post("/prepare", response_class=HTMLResponse)
    def prepare(
        request: Request,
        user: User,
        kind: Annotated[str, Form()],
        signer: Annotated[str, Form(max_length=64)],
        reasons: Text,
        model: Annotated[str, Form(max_length=200)] = "",
        version: Annotated[str, Form(max_length=200)] = "",
        framework: Annotated[str, Form(max_length=200)] = "",
        recommendation: Annotated[str, Form(max_length=40)] = "",
        outcome: Annotated[str, Form(max_length=40)] = "",
        conditions: Text = "",
        dissent: Text = "",
        refers_to: Annotated[int | None, Form()] = None,
    ) -> Response:
        if kind not in KINDS:
            raise HTTPException(400, f"kind must be one of {', '.join(KINDS)}")
        store = _store(request)
        person = next((s for s in store.gate.signers() if s.key_id == signer), None)
        if person is None:
            raise HTTPException(
                400, f"no registered signing key '{signer}'; see `safestack gate keys list`"
            )
        card = None
        if kind in ("review", "decision"):
            card = _scorecard(store, _framework(frameworks, framework), model, version)
        try:
            entry = prepare_entry(
                store,
                person,
                kind=kind,
                scorecard=card,
                reasons=reasons.strip(),
                recommendation=(recommendation or None) if kind == "review" else None,  # type: ignore[arg-type]
                outcome=(outcome or None) if kind == "decision" else None,  # type: ignore[arg-type]
                conditions=_lines(conditions),
                dissent=_dissent(dissent) if kind == "review" else [],
                refers_to=refers_to if kind in ("board-notification", "reversal") else None,
            )
        except GateError as exc:
            raise HTTPException(400, str(exc)) from None
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise HTTPException(
                400, f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            ) from None
        return _sign_page(request, entry, framework, person.person)

    @router.post("/submit", response_class=HTMLResponse)
    def submit(
        request: Request,
        user: User,
        entry: Annotated[str, Form(max_length=60_000)],
        signature: Annotated[str, Form(max_length=200)],
        framework: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        try:
            prepared = LogEntry.model_validate_json(entry)
        except ValidationError:
            raise HTTPException(
                400, "the entry is not a decision log entry; prepare it again"
            ) from None
        store = _store(request)
        card = None
        if prepared.kind in ("review", "decision"):
            card = _scorecard(
                store, _framework(frameworks, framework), prepared.model, prepared.version
            )
        try:
            recorded = append_signed(store, prepared, signature.strip(), card)
        except GateError as exc:
            raise HTTPException(400, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        return RedirectResponse(f"/gate/#entry-{recorded.seq}", status_code=303)

    return router


def _sign_page(request: Request, entry: LogEntry, framework: str, person: str) -> Response:
    text = json.dumps(entry.model_dump(mode="json"), indent=2, sort_keys=True)
    return render(
        request,
        "gate/sign.html",
        entry=entry,
        entry_json=text,
        download="data:application/json;base64," + base64.b64encode(text.encode()).decode(),
        framework_id=framework,
        person=person,
        needed=KIND_ROLE[entry.kind],
        command=cli_command(entry, framework),
    )


def gate_page(frameworks: dict[str, Path] | None = None) -> ConsolePage:
    """The gate's pages (`review` and `admin` keys); `frameworks` (id -> file) defaults to the
    shipped framework files."""
    known: dict[str, Any] = dict(frameworks or shipped_frameworks())
    return ConsolePage(
        name="gate",
        title="Gate",
        nav_path="/gate/",
        router=gate_router(known),
        scopes=LEAD_SCOPES,
    )
