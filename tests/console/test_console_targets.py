"""Console targets: target files (a campaign's `targets:`, a break-fix round's target.yaml), their
errors with file and line, secrets kept out of engagements, and answers from models that do not
stream (one piece, bounded by the target's timeout)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from safestack.console.targets import ConsoleTargets, public_spec, read_targets, stream_answer
from safestack.errors import InputError
from safestack.models.base import GenerationSettings
from safestack.records import Message, Role


def test_a_break_fix_rounds_target_file_and_a_list_both_read(tmp_path: Path) -> None:
    round_file = tmp_path / "target.yaml"
    round_file.write_text(
        "# safestack align train: model round-1\n"
        + yaml.safe_dump(
            {"targets": [{"name": "round-1", "kind": "transformers", "options": {"path": "/m"}}]}
        )
    )
    single = tmp_path / "one.yaml"
    single.write_text("name: echo\nkind: scripted\noptions: {echo: true}\n")
    assert [s.name for s in read_targets(round_file)] == ["round-1"]
    assert [s.kind for s in read_targets(single)] == ["scripted"]


def test_a_bad_file_names_the_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "targets.yaml"
    bad.write_text("targets:\n  - name: ok\n    kind: openai\n  - kind: openai\n    options: {}\n")
    with pytest.raises(InputError) as error:
        read_targets(bad)
    assert f"{bad}:4" in str(error.value) and "targets.1.name" in str(error.value)
    with pytest.raises(InputError, match="not found"):
        read_targets(tmp_path / "missing.yaml")
    same = tmp_path / "same.yaml"
    same.write_text("targets:\n  - {name: a, kind: scripted}\n  - {name: a, kind: scripted}\n")
    with pytest.raises(InputError, match="share a name"):
        ConsoleTargets(read_targets(same))


def test_public_specs_drop_api_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: gw\nkind: openai\noptions: {model: m, api_key: sk-secret, api_key_env: GW_KEY}\n"
    )
    spec = public_spec(read_targets(path)[0])
    assert spec["options"] == {"model": "m", "api_key_env": "GW_KEY"}


def test_a_model_that_does_not_stream_answers_in_one_piece_within_its_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "targets:\n"
        "  - {name: echo, kind: scripted, options: {echo: true}}\n"
        "  - {name: slow, kind: scripted, options: {echo: true, delay_s: 2}}\n"
    )
    targets = ConsoleTargets(read_targets(path))
    hello = [Message(role=Role.USER, content="hello")]

    async def answer(name: str) -> list[str]:
        model = targets.model(name)
        return [p async for p in stream_answer(model, hello, GenerationSettings(), 0.5)]

    assert asyncio.run(answer("echo")) == ["hello"]
    with pytest.raises(TimeoutError):
        asyncio.run(answer("slow"))
    with pytest.raises(InputError, match="no console target 'nope'"):
        targets.model("nope")
