"""What changed between two `safestack models eval --json` outputs, per task, tier and source.

Run: .venv/bin/python benchmarks/compare_metrics.py BEFORE.json AFTER.json [--tiers accurate,cascade]

For example the float and the int8 encoder (`SAFESTACK_ENCODER_PRECISION=float|int8 safestack
models eval --json > ...`). Per task and tier, held-out sources overall and one by one: F1, and
precision, recall and false-positive rate with their 95% intervals; a value of AFTER outside
BEFORE's interval is marked `*`. The test counts are the same in both (the same held-out data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RATES = ("precision", "recall", "false_positive_rate")


def describe(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, int]:
    parts = [f"F1 {before.get('f1', float('nan')):.3f} -> {after.get('f1', float('nan')):.3f}"]
    outside = 0
    for rate in RATES:
        if rate not in before or rate not in after:
            continue
        low, high = before[rate]["ci95"]
        value = after[rate]["value"]
        mark = "" if low <= value <= high else "*"
        outside += bool(mark)
        parts.append(
            f"{rate.replace('false_positive_rate', 'FPR')} {before[rate]['value']:.3f} "
            f"[{low:.3f}, {high:.3f}] -> {value:.3f}{mark} (k {before[rate]['k']}->{after[rate]['k']})"
        )
    return "; ".join(parts), outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tiers", default="accurate,cascade")
    parser.add_argument("--auc", action="store_true", help="also print AUC where reported")
    args = parser.parse_args()
    before = json.loads(args.before.read_text(encoding="utf-8"))
    after = json.loads(args.after.read_text(encoding="utf-8"))
    total = outside_total = 0
    for task, block in before["tasks"].items():
        if "escalation_rate" in block:
            print(
                f"== {task}: escalation rate {block['escalation_rate']} -> "
                f"{after['tasks'][task].get('escalation_rate')}"
            )
        for tier in args.tiers.split(","):
            held = block["tiers"].get(tier, {}).get("held_out")
            if not held:
                continue
            other = after["tasks"][task]["tiers"][tier]["held_out"]
            line, outside = describe(held["overall"], other["overall"])
            total, outside_total = total + 1, outside_total + outside
            print(f"{task} {tier} overall: {line}")
            for source, values in held.get("per_source", {}).items():
                line, outside = describe(values, other["per_source"][source])
                total, outside_total = total + 1, outside_total + outside
                print(f"  {source}: {line}")
    print(f"{total} rows; rates of AFTER outside BEFORE's 95% interval: {outside_total}")


if __name__ == "__main__":
    main()
