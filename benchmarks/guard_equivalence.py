"""Does the guard decide as another source tree's does? Chats built from the repository's texts.

Run: .venv/bin/python benchmarks/guard_equivalence.py --baseline-src ../main/src [--limit N]
         [--precision float|int8]

Builds N chats from every text the repository holds that a user could send (benchmarks/pii_screen.py
gathers them): chat i is a system prompt, texts i and i+1 as a user and an assistant turn, text i+2
as the latest user turn, answered by text i+3. Consecutive chats share texts in other roles, so
what a guard remembers of texts it judged lately (normalised forms, embeddings, findings, verdicts)
is exercised as in a chat. Each tree's guard (the default policy, in its own process, one thread)
judges every chat's input and output in order; this prints how many chats differ in what the guard
does (the input's action, reasons (check, category, action, scope, message) and forwarded texts, the
output's action, reasons and returned text; the random canary masked), how the actions moved, the
first differences, and each tree's time. `--precision`
picks this tree's encoder copy (the baseline runs its own default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = (
    "You are SupportBot for Acme Inc. Answer questions about Acme routers and their warranty only. "
    "Never discuss competitor pricing. Keep answers short and friendly."
)


def texts(limit: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from pii_screen import repository_texts

    seen: dict[str, None] = {}
    for text in repository_texts():
        text = text[:4000]
        if text.strip():
            seen.setdefault(text, None)
    out = list(seen)
    return out[: limit + 3] if limit else out


def emit(source: Path, target: Path, precision: str | None) -> None:
    """Judge every chat in `source` (JSON) with this interpreter's safestack; write JSONL."""
    from safestack.errors import InputError
    from safestack.guard import Guard
    from safestack.judge.builtin import BuiltinModels
    from safestack.policy import default_policy
    from safestack.records import Conversation, Message, Role

    models = BuiltinModels() if precision is None else BuiltinModels(precision=precision)  # type: ignore[call-arg]
    guard = Guard(default_policy(), models=models)
    guard.warm_up()
    chats = json.loads(source.read_text(encoding="utf-8"))
    started = time.perf_counter()
    with target.open("w", encoding="utf-8") as out:
        for turns, answer in chats:
            roles = (Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER)
            conversation = Conversation(
                messages=[Message(role=r, content=t) for r, t in zip(roles, turns, strict=True)]
            )
            try:
                decision = guard.check_input(conversation)
            except InputError as exc:
                out.write(json.dumps({"error": str(exc)}) + "\n")
                continue
            canary = decision.context.canary or "\0"
            row: dict[str, Any] = {
                "action": decision.action.value,
                "reasons": [_reason(r) for r in decision.reasons],
                "forwarded": [
                    m.message.content.replace(canary, "<canary>") for m in decision.messages
                ],
                "response": decision.response,
            }
            if decision.forward:
                output = guard.check_output(conversation, answer, decision.context)
                row["output"] = {
                    "action": output.action.value,
                    "reasons": [_reason(r) for r in output.reasons],
                    "text": output.text.replace(canary, "<canary>"),
                }
            out.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"{time.perf_counter() - started:.1f}")


def _action(row: dict[str, Any], side: str) -> str | None:
    if side == "input":
        return row.get("action")
    return (row.get("output") or {}).get("action")


def _reason(reason: Any) -> list[Any]:
    return [reason.check, reason.category, reason.action.value, reason.scope, reason.index]


def run(src: Path, chats: Path, target: Path, precision: str | None) -> float:
    command = [sys.executable, __file__, "--emit", str(chats), str(target)]
    if precision:
        command += ["--precision", precision]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{src}: the guard failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-src", type=Path, required=False)
    parser.add_argument("--limit", type=int, default=1500, help="chats (0: every text)")
    parser.add_argument("--precision", choices=["float", "int8"], help="this tree's (float)")
    parser.add_argument("--emit", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit:
        emit(args.emit[0], args.emit[1], args.precision)
        return
    if args.baseline_src is None:
        parser.error("--baseline-src is required")
    pool = texts(args.limit)
    chats = [
        ([SYSTEM, pool[i], pool[i + 1], pool[i + 2]], pool[i + 3]) for i in range(len(pool) - 3)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "chats.json").write_text(json.dumps(chats), encoding="utf-8")
        precision = args.precision or "float"
        ours = run(ROOT / "src", work / "chats.json", work / "ours.jsonl", precision)
        theirs = run(args.baseline_src, work / "chats.json", work / "base.jsonl", None)
        a = (work / "ours.jsonl").read_text(encoding="utf-8").splitlines()
        b = (work / "base.jsonl").read_text(encoding="utf-8").splitlines()
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    acted = sum(json.loads(x).get("action") not in ("allow", None) for x in b)
    print(f"{len(chats)} chats ({acted} not simply allowed by the baseline)")
    print(f"this tree ({precision}): {ours:.1f} s; baseline: {theirs:.1f} s")
    print(f"chats whose guard decisions differ: {len(differ)}")
    if differ:
        print("of which the action differs (input, output), baseline -> this tree:")
        for side in ("input", "output"):
            moves: dict[str, int] = {}
            for i in differ:
                x, y = _action(json.loads(b[i]), side), _action(json.loads(a[i]), side)
                if x != y:
                    moves[f"{x} -> {y}"] = moves.get(f"{x} -> {y}", 0) + 1
            print(f"  {side}: {sum(moves.values())} " + json.dumps(moves, sort_keys=True))
    for i in differ[:10]:
        print(f"- chat {i}:\n  ours {a[i][:600]}\n  base {b[i][:600]}")


if __name__ == "__main__":
    main()
