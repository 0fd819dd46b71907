"""`safestack serve` as a user starts it: no configuration, SQLite under SAFESTACK_HOME, built-in
models; without an upstream it says in one line how to set one, and moderations still work."""

from __future__ import annotations

import os
import re
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


# -- several worker processes (`--workers`) --------------------------------------------------------


def serve_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
    return {**env, "SAFESTACK_HOME": str(home), **extra}


def test_several_workers_without_redis_are_refused_with_the_fix(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "safestack"), "serve", "--workers", "2"],
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "--workers 2 needs rate limits the workers share" in message
    assert "SAFESTACK_REDIS_URL" in message and "Traceback" not in message


@pytest.mark.slow
def test_workers_share_the_store_and_the_rate_limits(tmp_path: Path) -> None:
    from services import REDIS_URL

    port = unused_port()
    log = tmp_path / "serve.log"
    command = [str(Path(sys.executable).parent / "safestack"), "serve", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--workers", "2"],
            env=serve_env(tmp_path, SAFESTACK_REDIS_URL=REDIS_URL),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "all 2 workers serve" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the workers did not start:\n{log.read_text()}")
            time.sleep(0.5)
        with Store.open(f"sqlite:///{tmp_path}/safestack.db") as store:
            _, secret = store.keys.create("workers", ["moderate"], rate_per_minute=1, burst=3)
        headers = {"authorization": f"Bearer {secret}"}
        # A new connection each time, so both workers take requests; the bucket is in Redis.
        statuses = [
            httpx.post(
                f"http://127.0.0.1:{port}/v1/moderations", json={"input": "hi"}, headers=headers
            ).status_code
            for _ in range(8)
        ]
        assert sorted(statuses) == [200] * 3 + [429] * 5
        # Each worker journals its events and drains them into the store every 0.5 s.
        audited: list[int | None] = []
        deadline = time.monotonic() + 30
        while len(audited) < len(statuses) and time.monotonic() < deadline:
            time.sleep(0.25)
            with Store.open(f"sqlite:///{tmp_path}/safestack.db") as store:
                audited = [e.status_code for e in store.audit.events()]
        assert sorted(audited, key=str) == sorted(statuses, key=str)
        workers = [
            int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log.read_text())
        ]
        assert len(workers) == 2
    finally:
        process.terminate()
        process.wait(timeout=60)
    for pid in workers:  # stopping the supervisor stops its workers
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_shared_port_gives_connections_without_nagle_delays() -> None:
    # uvicorn's own bind_socket makes a protocol-0 socket; asyncio then leaves TCP_NODELAY off on
    # the connections it accepts, and each answer waited 40 ms for the client's delayed ACK.
    import asyncio
    import socket

    from safestack.cli.serve import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    nodelay: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw = writer.get_extra_info("socket")
            nodelay.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            while not nodelay:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert nodelay == [1]


def test_a_port_in_use_is_a_clear_error() -> None:
    from safestack.cli.serve import listening_socket
    from safestack.errors import SafestackError

    taken = listening_socket("127.0.0.1", 0)
    taken.listen()
    with pytest.raises(SafestackError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
        listening_socket("127.0.0.1", taken.getsockname()[1])
    taken.close()


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
