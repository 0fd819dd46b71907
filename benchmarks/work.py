"""What one request's work costs the gateway under a policy: the figures behind the per-request
limits (docs/server.md, "Limits").

Run: .venv/bin/python benchmarks/work.py [--policy FILE] [--repeat 3]

Times, in this process and one thread (best of `--repeat`), the guard's input check on chats of
4 to 1,024 short messages and on 10,000 to 100,000 characters, and the judge on moderation
batches of 1 to 1,024 short strings and on 10,000 to 100,000 characters: the work the gateway
does before anything goes upstream. HTTP, JSON and the audit write add about 2 ms per request
(docs/server.md, "Latency and throughput").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from safestack.guard import Guard
from safestack.judge import Judge
from safestack.policy import default_policy, load_policy
from safestack.records import Conversation, Message, Role

PROSE = (
    "My router drops the connection every evening and I have already restarted it twice; the "
    "light on the front blinks orange for a minute before it comes back. What else can I try? "
)


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def text(chars: int) -> str:
    return (PROSE * (chars // len(PROSE) + 1))[:chars]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, help="policy YAML (default: the built-in one)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy(args.policy) if args.policy else default_policy()
    judge = Judge.from_policy(policy)
    guard = Guard(policy, judge)
    guard.warm_up()

    def chat(messages: list[Message]) -> Callable[[], object]:
        return lambda: guard.check_input(Conversation(messages=messages))

    print(f"policy {policy.ref}, best of {args.repeat}")
    for count in (4, 64, 256, 1024):
        roles = (Role.USER, Role.ASSISTANT)
        messages = [Message(role=roles[i % 2], content=f"{i}: {PROSE[:40]}") for i in range(count)]
        print(f"  chat, {count:>5,} short messages: {best(args.repeat, chat(messages)):6.2f} s")
    for chars in (10_000, 50_000, 100_000):
        messages = [Message(role=Role.USER, content=text(chars))]
        print(f"  chat, {chars:>7,} characters:    {best(args.repeat, chat(messages)):6.2f} s")
    for count in (1, 64, 256, 1024):
        strings = [f"string {i}: {PROSE[:40]}" for i in range(count)]
        seconds = best(
            args.repeat, lambda s=strings: judge.check_batch([judge.prepare(t) for t in s])
        )
        print(f"  moderation, {count:>5,} strings:    {seconds:6.2f} s")
    for chars in (10_000, 50_000, 100_000):
        sample = [judge.prepare(text(chars))]
        seconds = best(args.repeat, lambda s=sample: judge.check_batch(s))
        print(f"  moderation, {chars:>7,} characters: {seconds:6.2f} s")


if __name__ == "__main__":
    main()
