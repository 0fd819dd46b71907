"""What the gateway adds in front of an upstream that answers instantly, per policy.

Run: .venv/bin/python benchmarks/gateway.py [--requests 300] [--seconds 10]
         [--policies default,fast,patterns] [--workers 1,2] [--baseline-src ../main/src]

Starts, on loopback only: an instant OpenAI-compatible upstream (its own process; a ~450-character
answer, streamed in 4-character chunks) and, per policy and worker count, `safestack serve` (its
own processes: SQLite audit log under a temporary SAFESTACK_HOME, auth on with a key whose limit
is out of the way; rate limits in memory for one worker, in Redis (`--redis`) for several). This
process is the client. Everything shares the machine's cores (2 on the development machine).

Every request differs from the others as a chat's do: the latest user turn carries a ticket number
and the upstream's answer ends with its own, while the earlier turns repeat (a chat client resends
them each turn). So nothing is judged from a memory of the same request, but what a gateway may
remember of earlier turns counts, as it would in service (`--same-text` sends identical requests,
as this benchmark did before the gateway remembered anything). `--baseline-src` also runs the gateway
from another source tree (e.g. the main branch) with one worker, in the same run, for a before/
after under the same load.

Per policy it prints, for a three-turn chat (system, user, assistant, user):
- added latency, non-streaming: p50/p99 of (via the gateway) minus p50/p99 of (direct to the
  upstream), one request at a time;
- streaming time to first token: p50/p99 of the first content chunk, via the gateway and direct;
- sustained requests/s: non-streaming chat through the gateway, 16 concurrent clients, for at most
  `--seconds` or 20x `--requests` requests; and /v1/moderations on one message the same way.

Policies: `default` (the packaged policy: rules, presidio PII, built-in harm/attack models,
elections, indirect injection), `fast` (the same without presidio, harm and attack on their fast
tier), `patterns` (pattern detectors only: rules, elections, indirect injection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

SYSTEM = (
    "You are SupportBot for Acme Inc. Answer questions about Acme routers and their warranty only. "
    "Never discuss competitor pricing. Keep answers short and friendly."
)
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {
        "role": "user",
        "content": "Hi! My Acme X200 router keeps dropping the Wi-Fi connection every evening.",
    },
    {
        "role": "assistant",
        "content": "Sorry to hear that. Does it happen on every device, or only on some of them?",
    },
    {"role": "user", "content": "Every device. I already restarted it twice. What else can I try?"},
]
ANSWER = (
    "Let's try a few things. First, update the firmware: open the Acme app, go to Settings, then "
    "Firmware, and install the latest version. Second, change the Wi-Fi channel to 1, 6 or 11 to "
    "avoid interference from your neighbours' networks. Third, move the router away from "
    "microwaves and thick walls. If it still drops every evening, hold the reset button for thirty "
    "seconds and set it up again; your warranty covers a replacement if the problem persists."
)
CONCURRENCY = 16


# -- the instant upstream (run in its own process) ------------------------------------------------
def upstream_app(same_text: bool = False) -> Any:
    import itertools

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    tickets = itertools.count(1)

    def completion(answer: str) -> bytes:
        return json.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 0,
                "model": "bench",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 60, "completion_tokens": 100, "total_tokens": 160},
            }
        ).encode()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def events(answer: str) -> list[bytes]:
        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": answer[i : i + 4]}) for i in range(0, len(answer), 4)]
        return [*out, chunk({}, "stop"), b"data: [DONE]\n\n"]

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "bench", "object": "model"}]})

    async def completions(request: Request) -> Response:
        body = await request.json()
        answer = ANSWER if same_text else f"{ANSWER} Ticket {next(tickets)}."
        if body.get("stream"):

            async def stream() -> Any:
                for event in events(answer):
                    yield event

            return StreamingResponse(stream(), media_type="text/event-stream")
        return Response(completion(answer), media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", completions, methods=["POST"]),
        ]
    )


def serve_upstream(port: int, same_text: bool) -> None:
    import uvicorn

    uvicorn.run(
        upstream_app(same_text), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


# -- policies --------------------------------------------------------------------------------------
def write_policy(name: str, directory: Path) -> Path | None:
    if name == "default":
        return None
    from safestack.policy import default_policy

    data = default_policy().model_dump(mode="json")
    detectors = data["guard"]["detectors"]
    if name == "fast":
        for scope in detectors:
            detectors[scope] = [d for d in detectors[scope] if d != "pii"]
        data["judge"]["detectors"] = [
            {"name": d["name"], "options": {**d.get("options", {}), "tiers": "fast"}}
            if d["name"] in ("harm", "attack")
            else d
            for d in data["judge"]["detectors"]
            if d["name"] != "pii"
        ]
    elif name == "patterns":
        keep = {"rules", "elections", "indirect-injection"}
        for scope in detectors:
            detectors[scope] = [d for d in detectors[scope] if d in keep]
        data["judge"]["detectors"] = [d for d in data["judge"]["detectors"] if d["name"] == "rules"]
    else:
        raise SystemExit(f"unknown policy '{name}': use default, fast or patterns")
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- measuring -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


_tickets = iter(range(1, 10**9))


SAME_TEXT = False  # --same-text: every request identical (what a gateway remembers counts fully)


def _numbered(text: str) -> str:
    return text if SAME_TEXT else f"{text} (ticket {next(_tickets)})"


def chat_body(stream: bool = False) -> dict[str, Any]:
    """The three-turn chat, its latest user turn numbered (earlier turns repeat, as in a chat)."""
    messages = [*MESSAGES[:3], {"role": "user", "content": _numbered(MESSAGES[3]["content"])}]
    return {"model": "bench", "messages": messages, "stream": stream}


def moderation_body() -> dict[str, Any]:
    return {"input": _numbered(MESSAGES[3]["content"])}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(client: httpx.Client, url: str, headers: dict[str, str], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        body = chat_body()
        started = time.perf_counter()
        response = client.post(url, json=body, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


def first_tokens(
    client: httpx.Client, url: str, headers: dict[str, str], count: int
) -> list[float]:
    samples = []
    for _ in range(count):
        body = chat_body(stream=True)
        started = time.perf_counter()
        first = None
        with client.stream("POST", url, json=body, headers=headers) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if (
                    first is None
                    and line.startswith("data: {")
                    and '"content":"' in line.replace(" ", "")
                    and '"content":""' not in line.replace(" ", "")
                ):
                    first = (time.perf_counter() - started) * 1000
        assert first is not None
        samples.append(first)
    return samples


async def sustained(
    url: str,
    headers: dict[str, str],
    body: Callable[[], dict[str, Any]],
    seconds: float,
    limit: int,
) -> tuple[float, int, int]:
    """(requests/s, requests done, failures) with CONCURRENCY clients for `seconds` at most."""
    done = failures = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal done, failures
            while time.perf_counter() < deadline and done + failures < limit:
                response = await client.post(url, json=body(), headers=headers)
                if response.status_code == 200:
                    done += 1
                else:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return done / elapsed, done, failures


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its live descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += used.get(current, 0.0)
        pending.extend(children.get(current, []))
    return total


def throughput(
    label: str,
    run: Callable[[], tuple[float, int, int]],
    gateway: int,
    upstream: int,
) -> None:
    """Run a sustained phase; print its rate and the CPU each request cost, per process, and
    the rate those costs allow on this machine's cores when nothing else runs (a shared machine's
    measured rate is lower by what the other processes take)."""
    before = (tree_cpu(gateway), tree_cpu(upstream), sum(os.times()[:2]))
    rate, done, failed = run()
    after = (tree_cpu(gateway), tree_cpu(upstream), sum(os.times()[:2]))
    cost = [1000 * (b - a) / max(1, done + failed) for a, b in zip(before, after, strict=True)]
    bound = 1000 * (os.cpu_count() or 1) / max(1e-9, sum(cost))
    print(
        f"  sustained {label}: {rate:7.1f} req/s ({done} ok, {failed} failed, {CONCURRENCY} "
        f"concurrent) | CPU ms/request: gateway {cost[0]:.2f}, upstream {cost[1]:.2f}, client "
        f"{cost[2]:.2f} -> at most {bound:.0f} req/s on {os.cpu_count()} idle cores"
    )


def row(label: str, via: list[float], direct: list[float]) -> str:
    p50, p99 = statistics.median(via), percentile(via, 0.99)
    d50, d99 = statistics.median(direct), percentile(direct, 0.99)
    return (
        f"  {label:<28} via gateway p50 {p50:7.2f} ms p99 {p99:7.2f} ms | direct p50 {d50:6.2f} "
        f"p99 {d99:6.2f} | added p50 {p50 - d50:7.2f} ms p99 {p99 - d99:7.2f} ms"
    )


def bench_policy(
    name: str,
    upstream: str,
    args: argparse.Namespace,
    home: Path,
    workers: int,
    source: str | None = None,
) -> None:
    from safestack.store import Store

    policy = write_policy(name, home)
    port = free_port()
    label = f"{name}-{workers}w" + ("-baseline" if source else "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
    env["SAFESTACK_HOME"] = str(home / label)
    if source is not None:
        env["PYTHONPATH"] = source
    command = [str(Path(sys.executable).parent / "safestack"), "serve", "--port", str(port)]
    command += ["--upstream", upstream, "--log-level", "warning"]
    if workers > 1:
        command += ["--workers", str(workers)]
        env["SAFESTACK_REDIS_URL"] = args.redis
    if policy is not None:
        command += ["--policy", str(policy)]
    # Its own process group: stopping it stops its workers too.
    (home / label).mkdir(parents=True, exist_ok=True)
    output = home / label / "serve.log"
    with output.open("wb") as log:
        gateway = subprocess.Popen(command, env=env, stdout=log, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        wait_for(base + "/healthz", gateway, seconds=300)
        while workers > 1 and "workers serve" not in output.read_text(errors="replace"):
            if time.monotonic() > started + 300 or gateway.poll() is not None:
                raise SystemExit(f"the {workers} workers did not all start: see {output}")
            time.sleep(0.5)
        startup = time.monotonic() - started
        with Store.open(f"sqlite:///{home / label / 'safestack.db'}") as store:
            _, secret = store.keys.create(
                "bench", ["chat", "moderate"], rate_per_minute=10**9, burst=10**6
            )
        headers = {"authorization": f"Bearer {secret}"}
        chat, direct = base + "/v1/chat/completions", upstream + "/chat/completions"
        limit = 20 * args.requests
        # Warm every worker: connections, caches, the model list.
        asyncio.run(sustained(chat, headers, chat_body, 2.0, 40 * workers))
        with httpx.Client(timeout=60) as client:
            latencies(client, chat, headers, 20)
            first_tokens(client, chat, headers, 5)
            via = latencies(client, chat, headers, args.requests)
            plain = latencies(client, direct, {}, args.requests)
            via_ttft = first_tokens(client, chat, headers, args.requests // 2)
            plain_ttft = first_tokens(client, direct, {}, args.requests // 2)
        print(
            f"policy {name}, {workers} worker(s)" + (f", gateway from {source}" if source else "")
        )
        print(
            f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; serving "
            f"{startup:.1f} s after start"
        )
        print(row("chat, non-streaming", via, plain))
        print(row("chat, streaming TTFT", via_ttft, plain_ttft))
        throughput(
            "chat",
            lambda: asyncio.run(sustained(chat, headers, chat_body, args.seconds, limit)),
            gateway.pid,
            args.upstream_pid,
        )
        moderations = base + "/v1/moderations"
        throughput(
            "moderations",
            lambda: asyncio.run(
                sustained(moderations, headers, moderation_body, args.seconds, limit)
            ),
            gateway.pid,
            args.upstream_pid,
        )
        sys.stdout.flush()
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="sequential requests per latency figure"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="at most this long per throughput figure"
    )
    parser.add_argument("--policies", default="default,fast,patterns")
    parser.add_argument(
        "--workers", default="1", help="gateway processes, a comma-separated list (e.g. 1,2)"
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="Redis for the rate limits when a gateway has several workers",
    )
    parser.add_argument(
        "--baseline-src",
        help="also run each policy with the gateway imported from this source tree, one worker",
    )
    parser.add_argument(
        "--same-text",
        action="store_true",
        help="send the same chat and answer every time (the figures then show what a gateway "
        "remembers, not what it judges)",
    )
    parser.add_argument("--upstream-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream_server:
        serve_upstream(args.upstream_server, args.same_text)
        return
    global SAME_TEXT
    SAME_TEXT = args.same_text
    print(f"{os.cpu_count()} cores; client, gateway and upstream on this machine, loopback")
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--upstream-server", str(port)]
        + (["--same-text"] if args.same_text else [])
    )
    args.upstream_pid = upstream.pid
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models", upstream)
        base = f"http://127.0.0.1:{port}/v1"
        with tempfile.TemporaryDirectory() as home:
            for name in args.policies.split(","):
                if args.baseline_src:
                    source = str(Path(args.baseline_src).resolve())
                    bench_policy(name.strip(), base, args, Path(home), 1, source)
                for workers in args.workers.split(","):
                    bench_policy(name.strip(), base, args, Path(home), int(workers))
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)


if __name__ == "__main__":
    main()
