"""Fixtures for the remote detectors' tests: a fake OpenAI-compatible server on 127.0.0.1.

The detectors talk real HTTP to it (no mocking of httpx). `api` is the running server
(`fake_api.FakeAPI`), answering from canned replies; `remote_detector` builds a detector aimed at
it with fast-failing options (`remote_options`) whose API key is exported for the test.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from fake_api import FakeAPI, serving
from safestack.judge import Sample
from safestack.judge.detectors.http import RemoteDetector
from safestack.policy import Policy
from safestack.records import Finding

KEY_ENV = "SAFESTACK_TEST_REMOTE_KEY"
KEY = "sk-test-0123456789abcdef"
R = TypeVar("R", bound=RemoteDetector)


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with serving() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake API key, exported in the environment variable `remote_options` name."""
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture
def remote_options(api_key: str) -> dict[str, Any]:
    """Options of a remote detector that fail fast, aimed at a port nothing listens on."""
    return {
        "api_key_env": KEY_ENV,
        "timeout": 2.0,
        "max_retries": 2,
        "backoff": 0.01,
        "base_url": _closed_port_url(),
    }


@pytest.fixture
def remote_detector(remote_options: dict[str, Any]) -> Callable[..., RemoteDetector]:
    """`build(cls, policy, api, **options)`: a detector against `api`, or a dead port if None."""

    def build(cls: type[R], policy: Policy, api: FakeAPI | None, **options: Any) -> R:
        base_url = api.base_url if api is not None else remote_options["base_url"]
        det = cls(policy, cls.Options(**{**remote_options, "base_url": base_url, **options}))
        if api is not None:
            api.detectors.append(det)
        return det

    return build


@pytest.fixture
def adetect() -> Callable[[RemoteDetector, Sample], Awaitable[list[Finding]]]:
    """`det.adetect` in a fresh event loop, closing that loop's client as a server would."""

    async def run(det: RemoteDetector, sample: Sample) -> list[Finding]:
        try:
            return await det.adetect(sample)
        finally:
            await det.aclose()

    return run


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
