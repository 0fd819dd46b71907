"""The in-process guard on a typical three-turn conversation, with the default policy.

Run: .venv/bin/python benchmarks/guard_pipeline.py [--rounds 200] [--distinct] [--profile OUT]
         [--precision int8|float]
Prints p50/p99 of `check_input` (system prompt, user, assistant, user), of `check_output` on a
~400-character answer, and of a guarded stream of that answer in 4-character chunks (total check
time, and characters received before the first release: time to first token is that many
characters of generation). Detectors are warmed up first; one thread.

`--distinct` numbers the latest user turn and the answer per round, as benchmarks/gateway.py does
(the earlier turns repeat, as in a chat): what a distinct request costs. `--profile OUT` writes a
cProfile of the measured rounds to OUT (read it with `python -m pstats OUT`).
"""

from __future__ import annotations

import argparse
import cProfile
import statistics
import time
from pathlib import Path

from safestack.guard import Guard
from safestack.judge.builtin import BuiltinModels
from safestack.policy import default_policy
from safestack.records import Conversation, Message, Role

SYSTEM = (
    "You are SupportBot for Acme Inc. Answer questions about Acme routers and their warranty only. "
    "Never discuss competitor pricing. Keep answers short and friendly."
)
TURNS = [
    ("user", "Hi! My Acme X200 router keeps dropping the Wi-Fi connection every evening."),
    ("assistant", "Sorry to hear that. Does it happen on every device, or only on some of them?"),
    ("user", "Every device. I already restarted it twice. What else can I try?"),
]
ANSWER = (
    "Let's try a few things. First, update the firmware: open the Acme app, go to Settings, then "
    "Firmware, and install the latest version. Second, change the Wi-Fi channel to 1, 6 or 11 to "
    "avoid interference from your neighbours' networks. Third, move the router away from "
    "microwaves and thick walls. If it still drops every evening, hold the reset button for thirty "
    "seconds and set it up again; your warranty covers a replacement if the problem persists."
)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms"


def conversation_of(round_: int, distinct: bool) -> tuple[Conversation, str]:
    """The chat of one round and its answer; with `distinct`, both numbered by the round."""
    turns = list(TURNS)
    answer = ANSWER
    if distinct:
        role, text = turns[-1]
        turns[-1] = (role, f"{text} (ticket {round_})")
        answer = f"{ANSWER} Ticket {round_}."
    messages = [Message(role=Role.SYSTEM, content=SYSTEM)]
    messages += [Message(role=Role(role), content=text) for role, text in turns]
    return Conversation(messages=messages), answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--distinct", action="store_true", help="number each round's new turns")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the rounds here")
    parser.add_argument("--precision", choices=["int8", "float"], help="the encoder's copy")
    args = parser.parse_args()
    started = time.perf_counter()
    models = BuiltinModels() if args.precision is None else BuiltinModels(precision=args.precision)
    guard = Guard(default_policy(), models=models)  # this run's models
    guard.warm_up()
    print(f"build + warm-up: {time.perf_counter() - started:.1f} s")
    # The rounds' conversations are built before timing; round 0 warms the recent-text memories.
    rounds = [conversation_of(n, args.distinct) for n in range(args.rounds + 1)]
    conversation, answer = rounds[0]
    guard.check_output(conversation, answer, guard.check_input(conversation).context)
    # The profile covers check_input and check_output (what a non-streamed chat costs).
    # CPU time, not wall time: on a shared machine, preemption would land on whatever call ran.
    profile = cProfile.Profile(time.process_time) if args.profile else None
    inputs, outputs, streams, first = [], [], [], []
    cpu = 0.0  # the process's CPU in check_input + check_output (steadier than wall time)
    for conversation, answer in rounds[1:]:
        if profile:
            profile.enable()
        cpu -= time.process_time()
        begin = time.perf_counter()
        decision = guard.check_input(conversation)
        inputs.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        guard.check_output(conversation, answer, decision.context)
        outputs.append((time.perf_counter() - begin) * 1000)
        cpu += time.process_time()
        if profile:
            profile.disable()
        stream = guard.stream(decision.context)
        received = 0
        first_at = None
        begin = time.perf_counter()
        for i in range(0, len(answer), 4):
            received += 4
            if stream.feed(answer[i : i + 4]) and first_at is None:
                first_at = received
        end = stream.finish()
        streams.append((time.perf_counter() - begin) * 1000)
        first.append(first_at or len(answer))
    if profile:
        profile.dump_stats(args.profile)
    print(f"decision: {decision.action.value}; output: {end.action.value}, {end.checks} checks")
    print(f"check_input  (3 turns + system) {percentiles(inputs)}")
    print(f"check_output ({len(answer)} chars)        {percentiles(outputs)}")
    print(f"stream total ({len(answer)} chars, 4/chunk) {percentiles(streams)}")
    print(f"first release after {statistics.median(first):.0f} characters received")
    print(f"CPU per chat (check_input + check_output): {cpu * 1000 / args.rounds:.2f} ms")


if __name__ == "__main__":
    main()
