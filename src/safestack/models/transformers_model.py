"""Local chat models run in this process, and the Hugging Face `transformers` one among them.

`LocalChatModel` is what every in-process model shares (the GGUF model too): weights loaded lazily
once, each generation in a worker thread so the event loop keeps serving, one generation at a time
per loaded model. `@model("transformers")` is a causal LM from a local directory, never the hub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from weakref import WeakKeyDictionary

from pydantic import Field

from safestack.models.base import (
    Capabilities,
    ChatModel,
    Completion,
    GenerationSettings,
    ModelError,
    ModelOptions,
    model,
)
from safestack.records import Message, Role

HF_INSTALL = "pip install torch==2.13.0 && pip install 'safestack[hf]'"


@dataclass(frozen=True)
class Generation:
    """What a runtime produced, before it becomes a `Completion`."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def chat_turns(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Messages as the `{"role", "content"}` dicts chat templates take.

    Developer instructions become system ones (few templates know the developer role), and tool
    output becomes a user turn marked as such: templates that accept a `tool` role also demand
    the tool-call id that a red-team conversation does not have.
    """
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role in (Role.SYSTEM, Role.DEVELOPER):
            turns.append({"role": "system", "content": message.content})
        elif message.role == Role.TOOL:
            source = f" from {message.name}" if message.name else ""
            turns.append({"role": "user", "content": f"Tool output{source}:\n{message.content}"})
        else:
            turns.append({"role": message.role.value, "content": message.content})
    return turns


def plain_prompt(messages: Sequence[Message]) -> str:
    """A `User:`/`Assistant:` transcript ending with `Assistant:`, for models without a template."""
    labels = {"system": "System", "user": "User", "assistant": "Assistant"}
    lines = [f"{labels[turn['role']]}: {turn['content']}" for turn in chat_turns(messages)]
    return "\n".join([*lines, "Assistant:"])


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The text before the first stop string, and whether one was found."""
    found = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return (text[: min(found)], True) if found else (text, False)


class LocalChatModel(ChatModel):
    """A model whose weights live in this process.

    Loading happens once, on the first call, in the worker thread. One generation runs at a time:
    an asyncio lock per event loop queues callers without tying up worker threads, and a thread
    lock keeps two event loops (or `asyncio.run` called twice) from sharing the weights at once.
    """

    def __init__(self, options: ModelOptions | None = None) -> None:
        super().__init__(options)
        self._thread_lock = threading.Lock()
        self._turns: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary()
        )
        self._loaded = False

    @abstractmethod
    def _load(self) -> None:
        """Load the weights (called once, in a worker thread, under the lock)."""

    @abstractmethod
    def _generate(self, messages: Sequence[Message], settings: GenerationSettings) -> Generation:
        """One blocking generation (in a worker thread, under the lock)."""

    def _unload(self) -> None:
        """Drop the weights; the next call loads them again."""

    async def complete(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Completion:
        if not messages:
            raise ModelError(self.model_id, "no messages to answer")
        turn = self._turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with turn:
            started = time.perf_counter()
            generation = await asyncio.to_thread(self._locked_generate, list(messages), settings)
            latency_ms = (time.perf_counter() - started) * 1000
        return Completion(
            text=generation.text,
            model=self.model_id,
            finish_reason=generation.finish_reason,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            latency_ms=latency_ms,
        )

    def _locked_generate(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Generation:
        with self._thread_lock:
            if not self._loaded:
                self._load()
                self._loaded = True
            try:
                return self._generate(messages, settings)
            except ModelError:
                raise
            except (RuntimeError, ValueError) as exc:  # the runtimes' own failures
                raise ModelError(self.model_id, f"generation failed: {exc}") from exc

    async def aclose(self) -> None:
        def unload() -> None:
            with self._thread_lock:
                if self._loaded:
                    self._unload()
                    self._loaded = False

        await asyncio.to_thread(unload)


def require_modules(model_id: str, modules: dict[str, str], install: str) -> None:
    """Raise a ModelError naming the install command when a runtime package is missing."""
    missing = [pip for module, pip in modules.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ModelError(
            model_id, f"the runtime needs {', '.join(missing)}, which is not installed: {install}"
        )


def hf_generate(
    lm: Any,
    tokenizer: Any,
    prompt: str,
    settings: GenerationSettings,
    *,
    add_special_tokens: bool,
    stop: Sequence[str] = (),
    stop_token_ids: Sequence[int] = (),
) -> Generation:
    """Generate with a loaded transformers model: greedy at temperature 0, seeded sampling above.

    Stop strings are checked on the decoded text (not token ids, which a stop string may straddle)
    and cut from the answer; `stop_token_ids` end the turn like EOS (Gemma's `<end_of_turn>`).
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=add_special_tokens)
    prompt_length = int(inputs["input_ids"].shape[1])

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            tail = tokenizer.decode(input_ids[0, prompt_length:], skip_special_tokens=True)
            return torch.tensor([cut_at_stop(tail, stop)[1]])  # one flag per sequence

    eos = [i for i in (tokenizer.eos_token_id, *stop_token_ids) if i is not None]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos or [0])[0]
    options: dict[str, Any] = {
        "max_new_tokens": settings.max_tokens,
        "pad_token_id": pad,
        "eos_token_id": eos or None,
    }
    if settings.temperature == 0:
        options["do_sample"] = False
    else:
        options.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)  # the global generator: safe under the model's lock
    if stop:
        options["stopping_criteria"] = StoppingCriteriaList([StopOnText()])
    with torch.inference_mode():
        output = lm.generate(**inputs, **options)
    new_tokens = output[0, prompt_length:]
    text, stopped = cut_at_stop(tokenizer.decode(new_tokens, skip_special_tokens=True), stop)
    ended = len(new_tokens) > 0 and int(new_tokens[-1]) in eos
    finish = "stop" if stopped or ended or len(new_tokens) < settings.max_tokens else "length"
    return Generation(text, prompt_length, len(new_tokens), finish)


class TransformersOptions(ModelOptions):
    path: Path = Field(description="Directory holding the model and tokenizer (save_pretrained).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="float32", description="Weights' dtype; float32 is the fast one on most CPUs."
    )
    n_threads: int | None = Field(
        default=None, ge=1, description="torch threads (process-wide); default: torch's choice."
    )
    chat_template: Literal["auto", "plain"] = Field(
        default="auto",
        description="auto: the tokenizer's chat template when it has one, else plain "
        "User:/Assistant: turns; plain: always the plain turns.",
    )
    system_prompt: bool = True
    multi_turn: bool = True
    model_name: str | None = Field(default=None, description="Recorded id; default: the folder.")


@model("transformers")
class TransformersModel(LocalChatModel):
    """A Hugging Face causal LM from a local directory (`local_files_only`: no hub access)."""

    Options = TransformersOptions
    options: TransformersOptions

    def __init__(self, options: TransformersOptions | None = None) -> None:
        super().__init__(options)
        self.capabilities = Capabilities(
            system_prompt=self.options.system_prompt, multi_turn=self.options.multi_turn
        )
        self._lm: Any = None
        self._tokenizer: Any = None
        self._stop_ids: list[int] = []

    @property
    def model_id(self) -> str:
        return self.options.model_name or self.options.path.name

    def _load(self) -> None:
        require_modules(
            self.model_id, {"torch": "torch==2.13.0", "transformers": "transformers"}, HF_INSTALL
        )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not self.options.path.is_dir():
            raise ModelError(
                self.model_id,
                f"model directory {self.options.path} does not exist: point `path` at a folder "
                "written by save_pretrained (config.json, weights, tokenizer files)",
            )
        if self.options.n_threads is not None:
            torch.set_num_threads(self.options.n_threads)
        dtype = "auto" if self.options.dtype == "auto" else getattr(torch, self.options.dtype)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(
                self.options.path, local_files_only=True
            )
            lm: Any = AutoModelForCausalLM.from_pretrained(
                self.options.path, local_files_only=True, dtype=dtype
            )
            self._lm = lm.eval()
        except (OSError, ValueError) as exc:
            raise ModelError(self.model_id, f"cannot load {self.options.path}: {exc}") from exc
        # The model's own end-of-turn tokens (generation_config.json), besides the tokenizer's
        # EOS: a chat model such as Gemma ends its turn with <end_of_turn>, not EOS.
        eos = getattr(lm.generation_config, "eos_token_id", None)
        self._stop_ids = [eos] if isinstance(eos, int) else list(eos or [])

    def _unload(self) -> None:
        self._lm = self._tokenizer = None

    def prompt(self, messages: Sequence[Message]) -> tuple[str, bool]:
        """The text the model is given, and whether the tokenizer must add its special tokens
        (a rendered chat template already carries BOS)."""
        if self.options.chat_template == "auto" and getattr(self._tokenizer, "chat_template", None):
            rendered: str = self._tokenizer.apply_chat_template(
                chat_turns(messages), tokenize=False, add_generation_prompt=True
            )
            return rendered, False
        return plain_prompt(messages), True

    def _generate(self, messages: Sequence[Message], settings: GenerationSettings) -> Generation:
        text, add_special = self.prompt(messages)
        # A base model continues the transcript with the next user turn: stop there.
        stops = (*settings.stop, *(() if not add_special else ("\nUser:",)))
        return hf_generate(
            self._lm,
            self._tokenizer,
            text,
            settings,
            add_special_tokens=add_special,
            stop=stops,
            stop_token_ids=self._stop_ids,
        )
