"""`safestack serve` as a user starts it: no configuration, SQLite under SAFESTACK_HOME, built-in
models; without an upstream it says in one line how to set one, and moderations still work."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import unused_port

from safestack.server.errors import NO_UPSTREAM
from safestack.store import Store


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = unused_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
    env["SAFESTACK_HOME"] = str(tmp_path)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "safestack"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"safestack serve did not start:\n{process.communicate()[0]}")
        time.sleep(0.1)
    try:
        yield url, process, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_with_no_configuration(served: tuple[str, subprocess.Popen[str], Path]) -> None:
    url, process, home = served
    assert (home / "safestack.db").exists()
    with Store.open(f"sqlite:///{home}/safestack.db") as store:
        _, secret = store.keys.create("cli-test", ["chat", "moderate"])
    headers = {"authorization": f"Bearer {secret}"}
    assert httpx.post(url + "/v1/moderations", json={"input": "hi"}).status_code == 401
    moderation = httpx.post(
        url + "/v1/moderations", json={"input": "I am going to kill you"}, headers=headers
    )
    assert moderation.json()["results"][0]["flagged"] is True
    chat = httpx.post(
        url + "/v1/chat/completions",
        json={"model": "any", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert chat.status_code == 503 and chat.json()["error"]["message"] == NO_UPSTREAM
    process.terminate()
    output = process.communicate(timeout=20)[0]
    assert NO_UPSTREAM in output.replace("\n", " ") or NO_UPSTREAM in output
    assert "safestack keys create" in output


def test_serve_fails_at_start_within_seconds_when_the_database_never_answers(
    tmp_path: Path,
) -> None:
    """Issue 17, item 3: a port that accepts and never answers made `serve` hang silently."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(
        target=lambda: accepted.extend(listener.accept()[0] for _ in range(4)), daemon=True
    ).start()
    port = listener.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
    env.update(
        SAFESTACK_HOME=str(tmp_path),
        SAFESTACK_DB_URL=f"postgresql://gateway:s3cret@127.0.0.1:{port}/safestack",
        SAFESTACK_DB_CONNECT_TIMEOUT="2",
    )
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "safestack"), "serve", "--port", str(unused_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=45,
        )
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
    elapsed = time.monotonic() - started
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, output
    assert f"error: cannot connect to postgresql+psycopg://gateway:***@127.0.0.1:{port}" in output
    assert "timeout" in output and "s3cret" not in output
    assert elapsed < 20, elapsed  # imports (a few seconds) and the 2 s connect timeout
