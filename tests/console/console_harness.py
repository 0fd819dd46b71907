"""What the console's tests share: a store with the four kinds of key, an app over two fake
targets, and a signed-in TestClient (CSRF token read from the page, as a browser would)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from safestack.console import ConsoleTargets, create_app
from safestack.judge import Judge
from safestack.policy import default_policy
from safestack.redteam.campaign import TargetSpec
from safestack.settings import Settings
from safestack.store import Store

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Keys:
    admin: str
    lead: str
    ada: str
    bob: str
    ada_id: str
    bob_id: str
    lead_id: str


def make_keys(store: Store) -> Keys:
    _, admin = store.keys.create("Admin", ["admin"])
    lead_key, lead = store.keys.create("Lena Lead", ["review"])
    ada_key, ada = store.keys.create("Ada Expert", ["redteam"])
    bob_key, bob = store.keys.create("Bob Expert", ["redteam"])
    return Keys(admin, lead, ada, bob, ada_key.id, bob_key.id, lead_key.id)


def target_specs(base_url: str, timeout_s: float = 1.5) -> list[TargetSpec]:
    return [
        TargetSpec(
            name=name,
            kind="openai",
            options={"base_url": base_url, "model": name, "api_key": "sk-never-shown-0000"},
            timeout_s=timeout_s,
        )
        for name in ("alpha", "beta")
    ]


def make_app(store: Store, base_url: str, home: Path, *, timeout_s: float = 1.5) -> FastAPI:
    policy = default_policy()
    return create_app(
        Settings(home=home),
        store=store,
        policy=policy,
        targets=ConsoleTargets(target_specs(base_url, timeout_s)),
        judge=Judge.from_policy(policy, ["rules"]),
        plugins=False,
    )


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def signed_in(app: FastAPI, secret: str) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1")
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"key": secret, "csrf_token": token})
    assert response.status_code == 200, response.text  # followed the redirect to /
    return client


def token(client: TestClient, path: str = "/") -> str:
    return csrf_of(client.get(path).text)


def create_engagement(client: TestClient, experts: list[str], **extra: object) -> str:
    data: dict[str, object] = {
        "name": "Launch review",
        "description": "pre-launch probe",
        "targets": ["alpha", "beta"],
        "categories": ["violence", "illicit", "cyber"],
        "languages": "en fr",
        "experts": experts,
        "csrf_token": token(client),
        **extra,
    }
    response = client.post("/engagements", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"].removeprefix("/e/")


# -- the gate and media case pages ------------------------------------------------------------
def stage_app(store: Store, base_url: str, home: Path) -> FastAPI:
    """The console with the gate and media case pages (as their entry points would add them)."""
    from safestack.console.gate_pages import gate_page
    from safestack.console.media_pages import media_page

    policy = default_policy()
    return create_app(
        Settings(home=home, media_reporter_org="Example Org", media_reporter_name="Rita Reporter"),
        store=store,
        policy=policy,
        targets=ConsoleTargets(target_specs(base_url)),
        judge=None,
        pages=[gate_page(), media_page()],
        plugins=False,
    )


def gate_keys(store: Store, folder: Path) -> dict[str, Path]:
    """ana (advisory), lee (leadership), bo (board): their private key files."""
    from safestack.gate.decisions import create_key

    files = {}
    for person, role in (("ana", "advisory"), ("lee", "leadership"), ("bo", "board")):
        files[person] = folder / f"{person}.key"
        create_key(store, person, role, files[person])
    return files


def signer_id(store: Store, person: str) -> str:
    return next(s.key_id for s in store.gate.signers() if s.person == person)


def matched_case(store: Store, **context: object) -> str:
    from safestack.store import CaseMatch

    match = CaseMatch(
        bank="demo-bank", entry_id="e-1", kind="pdq", value="f" * 64, distance=6, variant="flip-x"
    )
    case = store.media_cases.open(
        md5="a" * 32,
        sha256="b" * 64,
        pdq="f" * 64,
        quality=92,
        matches=[match],
        context={
            "endpoint": "/v1/chat/completions",
            "key_id": "ssk_1234",
            "ip": "203.0.113.9",
            "user": "account-17",
            **context,
        },
    )
    return case.id
