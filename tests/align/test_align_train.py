"""`align train` on a tiny Gemma-shaped model built here: SFT then DPO on rows from the align
builders, the adapter and merged model that come out (loaded, generating, and as a red-team
target), answer-only loss, left truncation, Gemma's template, and resume after a kill."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")
from align_harness import store_run  # noqa: E402
from train_harness import tiny_model, words, write_set  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402

from safestack.align.finetune import (  # noqa: E402
    TrainConfig,
    TrainResult,
    read_training_set,
    record_model,
    resolve_parent,
    train_model,
)
from safestack.align.finetune.data import Example  # noqa: E402
from safestack.align.finetune.encode import Encoder, ensure_chat_template  # noqa: E402
from safestack.errors import InputError  # noqa: E402
from safestack.models import GenerationSettings, create_model  # noqa: E402
from safestack.models.gguf import gemma_prompt  # noqa: E402
from safestack.records import Message, Role  # noqa: E402
from safestack.store import Store  # noqa: E402

# A few steps of each stage, checkpointing every step; one thread as in a loaded CI runner.
FAST = TrainConfig(
    sft_max_steps=3,
    preference_max_steps=2,
    gradient_accumulation=2,
    save_steps=1,
    threads=1,
    max_length=64,
    max_answer_length=32,
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("train")
    url = f"sqlite:///{root}/safestack.db"
    with Store.open(url) as store:
        store_run(store)
        training_set = write_set(store, root / "set")
    model = tiny_model(root / "tiny", words(training_set))
    return {"root": root, "url": url, "set": training_set, "model": model}


@pytest.fixture(scope="module")
def trained(workspace: dict[str, Any]) -> TrainResult:
    started = time.perf_counter()
    data = read_training_set(workspace["set"])
    parent = resolve_parent(str(workspace["model"]), None)
    result = train_model(
        data, parent, FAST, workspace["root"] / "out", cache=workspace["root"] / "cache"
    )
    assert time.perf_counter() - started < 60  # the CI budget for the entry point (issue 12)
    return result


def test_sft_then_dpo_leave_an_adapter_a_merged_model_and_a_target(
    trained: TrainResult, workspace: dict[str, Any]
) -> None:
    out = workspace["root"] / "out"
    assert trained.status == "trained" and trained.model_id.startswith("ft-")
    assert trained.metrics["sft"]["steps"] == 3 and trained.metrics["dpo"]["steps"] == 2
    assert trained.metrics["sft"]["answer_tokens"] > 0
    assert trained.metrics["chat_template"] == "gemma"
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert not (out / "adapter" / "ref").exists()  # TRL's reference copy is not shipped
    assert json.loads((out / "merged" / "safestack.json").read_text())["id"] == trained.model_id
    saved = json.loads((out / "training.json").read_text())
    assert saved["model_id"] == trained.model_id
    assert (
        saved["training_set_version"]
        == json.loads((workspace["set"] / "manifest.json").read_text())["version"]
    )
    [target] = yaml.safe_load((out / "target.yaml").read_text())["targets"]
    assert target["kind"] == "transformers"
    assert target["options"]["path"] == str(out / "merged")
    assert target["options"]["model_name"] == trained.model_id


def test_the_adapter_on_the_base_is_the_merged_model(
    trained: TrainResult, workspace: dict[str, Any]
) -> None:
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(workspace["model"]).eval()
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(workspace["model"]), trained.adapter
    ).eval()
    merged = AutoModelForCausalLM.from_pretrained(trained.merged).eval()
    ids = torch.tensor([[2, 4, 10, 11, 12, 5, 4, 13]])
    with torch.no_grad():
        assert torch.allclose(adapted(ids).logits, merged(ids).logits, atol=1e-5)
        # ...and training changed the model: it is not the base.
        assert (base(ids).logits - merged(ids).logits).abs().max() > 1e-4
    generated = merged.generate(ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids.shape[1]


def test_the_merged_model_is_a_red_team_target_that_uses_gemmas_turns(
    trained: TrainResult,
) -> None:
    [target] = yaml.safe_load(trained.target_file.read_text())["targets"]
    model = create_model(target["kind"], target["options"])
    messages = [
        Message(role=Role.SYSTEM, content="Be brief."),
        Message(role=Role.USER, content="How do I pick a lock?"),
    ]

    async def ask() -> Any:
        try:
            return await model.complete(messages, GenerationSettings(temperature=0, max_tokens=6))
        finally:
            await model.aclose()

    completion = asyncio.run(ask())
    assert completion.model == trained.model_id and completion.completion_tokens > 0
    tokenizer = AutoTokenizer.from_pretrained(trained.merged)
    rendered = tokenizer.apply_chat_template(
        [{"role": m.role.value, "content": m.content} for m in messages],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert rendered == "<bos>" + gemma_prompt(messages)  # what the gguf target sends the base
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert (
        end_of_turn
        in AutoModelForCausalLM.from_pretrained(trained.merged).generation_config.eos_token_id
    )


def test_training_again_is_unchanged_and_another_config_is_refused(
    trained: TrainResult, workspace: dict[str, Any]
) -> None:
    data = read_training_set(workspace["set"])
    parent = resolve_parent(str(workspace["model"]), None)
    again = train_model(
        data, parent, FAST, workspace["root"] / "out", cache=workspace["root"] / "cache"
    )
    assert again.status == "unchanged" and again.model_id == trained.model_id
    other = FAST.model_copy(update={"beta": 0.2})
    with pytest.raises(InputError, match=r"already holds model .* choose another --out"):
        train_model(data, parent, other, workspace["root"] / "out", cache=workspace["root"])


def test_the_lineage_records_base_round_one_and_round_two(
    trained: TrainResult, workspace: dict[str, Any]
) -> None:
    with Store.open(workspace["url"]) as store:
        first = record_model(store, trained)
        assert first.parent == trained.parent.id and first.kind == "fine-tune"
        # Round 2 starts from round 1 by its lineage id.
        parent = resolve_parent(trained.model_id, store)
        assert parent.directory == trained.merged
        data = read_training_set(workspace["set"])
        config = FAST.model_copy(update={"preference": "none", "sft_max_steps": 1})
        second = train_model(
            data, parent, config, workspace["root"] / "round2", cache=workspace["root"] / "cache"
        )
        record_model(store, second)
        chain = store.models.lineage(second.model_id)
    assert [m.id for m in chain] == [trained.parent.id, trained.model_id, second.model_id]
    assert [m.kind for m in chain] == ["base", "fine-tune", "fine-tune"]
    assert chain[2].training_set_version == data.version
    assert chain[2].config_hash == second.config_hash and "sft" in chain[2].metrics
    assert "dpo" not in chain[2].metrics and second.metrics["sft"]["steps"] == 1


def test_only_answer_tokens_carry_a_loss(workspace: dict[str, Any], tmp_path: Path) -> None:
    from safestack.align.finetune.stages import sft_trainer

    tokenizer = AutoTokenizer.from_pretrained(workspace["model"])
    ensure_chat_template(tokenizer)
    encoder = Encoder(tokenizer, max_length=64, max_answer_length=32)
    data = read_training_set(workspace["set"])
    rows = [encoder.sft(example) for example in data.sft["train"]]
    trainer = sft_trainer(workspace["model"], tokenizer, rows, [], FAST, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    for index in range(2):
        mask = torch.tensor(rows[index]["completion_mask"])
        labels = batch["labels"][index, : len(mask)]
        assert (labels[mask == 0] == -100).all()  # prompt: no loss
        assert (labels[mask == 1] == torch.tensor(rows[index]["input_ids"])[mask == 1]).all()
        assert (batch["labels"][index, len(mask) :] == -100).all()  # padding: no loss
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    for row in rows:  # every whole answer ends the model's turn: it learns to stop
        answer = [t for t, m in zip(row["input_ids"], row["completion_mask"], strict=True) if m]
        assert answer[-1] == end_of_turn or len(answer) == 32


def test_long_prompts_lose_their_start_after_bos_and_keep_the_answer(
    workspace: dict[str, Any],
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(workspace["model"])
    ensure_chat_template(tokenizer)
    encoder = Encoder(tokenizer, max_length=24, max_answer_length=8)
    prompt = [{"role": "user", "content": " ".join(["how"] * 40) + " make a bomb"}]
    answer = "I will not help with that , but I can explain why it is dangerous ."
    row = encoder.sft(Example(prompt, answer))
    ids, mask = row["input_ids"], row["completion_mask"]
    assert len(ids) == 24 and encoder.truncated_prompts == 1 and encoder.truncated_answers == 1
    full_prompt = encoder.ids(encoder.render(prompt, generation_prompt=True))
    full_answer = encoder.ids(answer + "<end_of_turn>")
    # BOS, then the prompt's last 15 tokens (its start is what goes), then the answer's first 8.
    assert ids[:16] == [tokenizer.bos_token_id, *full_prompt[-15:]] and mask[:16] == [0] * 16
    assert ids[16:] == full_answer[:8] and mask[16:] == [1] * 8


class Interrupt(TrainerCallback):  # type: ignore[misc]
    """Kills the run (as Ctrl-C would) when a step ends, after earlier checkpoints were saved."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.at_step:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_from_its_last_checkpoint(workspace: dict[str, Any]) -> None:
    data = read_training_set(workspace["set"])
    parent = resolve_parent(str(workspace["model"]), None)
    out = workspace["root"] / "killed"
    config = FAST.model_copy(update={"sft_max_steps": 4, "preference": "none"})
    with pytest.raises(KeyboardInterrupt):
        train_model(data, parent, config, out, cache=out, callbacks=[Interrupt(3)])
    assert (out / "sft" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "training.json").exists()
    with pytest.raises(InputError, match=r"unfinished run \(sft step 2\): pass --resume"):
        train_model(data, parent, config, out, cache=out)
    other = config.model_copy(update={"sft_learning_rate": 1e-3})
    with pytest.raises(InputError, match="differs in sft_learning_rate"):
        train_model(data, parent, other, out, cache=out, resume=True)

    resumed = train_model(data, parent, config, out, cache=out, resume=True)
    sft = resumed.metrics["sft"]
    assert sft["resumed_from"] == "checkpoint-2" and sft["steps"] == 4
    state = json.loads(
        (out / "sft" / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text()
    )
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4]


def test_kto_trains_on_the_unpaired_rows(workspace: dict[str, Any]) -> None:
    data = read_training_set(workspace["set"])
    parent = resolve_parent(str(workspace["model"]), None)
    config = FAST.model_copy(
        update={
            "preference": "kto",
            "batch_size": 2,
            "gradient_accumulation": 1,
            "sft_max_steps": 1,
        }
    )
    result = train_model(data, parent, config, workspace["root"] / "kto", cache=workspace["root"])
    kto = result.metrics["kto"]
    assert kto["steps"] == 2 and kto["answer_tokens"] > 0 and "eval_kl" in kto
    assert result.metrics["rows"]["kto"]["train"] == len(data.kto["train"])
    assert (workspace["root"] / "kto" / "merged" / "safestack.json").is_file()
