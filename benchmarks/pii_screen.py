"""Does `pii` with `names_alone: skip` (the pattern screen) decide as the full presidio analysis does?

Run: .venv/bin/python benchmarks/pii_screen.py [--limit N]

Judges every text the repository holds that a user could send (string literals in tests/, the
example inputs, the synthetic training sets, the data filter's evaluation corpora, each cut to the
policy's limit) with the `pii` detector twice under the default policy, `names_alone: report` and
`skip`, and compares what the policy acts on: the verdict's action and flagged categories, the
privacy findings at or above the threshold, and the text after redaction. Prints the counts, the
differences (there should be none) and the time of each mode.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def repository_texts() -> Iterator[str]:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and len(text) >= 8 and " " in text:
                yield text
    for line in (ROOT / "examples" / "inputs.jsonl").read_text(encoding="utf-8").splitlines():
        yield json.loads(line)["text"]
    for path in sorted((ROOT / "src/safestack/training/assets/synthetic").rglob("*.yaml")):
        yield from _strings(yaml.safe_load(path.read_text(encoding="utf-8")))
    for name in ("heldout.jsonl", "corpus.jsonl"):
        path = ROOT / "src/safestack/data/assets/eval" / name
        for line in path.read_text(encoding="utf-8").splitlines():
            yield json.loads(line)["text"]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if " " in value:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="judge only the first N texts")
    args = parser.parse_args()

    from safestack.errors import InputError
    from safestack.guard.redact import apply, redactions
    from safestack.judge import Judge, create_detector
    from safestack.policy import Policy

    policy = Policy.default()
    judges = {
        mode: Judge(policy, [create_detector("pii", policy, {"names_alone": mode})])
        for mode in ("report", "skip")
    }
    limit = policy.judge.max_input_chars
    texts = []
    for text in dict.fromkeys(t[:limit] for t in repository_texts() if t.strip()):
        try:
            judges["report"].prepare(text)
        except InputError:  # a test's deliberately broken input (a lone surrogate)
            continue
        texts.append(text)
    if args.limit:
        texts = texts[: args.limit]
    threshold = policy.threshold("privacy")
    for judge in judges.values():
        judge.check("warm up: jane.doe@example.com")

    def decision(mode: str, text: str) -> tuple[object, ...]:
        verdict = judges[mode].check(text)
        acted = sorted(
            (f.label, f.span.start if f.span else -1, f.score, f.severity)
            for f in verdict.findings
            if f.score >= threshold
        )
        redacted = apply(text, redactions(verdict, policy))
        return verdict.action, tuple(verdict.flagged_categories), tuple(acted), redacted

    seconds = {"report": 0.0, "skip": 0.0}
    differences = []
    acted_on = 0
    for text in texts:
        outcome = {}
        for mode in ("report", "skip"):
            started = time.perf_counter()
            outcome[mode] = decision(mode, text)
            seconds[mode] += time.perf_counter() - started
        if outcome["report"] != outcome["skip"]:
            differences.append((text[:120], outcome["report"][:3], outcome["skip"][:3]))
        acted_on += bool(outcome["report"][2])
    print(f"{len(texts)} texts ({sum(map(len, texts)):,} characters), {acted_on} with personal")
    print(f"data the default policy acts on; differences in decisions: {len(differences)}")
    for mode, total in seconds.items():
        print(f"  names_alone: {mode:<6} {total:7.1f} s  ({1000 * total / len(texts):.2f} ms/text)")
    for text, report, skip in differences:
        print(f"  DIFFERENT {text!r}\n    report {report}\n    skip   {skip}")


if __name__ == "__main__":
    main()
