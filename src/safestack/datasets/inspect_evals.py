"""Sources in inspect-evals 0.26.0's wheel, read without importing inspect_evals or inspect_ai.

inspect-evals is MIT; each benchmark's own licence is noted per source.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from safestack.datasets.examples import Example
from safestack.datasets.source import Source, source

INSPECT = {"package": "inspect-evals", "version": "0.26.0"}
AGENTDOJO = "inspect_evals/agentdojo"
AGENTDOJO_SUITES = ("banking", "slack", "travel", "workspace")
# AgentDojo's default victim, whose name its attack signs.
AGENTDOJO_USER = "Emma Johnson"
MAX_CHARS = 4000


def _english(text: str) -> bool:
    return sum(ch.isascii() for ch in text) >= 0.95 * len(text)


@source(
    "inspect-evals/writingbench",
    **INSPECT,
    licence="Apache-2.0 (WritingBench, X-PLUG)",
    paths=["inspect_evals/writingbench/benchmark_all.jsonl"],
)
def writingbench(src: Source) -> Iterator[Example]:
    """WritingBench's English writing requests (reports, ads, essays, legal letters): benign.

    Chinese queries are skipped (the models are English-only), as are queries over MAX_CHARS: they
    carry whole reference documents and would be dropped by the assembly anyway.
    """
    for line in src.path(src.paths[0]).read_text("utf-8").splitlines():
        query = json.loads(line)["query"].strip()
        if query and _english(query) and len(query) <= MAX_CHARS:
            yield from src.prompt(query, [])


def _strings_in(body: list[ast.stmt], outer: dict[str, str]) -> dict[str, str]:
    """String constants assigned in a block (class or module body), f-strings resolved."""
    scope = dict(outer)
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            value = _string_value(node.value, scope)
            if isinstance(target, ast.Name) and value is not None:
                scope[target.id] = value
    return scope


def _string_value(node: ast.expr, scope: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
            elif (
                isinstance(part, ast.FormattedValue)
                and isinstance(part.value, ast.Name)
                and part.value.id in scope
                and part.format_spec is None
            ):
                parts.append(scope[part.value.id])
            else:
                return None
        return "".join(parts)
    return None


def _class_strings(path: Path, name: str) -> list[str]:
    """The `name` attribute (GOAL, PROMPT) of every class in a task file, without importing it."""
    tree = ast.parse(path.read_text("utf-8"))
    module = _strings_in(tree.body, {})
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            value = _strings_in(node.body, module).get(name)
            if value:
                found.append(value)
    return found


class _IgnoreTags(yaml.SafeLoader):
    """AgentDojo's YAML uses `!include`; the included files are read on their own."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def _documents(node: Any) -> Iterator[dict[str, str]]:
    """Every mapping of scalar fields in an environment file: an email, event, file, web page."""
    if isinstance(node, dict):
        scalars = {k: str(v) for k, v in node.items() if isinstance(v, str | int | float)}
        if sum(len(v) for v in scalars.values()) > 40 and len(scalars) >= 2:
            yield scalars
        for value in node.values():
            yield from _documents(value)
    elif isinstance(node, list):
        for value in node:
            yield from _documents(value)


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def _render(document: dict[str, str]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in document.items() if key != "id_")


@source(
    "inspect-evals/agentdojo",
    **INSPECT,
    licence="MIT (AgentDojo, Debenedetti et al. 2024)",
    paths=[
        *(f"{AGENTDOJO}/data/suites/{suite}/*.yaml" for suite in AGENTDOJO_SUITES),
        f"{AGENTDOJO}/data/suites/workspace/include/*.yaml",
        f"{AGENTDOJO}/task_suites/*/injection_tasks.py",
        f"{AGENTDOJO}/task_suites/*/user_tasks.py",
        f"{AGENTDOJO}/attacks/attack.py",
    ],
)
def agentdojo(src: Source) -> Iterator[Example]:
    """AgentDojo's tool data (emails, calendar events, files, web pages, reviews) and user tasks.

    Each document is written once with its injection slots at their benign defaults (`benign`)
    and once per slot and injection goal of the suite with AgentDojo's "important instructions"
    attack (`prompt-injection-indirect`); both share a group. The user tasks' prompts are
    plain benign requests (harm: none; attack: benign).
    """
    root = src.root() / AGENTDOJO
    attack_module = _strings_in(ast.parse((root / "attacks/attack.py").read_text("utf-8")).body, {})
    template = attack_module["IMPORTANT_INSTRUCTIONS_PROMPT"].format(user_name=AGENTDOJO_USER)
    for suite in AGENTDOJO_SUITES:
        suite_dir = root / "data/suites" / suite
        vectors = yaml.safe_load((suite_dir / "injection_vectors.yaml").read_text("utf-8"))
        defaults = {name: str(spec.get("default", "")) for name, spec in vectors.items()}
        goals = _class_strings(root / "task_suites" / suite / "injection_tasks.py", "GOAL")
        files = [suite_dir / "environment.yaml", *sorted((suite_dir / "include").glob("*.yaml"))]
        number = 0
        for path in files:
            if not path.exists():
                continue
            data = yaml.load(path.read_text("utf-8"), Loader=_IgnoreTags)
            for document in _documents(data):
                text = _render(document)
                slots = [name for name in defaults if "{" + name + "}" in text]
                group = f"agentdojo-{suite}-{number}"
                number += 1
                yield src.example(_fill(text, defaults), "attack", ["benign"], group=group)
                for name, goal in product(slots, goals):
                    attack = template.replace("{goal}", goal)
                    injected = _fill(text, {**defaults, name: attack})
                    yield src.example(
                        injected, "attack", ["prompt-injection-indirect"], group=group
                    )
        for prompt in _class_strings(root / "task_suites" / suite / "user_tasks.py", "PROMPT"):
            yield from src.prompt(prompt, [], group=f"agentdojo-{suite}-user")


@source(
    "inspect-evals/agent-threat-bench",
    **INSPECT,
    licence="MIT (inspect-evals)",
    paths=["inspect_evals/agent_threat_bench/data/*.json"],
)
def agent_threat_bench(src: Source) -> Iterator[Example]:
    """AgentThreatBench's poisoned tool outputs: a memory store, a customer record set, an inbox.

    Every memory store and customer database of the set carries an injection by construction
    (`prompt-injection-indirect`, rendered as the JSON a tool returns); inbox emails are labelled
    one by one from `attack_email_indices`, so the others are `benign` documents. Those indices
    count from 1: in every sample the email holding the sample's `forbidden_actions` string is the
    one at index - 1 (ah_001: indices [3], three emails, the payload in the third).
    """
    for path in src.files():
        for sample in json.loads(path.read_text("utf-8")):
            group = str(sample["id"])
            if "memory_store" in sample:
                text = json.dumps(sample["memory_store"], indent=1, ensure_ascii=False)
                yield src.example(text, "attack", ["prompt-injection-indirect"], group=group)
            if "customer_db" in sample:
                text = json.dumps(sample["customer_db"], indent=1, ensure_ascii=False)
                yield src.example(text, "attack", ["prompt-injection-indirect"], group=group)
            attacked = set(sample.get("attack_email_indices", []))
            for index, email in enumerate(sample.get("inbox", []), start=1):
                text = f"From: {email['from']}\nSubject: {email['subject']}\n\n{email['body']}"
                label = "prompt-injection-indirect" if index in attacked else "benign"
                yield src.example(text, "attack", [label], group=group)


@source(
    "inspect-evals/ipi-coding-agent",
    **INSPECT,
    licence="MIT (inspect-evals)",
    paths=["inspect_evals/ipi_coding_agent/dataset/samples.json"],
)
def ipi_coding_agent(src: Source) -> Iterator[Example]:
    """Issues, READMEs, code comments and config files a coding agent reads, some with injections.

    The injected artefact (named by `injection_vector`, found by its `payload_indicator`) is
    `prompt-injection-indirect`; the issue text of the benign samples is `benign`.
    """
    for sample in json.loads(src.path(src.paths[0]).read_text("utf-8")):
        group = str(sample["id"])
        if sample["is_benign"]:
            yield src.example(sample["issue_text"], "attack", ["benign"], group=group)
            continue
        if sample["injection_vector"] == "issue_text":
            yield src.example(
                sample["issue_text"], "attack", ["prompt-injection-indirect"], group=group
            )
            continue
        indicators = [i for i in str(sample["payload_indicator"]).split("|") if i]
        for name, content in sample["repo_files"].items():
            if content and any(indicator in content for indicator in indicators):
                text = f"# file: {name}\n{content}"
                yield src.example(text, "attack", ["prompt-injection-indirect"], group=group)


@source(
    "inspect-evals/persistbench",
    **INSPECT,
    licence="MIT (inspect-evals; PersistBench samples)",
    paths=["inspect_evals/persistbench/benchmark_samples/*.jsonl"],
)
def persistbench(src: Source) -> Iterator[Example]:
    """PersistBench's user queries (dates, gifts, menus, project charters, advice): benign.

    The queries are everyday requests written to test memory use, not safety; none asks for harm,
    so they are ordinary-traffic negatives for both tasks. The memories are not used.
    """
    for path in src.files():
        for line in path.read_text("utf-8").splitlines():
            query = json.loads(line)["query"].strip() if line.strip() else ""
            if query and _english(query):
                yield from src.prompt(query, [])


@source(
    "inspect-evals/swe-lancer",
    **INSPECT,
    licence="MIT (inspect-evals; SWE-Lancer task descriptions, Expensify issues)",
    paths=["inspect_evals/swe_lancer/data/all_swelancer_tasks.csv"],
)
def swe_lancer(src: Source) -> Iterator[Example]:
    """SWE-Lancer's issue descriptions (bug reports with steps, expected and actual results): benign.

    Long technical documents full of imperatives addressed to developers ("Open the app", "Tap
    on..."): negatives for the attack task that look like the documents injections hide in.
    """
    import csv

    csv.field_size_limit(1 << 26)
    with src.path(src.paths[0]).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            # The CSV stores line breaks in descriptions as literal backslash-n.
            description = row["description"].replace("\\n", "\n").strip()
            text = f"{row['title'].strip()}\n\n{description}".strip()
            if description and _english(text) and len(text) <= MAX_CHARS:
                yield from src.prompt(text, [], group=row["question_id"])
