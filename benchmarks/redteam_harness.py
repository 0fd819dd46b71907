"""Red-team harness overhead: attempts/s of safestack, garak and PyRIT against one local
OpenAI-compatible server that answers instantly, for the same prompts; plus the local model's tokens/s.

Run: .venv/bin/python benchmarks/redteam_harness.py [--prompts 200] [--high 16] [--repeats 1]
     [--peer-python .venv-bench/bin/python] [--profile] [--json]
     (or `make bench-redteam`, which builds .venv-bench); about 3 minutes with the defaults.

What runs, on loopback only, each harness in its own process (none shares the GIL with another):
- the server: Starlette + uvicorn answering POST /v1/chat/completions with a fixed refusal and
  `usage`; it counts the chat requests and digests the user prompts it saw, so every row is checked
  to have sent exactly the N prompts (GET /count);
- the prompts: the first N HarmBench behaviours as safestack loads them (`harmbench`, `limit: N`;
  all 200 by default), written to a temporary file the peers read;
- safestack: the `baseline` attack, `openai` target, no system prompt (the peers send none),
  SQLite store in a temporary directory, scorers `[refusal]` (the built-in model) and `[]`;
  in-process `Runner` (run time = `Runner.run`, attempts = rows stored) and once via the CLI;
- garak 0.17.1: its `openai.OpenAICompatible` generator, `test.Test` probe whose prompts are replaced
  by the N prompts (its detector is `always.Pass`), `--generations 1`; run time = `garak.cli.main`;
- PyRIT 1.1.0: `OpenAIChatTarget` + `PromptSendingAttack` through `AttackExecutor`, in-memory
  memory, no scorer; run time = `execute_attack_async`.
garak and PyRIT live in a separate venv (`--peer-python`): their pins conflict with the project's.
Concurrency: 1 (garak's and PyRIT's defaults) and `--high` for all three. "process s" is the whole
subprocess (interpreter start and imports included). Finally, the `gguf` target (Gemma 3 270M,
llama.cpp) generates `--model-tokens` tokens greedily a few times: completion tokens per second.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
ANSWER = "I can't help with that."
MODEL_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
RUN_TIMEOUT_S = 300


def prompts_digest(prompts: Sequence[str]) -> str:
    """Order-free digest of a multiset of prompts: what the server saw must equal what was sent."""
    return hashlib.sha256("\0".join(sorted(prompts)).encode()).hexdigest()


# -- the instant server (its own process) --------------------------------------------------------
def serve() -> None:
    """Serve on a free loopback port; print the port on the first line of stdout."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    seen: list[str] = []
    span: list[float] = []

    async def completions(request: Request) -> Response:
        body = await request.json()
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        text = users[-1].get("content", "") if users else ""
        if isinstance(text, list):  # content parts
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        seen.append(text)
        now = time.time()
        span[:] = [span[0] if span else now, now]
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(seen)}",
                "object": "chat.completion",
                "created": int(now),
                "model": body.get("model", "instant"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": 7,
                    "total_tokens": prompt_tokens + 7,
                },
            }
        )

    async def count(request: Request) -> Response:
        first, last = span if span else (0.0, 0.0)
        return JSONResponse(
            {"requests": len(seen), "digest": prompts_digest(seen), "span_s": last - first}
        )

    async def reset(request: Request) -> Response:
        seen.clear()
        span.clear()
        return JSONResponse({"requests": 0})

    async def root(request: Request) -> Response:  # garak's connectivity check GETs the base URL
        return JSONResponse({"object": "list", "data": [{"id": "instant", "object": "model"}]})

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/chat/completions", completions, methods=["POST"]),
            Route("/count", count),
            Route("/reset", reset, methods=["POST"]),
            Route("/v1/", root),
            Route("/v1", root),
            Route("/v1/models", root),
        ]
    )
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listener
    # says so, and without it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


class Server:
    """The instant server as a child process; `check()` reads and resets its counters."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "_serve"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/count", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit("the instant server did not come up")

    def reset(self) -> None:
        httpx.post(f"{self.base}/reset")

    def check(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.base}/count").json()
        self.reset()
        return data

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- safestack (its own process) -------------------------------------------------------------------
def campaign(base: str, prompts: int, concurrency: int, scorers: list[str]) -> dict[str, Any]:
    return {
        "name": f"bench-c{concurrency}-{'-'.join(scorers) or 'none'}",
        "seed": 0,
        "targets": [
            {
                "name": "instant",
                "kind": "openai",
                "system_prompt": None,  # garak and PyRIT send the prompt alone
                "concurrency": concurrency,
                "timeout_s": 30,
                "options": {"base_url": f"{base}/v1", "model": "instant", "api_key": "dummy"},
            }
        ],
        "behaviours": [{"source": "harmbench", "options": {"limit": prompts}}],
        "attacks": [{"name": "baseline"}],
        "scorers": scorers,
        "generation": {"temperature": 0.0, "max_tokens": 128, "seed": 0},
    }


def safestack_worker(campaign_path: str, db_url: str, profile: str | None) -> None:
    """Run one campaign in this process and print its timings as JSON."""
    started = time.perf_counter()
    from safestack.policy import default_policy
    from safestack.redteam.campaign import load_campaign
    from safestack.redteam.runner import Runner
    from safestack.store import Store

    imported = time.perf_counter()
    spec = load_campaign(campaign_path)
    store = Store.open(db_url)
    runner = Runner(spec, store, default_policy())
    todo, _ = runner.pending()
    ready = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    result = asyncio.run(runner.run(todo))
    finished = time.perf_counter()
    if profile:
        profiler.disable()
        profiler.dump_stats(profile)
    stored = len(store.runs.attempt_keys(runner.run_id))
    print(
        json.dumps(
            {
                "attempts": stored,
                "errors": result.errors,
                "import_s": imported - started,
                "setup_s": ready - imported,
                "loop_s": finished - ready,
                # As for the peers: everything after the imports (store, plan, run).
                "run_s": finished - imported,
            }
        )
    )


def run_safestack(
    server: Server, work: Path, prompts: int, concurrency: int, scorers: list[str], profile: bool
) -> dict[str, Any]:
    data = campaign(server.base, prompts, concurrency, scorers)
    path = work / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    db = work / f"{data['name']}-{time.monotonic_ns()}.db"
    command = [sys.executable, __file__, "_safestack", str(path), f"sqlite:///{db}"]
    if profile:
        command.append(str(work / f"{data['name']}.pstats"))
    return measured(command, server, work)


def run_safestack_cli(
    server: Server, work: Path, prompts: int, concurrency: int, scorers: list[str]
) -> dict[str, Any]:
    data = campaign(server.base, prompts, concurrency, scorers)
    path = work / f"cli-{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {
        "SAFESTACK_DB_URL": f"sqlite:///{work / f'cli-{time.monotonic_ns()}.db'}",
        "SAFESTACK_HOME": str(work / "safestack-home"),
    }
    command = [str(Path(sys.executable).parent / "safestack"), "redteam", "run", str(path)]
    figures = measured(command, server, work, env=env, expect_json=False)
    figures["attempts"] = figures["server"]["requests"]
    return figures


# -- garak and PyRIT (the peer venv) ---------------------------------------------------------------
GARAK_RUNNER = """
import json, sys, time
started = time.perf_counter()
import garak.cli
import garak.probes.test
prompts = json.load(open(sys.argv[1], encoding="utf-8"))
# The test probe (detector always.Pass) asks exactly these prompts.
garak.probes.test.Test.prompts = prompts
imported = time.perf_counter()
try:
    garak.cli.main(sys.argv[2:])
except SystemExit as exc:
    if exc.code not in (None, 0):
        raise
finished = time.perf_counter()
print(json.dumps({"import_s": imported - started, "run_s": finished - imported}))
"""

PYRIT_RUNNER = """
import asyncio, json, sys, time
started = time.perf_counter()
from pyrit.executor.attack import AttackExecutor, PromptSendingAttack
from pyrit.prompt_target import OpenAIChatTarget
from pyrit.setup import IN_MEMORY, initialize_pyrit_async
prompts = json.load(open(sys.argv[1], encoding="utf-8"))
base, concurrency = sys.argv[2], int(sys.argv[3])
imported = time.perf_counter()

async def main():
    await initialize_pyrit_async(memory_db_type=IN_MEMORY, silent=True)
    ready = time.perf_counter()
    target = OpenAIChatTarget(endpoint=base + "/v1", api_key="dummy", model_name="instant")
    attack = PromptSendingAttack(objective_target=target)
    result = await AttackExecutor(max_concurrency=concurrency).execute_attack_async(
        attack=attack, objectives=prompts
    )
    finished = time.perf_counter()
    done = len(result.completed_results)
    return {
        "attempts": done,
        "setup_s": ready - imported,
        "loop_s": finished - ready,
        "run_s": finished - imported,
    }

figures = asyncio.run(main())
figures["import_s"] = imported - started
print(json.dumps(figures))
"""


def peer_env(work: Path) -> dict[str, str]:
    """A fresh HOME and XDG dirs (reports and caches land there) and no network wanted."""
    home = work / "peer-home"
    for sub in ("data", "cache", "config"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "OPENAICOMPATIBLE_API_KEY": "dummy",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "TQDM_DISABLE": "1",
    }


def run_garak(
    server: Server, work: Path, peer: str, prompts_file: Path, prompts: int, parallel: int
) -> dict[str, Any]:
    options = work / "garak-generator.json"
    options.write_text(
        json.dumps({"openai": {"OpenAICompatible": {"uri": f"{server.base}/v1/"}}}), "utf-8"
    )
    config = work / "garak-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "run": {"soft_probe_prompt_cap": max(prompts, 256)},
                "reporting": {"report_dir": str(work / "garak-reports")},
            }
        )
    )
    runner = work / "garak_runner.py"
    runner.write_text(GARAK_RUNNER, "utf-8")
    command = [peer, str(runner), str(prompts_file)]
    command += ["--config", str(config), "--target_type", "openai.OpenAICompatible"]
    command += ["--target_name", "instant", "--generator_option_file", str(options)]
    command += ["--probes", "test.Test", "--generations", "1"]
    command += ["--report_prefix", f"bench-p{parallel}"]
    if parallel > 1:
        command += ["--parallel_attempts", str(parallel)]
    figures = measured(command, server, work, env=peer_env(work))
    figures["attempts"] = figures["server"]["requests"]
    return figures


def run_pyrit(
    server: Server, work: Path, peer: str, prompts_file: Path, concurrency: int
) -> dict[str, Any]:
    runner = work / "pyrit_runner.py"
    runner.write_text(PYRIT_RUNNER, "utf-8")
    command = [peer, str(runner), str(prompts_file), server.base, str(concurrency)]
    return measured(command, server, work, env=peer_env(work))


def measured(
    command: list[str],
    server: Server,
    work: Path,
    env: dict[str, str] | None = None,
    expect_json: bool = True,
) -> dict[str, Any]:
    """Run `command` to completion; its JSON last line, its wall time and what the server saw."""
    server.reset()
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=work,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:3])}… exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    figures: dict[str, Any] = {}
    if expect_json:
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_s"] = process_s
    figures["server"] = server.check()
    return figures


# -- raw httpx: the ceiling of this server and client on this machine ------------------------------
async def raw_httpx(base: str, prompts: Sequence[str], concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:

        async def one(text: str) -> None:
            async with limit:
                body = {"model": "instant", "messages": [{"role": "user", "content": text}]}
                response = await client.post(f"{base}/v1/chat/completions", json=body)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(p) for p in prompts))
        return time.perf_counter() - started


# -- the local model's tokens/s (its own process) --------------------------------------------------
def model_worker(max_tokens: int, runs: int) -> None:
    from safestack.errors import SafestackError
    from safestack.models.base import GenerationSettings
    from safestack.models.gguf import GGUFModel
    from safestack.records import Message, Role

    messages = [Message(role=Role.USER, content=MODEL_PROMPT)]
    greedy = GenerationSettings(temperature=0.0, max_tokens=max_tokens, seed=0)

    async def measure() -> dict[str, Any]:
        model = GGUFModel()
        started = time.perf_counter()
        await model.complete(messages, greedy.model_copy(update={"max_tokens": 4}))
        load_s = time.perf_counter() - started
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            completion = await model.complete(messages, greedy)
            seconds = time.perf_counter() - started
            samples.append(
                {
                    "completion_tokens": completion.completion_tokens,
                    "prompt_tokens": completion.prompt_tokens,
                    "seconds": seconds,
                }
            )
        await model.aclose()
        rates = [s["completion_tokens"] / s["seconds"] for s in samples]
        return {
            "model": model.model_id,
            "load_s": load_s,
            "samples": samples,
            "tokens_per_s": statistics.median(rates),
        }

    try:
        figures = asyncio.run(measure())
    except SafestackError as exc:  # the runtime or the model package is not installed
        figures = {"skipped": str(exc)}
    print(json.dumps(figures))


def run_model(max_tokens: int, runs: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "_model", str(max_tokens), str(runs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if done.returncode != 0:
        return {"skipped": f"exited {done.returncode}: {done.stderr.strip()[-500:]}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the table -------------------------------------------------------------------------------------
def load_prompts(count: int) -> list[str]:
    from safestack.redteam.behaviours import behaviour_sources
    from safestack.registry import parse_options

    cls = behaviour_sources.get("harmbench")
    source = cls(parse_options(cls.Options, {"limit": count}, where="harmbench"))
    return [b.text for b in source.load().behaviours]


def show(rows: list[dict[str, Any]], model: dict[str, Any], load: Sequence[float]) -> None:
    from rich.console import Console
    from rich.table import Table

    def rate(harness: str, concurrency: int) -> float | None:
        rates = [
            r["rate"]
            for r in rows
            if r["harness"] == harness and r["concurrency"] == concurrency and r["rate"]
        ]
        return rates[0] if rates else None

    table = Table(title="Red-team harness overhead (instant local server)", title_justify="left")
    columns = (
        "harness",
        "setting",
        "conc.",
        "attempts",
        "process s",
        "run s",
        "attempts/s",
        "span s",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("harness", "setting") else "right")
    table.add_column("vs garak", justify="right")
    table.add_column("vs PyRIT", justify="right")
    for row in rows:
        ratios = []
        for peer in ("garak", "pyrit"):
            base = rate(peer, row["concurrency"])
            ratios.append(f"{row['rate'] / base:.1f}×" if base and row["rate"] else "-")
        table.add_row(
            row["harness"],
            row["setting"],
            str(row["concurrency"]),
            f"{row['attempts']}{' (!)' if 'warning' in row['figures'] else ''}",
            f"{row['process_s']:.2f}" if row.get("process_s") else "-",
            f"{row['run_s']:.2f}" if row["run_s"] else "-",
            f"{row['rate']:,.1f}",
            f"{row['span_s']:.2f}" if row.get("span_s") else "-",
            *ratios,
        )
    console = Console(stderr=True, width=160)
    console.print(table)
    if not any("warning" in row["figures"] for row in rows):
        console.print(
            f"every row: the server saw exactly {rows[0]['attempts']} chat requests, carrying the "
            "same prompts (sha256 of the sorted user messages)"
        )
    console.print(
        "attempts/s = attempts / run s (after the imports: setup, sending, scoring, storing, "
        "reports); span s = the server's first to last request; ratios compare attempts/s at the "
        "same concurrency"
    )
    if "skipped" in model:
        console.print(f"local model tokens/s: skipped ({model['skipped']})")
    else:
        runs = ", ".join(
            f"{s['completion_tokens']} tok in {s['seconds']:.2f} s" for s in model["samples"]
        )
        console.print(
            f"local model {model['model']} (gguf, greedy): {model['tokens_per_s']:.1f} tokens/s "
            f"median ({runs}; load {model['load_s']:.1f} s)"
        )
    console.print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200, help="HarmBench behaviours (≤ 200).")
    parser.add_argument("--high", type=int, default=16, help="The higher concurrency setting.")
    parser.add_argument("--peer-python", default=".venv-bench/bin/python")
    parser.add_argument("--skip-peers", action="store_true", help="safestack only.")
    parser.add_argument(
        "--repeats", type=int, default=1, help="Runs per row; the fastest is shown."
    )
    parser.add_argument("--model-tokens", type=int, default=128)
    parser.add_argument("--model-runs", type=int, default=3, help="0 skips the local model.")
    parser.add_argument("--profile", action="store_true", help="cProfile each safestack run.")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    peer = str(Path(args.peer_python).absolute())
    if not args.skip_peers and not Path(peer).exists():
        raise SystemExit(f"{peer} not found: `make bench-redteam` builds it, or --skip-peers")

    load_before = os.getloadavg()
    prompts = load_prompts(args.prompts)
    digest = prompts_digest(prompts)
    work = Path(tempfile.mkdtemp(prefix="safestack-bench-redteam-"))
    prompts_file = work / "prompts.json"
    prompts_file.write_text(json.dumps(prompts), "utf-8")
    rows: list[dict[str, Any]] = []

    def add(harness: str, setting: str, concurrency: int, figures: dict[str, Any]) -> None:
        seen = figures.get("server", {})
        if seen and (seen["requests"] != len(prompts) or seen["digest"] != digest):
            figures["warning"] = (
                f"server saw {seen['requests']} requests (digest match: {seen['digest'] == digest})"
            )
            print(f"warning: {harness} {setting}: {figures['warning']}", file=sys.stderr)
        run_s = figures.get("run_s")
        attempts = figures.get("attempts", len(prompts))
        rate = attempts / run_s if run_s else attempts / figures["process_s"]
        rows.append(
            {
                "harness": harness,
                "setting": setting,
                "concurrency": concurrency,
                "attempts": attempts,
                "run_s": run_s,
                "process_s": figures.get("process_s"),
                "span_s": seen.get("span_s"),
                "rate": rate,
                "figures": figures,
            }
        )
        print(f"{harness} {setting} c={concurrency}: {rate:,.1f} attempts/s", file=sys.stderr)

    def best(run: Callable[..., dict[str, Any]], *given: Any) -> dict[str, Any]:
        """The fastest of `--repeats` runs (the least disturbed by other load), with all times."""
        runs = [run(*given) for _ in range(args.repeats)]
        key = "run_s" if "run_s" in runs[0] else "process_s"
        chosen = min(runs, key=lambda f: f[key])
        chosen["all_" + key] = [f[key] for f in runs]
        return chosen

    def raw(level: int) -> dict[str, Any]:
        return {
            "run_s": asyncio.run(raw_httpx(server.base, prompts, level)),
            "server": server.check(),
        }

    server = Server()
    n = len(prompts)
    try:
        levels = sorted({1, args.high})
        for level in levels:
            add("raw httpx", "ceiling", level, best(raw, level))
        for level in levels:
            for scorers in (["refusal"], []):
                figures = best(run_safestack, server, work, n, level, scorers, args.profile)
                add("safestack", f"scorers {scorers or '[]'}", level, figures)
        figures = best(run_safestack_cli, server, work, n, args.high, ["refusal"])
        add("safestack CLI", "scorers ['refusal']", args.high, figures)
        if not args.skip_peers:
            for level in levels:
                figures = best(run_garak, server, work, peer, prompts_file, n, level)
                setting = "default (serial)" if level == 1 else f"--parallel_attempts {level}"
                add("garak", setting, level, figures)
            for level in levels:
                figures = best(run_pyrit, server, work, peer, prompts_file, level)
                add("pyrit", f"max_concurrency {level}", level, figures)
    finally:
        server.close()
    model = run_model(args.model_tokens, args.model_runs) if args.model_runs else {"skipped": "0"}
    load = os.getloadavg()
    show(rows, model, load)
    if args.profile or args.keep:
        print(f"work directory (profiles, reports): {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {
                    "prompts": len(prompts),
                    "prompts_sha256": digest,
                    "rows": rows,
                    "local_model": model,
                    "load_average": {"before": load_before, "after": load},
                    "cores": os.cpu_count(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "_serve":
        serve()
    elif role == "_safestack":
        safestack_worker(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif role == "_model":
        model_worker(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
