"""The regression campaign: every finding of the runs as a fixed probe, so the next round (and
`safestack align check`) re-runs exactly what broke and reports by finding id.

Each finding becomes one behaviour of the red team's `fixed` source with the id `finding:<attempt
id>`, the request as its text, and the conversation the target answered (system prompt, converted
turns, earlier answers, tool output) as `messages`, which the `baseline` attack replays turn for
turn; injection and extraction findings keep their canary. Findings with the same conversation
(another target, another sample) are one probe listing the others as `aliases`. Targets, scorers,
the judge model and generation settings come from the runs' own campaigns.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from safestack.align.findings import Finding, RunAttempts, nothing_to_learn, select
from safestack.align.rows import sha256_json
from safestack.errors import InputError
from safestack.records import DEFAULT_TRUST, Attempt, Message, Role
from safestack.redteam.campaign import parse_campaign
from safestack.redteam.metrics import EXTRACTION_CATEGORIES, INJECTION_CATEGORIES

FINDING_PREFIX = "finding:"


def finding_id(attempt_id: str) -> str:
    return f"{FINDING_PREFIX}{attempt_id}"


def attempt_of(behaviour_id: str | None) -> str | None:
    """The attempt id a regression probe's behaviour stands for (None for other behaviours)."""
    if behaviour_id is None or not behaviour_id.startswith(FINDING_PREFIX):
        return None
    return behaviour_id.removeprefix(FINDING_PREFIX)


def replay_messages(attempt: Attempt) -> list[Message]:
    """What the target was sent before the answer that broke: the stored conversation up to it."""
    messages = list(attempt.conversation)
    while messages and messages[-1].role == Role.ASSISTANT:
        messages.pop()
    if not messages or messages[-1].role not in (Role.USER, Role.TOOL):
        messages.append(Message(role=Role.USER, content=attempt.objective))
    return messages


def message_entry(message: Message) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.name is not None:
        entry["name"] = message.name
    if message.source is not None:
        entry["source"] = message.source
    if message.trust is not None and message.trust != DEFAULT_TRUST[message.role]:
        entry["trust"] = message.trust.value
    return entry


def regression_campaign(
    runs: Sequence[RunAttempts],
    findings: Sequence[Finding] | None = None,
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """The campaign mapping (checked with `parse_campaign`) replaying every finding of `runs`."""
    ordered = sorted(runs, key=lambda r: r.run.id)
    if findings is None:
        selection = select(ordered)
        if not selection.findings:
            raise nothing_to_learn(ordered, selection.counts)
        findings = selection.findings
    items: list[dict[str, Any]] = []
    by_conversation: dict[str, dict[str, Any]] = {}
    for item in findings:
        attempt = item.attempt
        messages = [message_entry(m) for m in replay_messages(attempt)]
        key = sha256_json([attempt.category, attempt.canary, messages])
        if key in by_conversation:
            by_conversation[key].setdefault("aliases", []).append(finding_id(attempt.id))
            continue
        entry: dict[str, Any] = {
            "id": finding_id(attempt.id),
            "text": attempt.objective,
            "category": attempt.category,
            "messages": messages,
        }
        if attempt.canary:
            entry["canary"] = attempt.canary
        by_conversation[key] = entry
        items.append(entry)

    campaigns = [r.run.campaign for r in ordered]
    broken = {item.attempt.target for item in findings}
    targets: dict[str, Any] = {}
    scorers: dict[str, Any] = {}
    for stored in campaigns:
        for target in stored.get("targets") or []:
            if target.get("name") in broken:
                targets.setdefault(target["name"], target)
        for scorer in stored.get("scorers") or []:
            key = scorer["name"] if isinstance(scorer, dict) else str(scorer)
            scorers.setdefault(key, scorer)
    for needed in needed_scorers(findings):
        scorers.setdefault(needed, needed)
    if not targets:
        raise InputError(
            f"run(s) {', '.join(r.run.id for r in ordered)}: the stored campaign names none of the "
            "targets that broke; the regression campaign would have nothing to run against"
        )
    first = campaigns[0]
    run_names = ", ".join(r.run.id for r in ordered)
    campaign: dict[str, Any] = {
        "name": name or campaign_name(ordered[0].run.id),
        "description": (
            f"Regression: the {len(findings)} findings of run(s) {run_names} as {len(items)} "
            "probes, each replayed as it was sent (safestack align regression)."
        ),
        "seed": first.get("seed", 0),
        "targets": list(targets.values()),
        "behaviours": [
            {
                "source": "fixed",
                "options": {
                    "licence": "the runs' behaviour sets (see their campaigns)",
                    "behaviours": items,
                },
            }
        ],
        "scorers": list(scorers.values()),
    }
    if first.get("generation"):
        campaign["generation"] = first["generation"]
    judge = next((c["judge_model"] for c in campaigns if c.get("judge_model")), None)
    if judge is not None:
        campaign["judge_model"] = judge
    parse_campaign(campaign, "the regression campaign")
    return campaign


def needed_scorers(findings: Sequence[Finding]) -> list[str]:
    """The scorers the red team's success rule reads for these findings' categories."""
    categories = {item.attempt.category for item in findings}
    needed = []
    if categories - INJECTION_CATEGORIES - EXTRACTION_CATEGORIES:
        needed.append("harm-severity")
    if categories & INJECTION_CATEGORIES:
        needed.append("injection-success")
    if categories & EXTRACTION_CATEGORIES:
        needed += ["canary-leak", "prompt-overlap"]
    return needed


def campaign_name(run_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id).strip("-") or "run"
    return f"regression-{cleaned}"[:100]


class _CampaignDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so the replayed conversations stay readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CampaignDumper.add_representer(str, _represent_str)


def campaign_yaml(campaign: dict[str, Any]) -> str:
    header = (
        "# Regression campaign written by `safestack align regression`: every behaviour is one\n"
        "# finding (id finding:<attempt id>), replayed turn for turn by the baseline attack;\n"
        "# `aliases` are findings with the same conversation. Run it with\n"
        "# `safestack redteam run THIS_FILE --run-id NAME`.\n"
    )
    body = yaml.dump(
        campaign, Dumper=_CampaignDumper, sort_keys=False, allow_unicode=True, width=100
    )
    return header + body


def write_campaign(campaign: dict[str, Any], path: Path, *, force: bool = False) -> str:
    """Write the campaign file; 'written' or 'unchanged'. A different file already at `path` is
    refused unless `force`, and then kept beside it as `<path>.<sha256 prefix>`."""
    text = campaign_yaml(campaign)
    if path.is_dir():
        raise InputError(f"--out {path}: is a directory; give a file name such as campaign.yaml")
    if path.exists():
        old = path.read_bytes()
        if old == text.encode("utf-8"):
            return "unchanged"
        if not force:
            raise InputError(
                f"--out {path}: already exists with different content; pass --force to replace "
                "it (the old file is kept beside it) or choose another --out"
            )
        kept = path.with_name(f"{path.name}.{hashlib.sha256(old).hexdigest()[:12]}")
        path.rename(kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.staging")
    staging.write_text(text, "utf-8")
    staging.replace(path)
    return "written"
