"""What `align train` does with what it is given before any training: Gemma's chat template (the
same turns the gguf target sends), a tokenizer without one, and bad input, each one clear line
naming the file, line or option and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

pytest.importorskip("transformers")
from align_harness import store_run
from train_harness import tiny_model, tiny_tokenizer, write_set

from safestack.align.finetune import (
    TrainConfig,
    read_training_set,
    resolve_parent,
    train_model,
)
from safestack.align.finetune.encode import ensure_chat_template
from safestack.align.finetune.stages import last_checkpoint
from safestack.errors import InputError
from safestack.models.gguf import gemma_prompt
from safestack.records import Message, Role
from safestack.store import Store

S, U, A = Role.SYSTEM, Role.USER, Role.ASSISTANT
CONVERSATIONS = [
    [(U, "hello")],
    [(S, "Be brief."), (U, "hello")],
    [(S, "Be brief."), (S, "Answer in French."), (U, "hello"), (U, "Tool output from web:\nx")],
    [(S, "Be brief."), (A, "Earlier answer."), (U, "and now?")],
    [(U, "one"), (A, "two"), (U, "three"), (A, "four"), (U, "five")],
    [(S, "only a system prompt")],
]


@pytest.fixture(scope="module")
def training_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    with Store.open(f"sqlite:///{root}/safestack.db") as store:
        store_run(store)
        return write_set(store, root / "set")


@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_gemmas_template_renders_what_the_gguf_target_sends(
    conversation: list[tuple[Role, str]],
) -> None:
    tokenizer = tiny_tokenizer(["hello"])
    assert ensure_chat_template(tokenizer) == "gemma"
    messages = [Message(role=role, content=text) for role, text in conversation]
    rendered = tokenizer.apply_chat_template(
        [{"role": m.role.value, "content": m.content} for m in messages],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert rendered == "<bos>" + gemma_prompt(messages)


def test_a_tokenizers_own_template_is_kept_and_a_file_can_replace_it(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer(["hello"])
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert ensure_chat_template(tokenizer) == "own"
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0]['content'] }}!")
    assert ensure_chat_template(tokenizer, str(template)) == str(template)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "x!"
    with pytest.raises(InputError, match=r"--chat-template .*nowhere.jinja: cannot read it"):
        ensure_chat_template(tokenizer, str(tmp_path / "nowhere.jinja"))


def test_no_template_and_no_gemma_tokens_is_one_line_saying_what_to_pass() -> None:
    tokenizer = tiny_tokenizer(["hello"], gemma_tokens=False)
    with pytest.raises(InputError) as caught:
        ensure_chat_template(tokenizer)
    assert "has no chat template" in str(caught.value)
    assert "pass --chat-template FILE" in str(caught.value)
    assert "\n" not in str(caught.value)


def copy_set(training_set: Path, tmp_path: Path) -> Path:
    copied = tmp_path / "set"
    shutil.copytree(training_set, copied)
    return copied


def test_a_line_that_is_not_json_names_the_file_and_line(
    training_set: Path, tmp_path: Path
) -> None:
    copied = copy_set(training_set, tmp_path)
    (copied / "manifest.json").unlink()  # an edited set, trained as a new one
    path = copied / "retain" / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = '{"messages": [{"role": "user", "content": "hi"}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"^{path}:2: not a JSON object"):
        read_training_set(copied)


@pytest.mark.parametrize(
    ("kind", "row", "problem"),
    [
        ("sft", {"messages": [{"role": "user", "content": "hi"}]}, "messages: Value error, needs"),
        (
            "sft",
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": " "},
                ]
            },
            "the answer is empty",
        ),
        ("sft", {"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        (
            "preference",
            {"prompt": [{"role": "user", "content": "hi"}], "chosen": [], "rejected": []},
            "chosen: Value error, must be one assistant turn",
        ),
        ("kto", {"prompt": [{"role": "user", "content": "hi"}]}, "completion: Field required"),
    ],
)
def test_a_malformed_row_names_the_file_line_and_field(
    training_set: Path, tmp_path: Path, kind: str, row: dict[str, Any], problem: str
) -> None:
    copied = copy_set(training_set, tmp_path)
    (copied / "manifest.json").unlink()
    path = copied / kind / "train.jsonl"
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    line = len(path.read_text().splitlines())
    with pytest.raises(InputError) as caught:
        read_training_set(copied)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_edited_after_the_set_was_built_is_refused(
    training_set: Path, tmp_path: Path
) -> None:
    copied = copy_set(training_set, tmp_path)
    path = copied / "sft" / "train.jsonl"
    path.write_text(path.read_text().replace("a", "b", 1))
    with pytest.raises(InputError, match="changed since the set was built"):
        read_training_set(copied)


def test_an_empty_set_is_refused_before_any_model_loads(training_set: Path, tmp_path: Path) -> None:
    copied = copy_set(training_set, tmp_path)
    (copied / "manifest.json").unlink()
    for kind in ("sft", "retain"):
        (copied / kind / "train.jsonl").write_text("")
    data = read_training_set(copied)
    fake = tiny_model(tmp_path / "model", ["hello"])
    with pytest.raises(InputError, match="hold no rows, so there is nothing to train on"):
        train_model(
            data, resolve_parent(str(fake), None), TrainConfig(), tmp_path / "out", cache=tmp_path
        )
    assert not (tmp_path / "out").exists()


def test_no_preference_rows_points_at_sft_only(training_set: Path, tmp_path: Path) -> None:
    copied = copy_set(training_set, tmp_path)
    (copied / "manifest.json").unlink()
    (copied / "preference" / "train.jsonl").write_text("")
    data = read_training_set(copied)
    fake = tiny_model(tmp_path / "model", ["hello"])
    with pytest.raises(InputError, match="pass --preference none"):
        train_model(
            data, resolve_parent(str(fake), None), TrainConfig(), tmp_path / "o", cache=tmp_path
        )
    with pytest.raises(InputError, match="--batch-size 2"):
        train_model(
            data,
            resolve_parent(str(fake), None),
            TrainConfig(preference="kto"),
            tmp_path / "o",
            cache=tmp_path,
        )


def test_what_is_not_a_set_or_a_model_says_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory; give a directory written by"):
        read_training_set(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"holds none of sft/train\.jsonl"):
        read_training_set(tmp_path)
    with pytest.raises(
        InputError, match=r"not .gguf., a \.gguf file, a model directory or a stored"
    ):
        resolve_parent("no-such-model", None)
    with pytest.raises(InputError, match=r"holds no config\.json"):
        resolve_parent(str(tmp_path), None)
    with pytest.raises(InputError, match="does not exist"):
        resolve_parent(str(tmp_path / "missing.gguf"), None)


def test_an_output_directory_holding_other_files_is_never_overwritten(
    training_set: Path, tmp_path: Path
) -> None:
    data = read_training_set(training_set)
    fake = tiny_model(tmp_path / "model", ["hello"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds files that are not a safestack fine-tune"):
        train_model(data, resolve_parent(str(fake), None), TrainConfig(), out, cache=tmp_path)
    assert (out / "notes.txt").read_text() == "mine"


def test_settings_that_cannot_fit_are_refused() -> None:
    with pytest.raises(ValidationError, match="must leave at least 8"):
        TrainConfig(max_length=64, max_answer_length=60)


def test_a_checkpoint_a_killed_job_was_still_writing_is_skipped(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (1, 2):
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    assert last_checkpoint(tmp_path / "none") is None
