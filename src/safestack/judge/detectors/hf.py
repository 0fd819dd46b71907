"""Detectors backed by local Hugging Face models: any sequence classifier with a label mapping
(Prompt Guard-style) and a generative safety classifier in the Llama Guard format.

Both load from a local directory only (nothing is downloaded) and import torch and transformers
when they are built, so a server installed without the `hf` extra still imports safestack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from safestack.errors import DetectorError, PolicyError
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.normalise import View
from safestack.policy import Policy
from safestack.records import Finding, Kind

INSTALL_HINT = "pip install torch==2.13.0 'safestack[hf]'"
CLASSIFIER = "hf-classifier"
LLAMA_GUARD = "hf-llama-guard"
EVIDENCE_CHARS = 200

log = logging.getLogger(__name__)


def _load(
    name: str,
    model_dir: Path,
    model_class: str,
    device: str,
    check: Callable[[Any], object] = lambda config: None,
) -> tuple[Any, Any, Any]:
    """(torch, tokenizer, model) from a local directory, or a DetectorError that says the fix.

    `check` sees the model's config before the weights load, so a bad option fails fast.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DetectorError(
            name, f"needs torch and transformers ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    if not model_dir.is_dir():
        raise DetectorError(
            name,
            f"model directory {model_dir} does not exist; options.model must be a local directory",
        )
    try:
        config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError ...
        raise DetectorError(name, f"cannot read the model config in {model_dir}: {exc}") from exc
    check(config)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = getattr(transformers, model_class).from_pretrained(
            model_dir, config=config, local_files_only=True
        )
        model.to(device)
    except Exception as exc:
        raise DetectorError(name, f"cannot load {model_class} from {model_dir}: {exc}") from exc
    model.eval()
    return torch, tokenizer, model


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"


# -- sequence classifier ---------------------------------------------------------------------------


class ClassifierOptions(DetectorOptions):
    model: Path = Field(description="Local directory with config.json, weights and tokenizer.")
    labels: dict[str, str | None] = Field(
        description="Every label of the model (config id2label) -> a policy category, or null for "
        "benign. Prompt Guard: {BENIGN: null, INJECTION: prompt-injection, JAILBREAK: jailbreak}."
    )
    multi_label: bool | None = Field(
        default=None,
        description="Sigmoid per label (true) or softmax over labels (false); "
        "default: true when config.problem_type is multi_label_classification.",
    )
    max_length: int = Field(
        default=512, ge=4, description="Tokens per window, capped at the model's limit."
    )
    stride: int = Field(
        default=64, ge=0, description="Tokens shared by consecutive windows of a long input."
    )
    batch_size: int = Field(default=16, ge=1, description="Windows per forward pass.")
    min_score: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Scores below this are not reported; 0 reports all (calibration).",
    )
    device: str = "cpu"


@dataclass(frozen=True, slots=True)
class Window:
    """One slice of tokens of one view, and the characters of the view it covers."""

    view: int
    start: int
    end: int
    inputs: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class _Hit:
    score: float
    label: str
    view: View
    start: int
    end: int


def _label_names(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in sorted(config.id2label)]


@detector(CLASSIFIER)
class HFClassifier(Detector):
    """A local `AutoModelForSequenceClassification`, its labels mapped to policy categories.

    Long inputs are split into overlapping windows; a category's score is its highest score over
    the windows of the text and of every decoded payload, and the evidence is that window. With
    softmax, labels mapped to the same category add up (Prompt Guard's own advice for injections
    in third-party data: P(injection) + P(jailbreak)); with sigmoid the highest label counts.
    """

    version = "1"
    Options = ClassifierOptions
    options: ClassifierOptions

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        super().__init__(policy, options)
        opts = self.options
        self._torch, self.tokenizer, self.model = _load(
            CLASSIFIER,
            opts.model,
            "AutoModelForSequenceClassification",
            opts.device,
            check=lambda config: self._map_labels(_label_names(config)),
        )
        config = self.model.config
        self._label_names = _label_names(config)
        self._targets = self._map_labels(self._label_names)
        self._multi_label = (
            opts.multi_label
            if opts.multi_label is not None
            else config.problem_type == "multi_label_classification"
        )
        if not getattr(self.tokenizer, "is_fast", False):
            raise DetectorError(
                CLASSIFIER,
                f"{opts.model} has no fast tokenizer (tokenizer.json); windows need offsets",
            )
        if self.tokenizer.pad_token is None:  # e.g. GPT-2 style classifiers
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
            config.pad_token_id = self.tokenizer.pad_token_id
        limit = self.tokenizer.model_max_length
        if not limit or limit > 1_000_000:  # "no limit" sentinel: fall back to the position table
            limit = getattr(config, "max_position_embeddings", None) or opts.max_length
        self._max_length = min(opts.max_length, limit)
        room = self._max_length - self.tokenizer.num_special_tokens_to_add()
        if opts.stride >= room:
            raise PolicyError(
                f"judge.detectors[{CLASSIFIER}].options.stride: {opts.stride} must be smaller "
                f"than the {room} text tokens of a {self._max_length}-token window"
            )

    def _map_labels(self, names: list[str]) -> dict[str, str]:
        """Model label -> category for the labels that are not benign; PolicyError if incomplete."""
        where = f"judge.detectors[{CLASSIFIER}].options.labels"
        mapping = self.options.labels
        missing = [n for n in names if n not in mapping]
        if missing:
            raise PolicyError(
                f"{where}: the model in {self.options.model} has label(s) {', '.join(missing)} "
                f"with no mapping; map every one of {', '.join(names)} to a category or null "
                "for benign"
            )
        extra = [n for n in mapping if n not in names]
        if extra:
            raise PolicyError(
                f"{where}: {', '.join(extra)} is not a label of the model in {self.options.model} "
                f"(its labels: {', '.join(names)})"
            )
        targets = {n: c for n, c in mapping.items() if c is not None}
        for label, category in targets.items():
            if category not in self.policy.categories:
                raise PolicyError(
                    f"{where}.{label}: '{category}' is not a category of policy {self.policy.ref}; "
                    f"known: {', '.join(self.policy.categories)}"
                )
        if not targets:
            raise PolicyError(
                f"{where}: every label is mapped to null, so nothing could ever be found"
            )
        return targets

    def detect(self, sample: Sample) -> list[Finding]:
        return self.detect_batch([sample])[0]

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        views = [
            (i, v) for i, s in enumerate(samples) for v in s.normalised.views() if v.text.strip()
        ]
        windows = self.windows([v.text for _, v in views])
        best: list[dict[str, _Hit]] = [{} for _ in samples]
        for window, probs in zip(windows, self._probabilities(windows), strict=True):
            sample_index, view = views[window.view]
            for category, (score, label) in self._category_scores(probs).items():
                held = best[sample_index].get(category)
                if held is None or score > held.score:
                    best[sample_index][category] = _Hit(
                        score, label, view, window.start, window.end
                    )
        return [
            [
                self.finding(
                    category,
                    hit.score,
                    source=hit.view.source,
                    span=hit.view.span(hit.start, hit.end),
                    evidence=_snippet(hit.view.text[hit.start : hit.end]),
                    label=hit.label,
                )
                for category, hit in sorted(hits.items())
                if hit.score >= self.options.min_score
            ]
            for hits in best
        ]

    def windows(self, texts: Sequence[str]) -> list[Window]:
        """Overlapping token windows of each text (`stride` tokens shared) and their characters."""
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self._max_length,
            stride=self.options.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        names = [n for n in self.tokenizer.model_input_names if n in encoded]
        windows = []
        for row, text_index in enumerate(encoded["overflow_to_sample_mapping"]):
            offsets = [
                (s, e)
                for (s, e), special in zip(
                    encoded["offset_mapping"][row], encoded["special_tokens_mask"][row], strict=True
                )
                if not special and e > s
            ]
            if offsets:
                inputs = {n: list(encoded[n][row]) for n in names}
                windows.append(
                    Window(text_index, offsets[0][0], max(e for _, e in offsets), inputs)
                )
        return windows

    def _probabilities(self, windows: list[Window]) -> list[list[float]]:
        """Label probabilities per window, shortest windows batched together to limit padding."""
        torch = self._torch
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].inputs["input_ids"]))
        probs: list[list[float]] = [[] for _ in windows]
        size = self.options.batch_size
        for first in range(0, len(order), size):
            chunk = order[first : first + size]
            batch = self.tokenizer.pad([windows[i].inputs for i in chunk], return_tensors="pt")
            batch = {k: v.to(self.options.device) for k, v in batch.items()}
            try:
                with torch.inference_mode():
                    logits = self.model(**batch).logits.float()
            except RuntimeError as exc:
                raise DetectorError(
                    CLASSIFIER, f"inference failed on {self.options.model}: {exc}"
                ) from exc
            scores = logits.sigmoid() if self._multi_label else logits.softmax(dim=-1)
            for i, row in zip(chunk, scores.cpu().tolist(), strict=True):
                probs[i] = row
        return probs

    def _category_scores(self, probs: list[float]) -> dict[str, tuple[float, str]]:
        """Category -> (score, the model label that contributed most) for one window."""
        scores: dict[str, tuple[float, str]] = {}
        for name, p in zip(self._label_names, probs, strict=True):
            category = self._targets.get(name)
            if category is None:
                continue
            if category not in scores:
                scores[category] = (p, name)
                continue
            held, label = scores[category]
            top = name if p > held else label
            scores[category] = (max(held, p) if self._multi_label else held + p, top)
        return scores


# -- Llama Guard -----------------------------------------------------------------------------------


class LlamaGuardOptions(DetectorOptions):
    model: Path = Field(description="Local directory with a causal LM and its tokenizer.")
    max_new_tokens: int = Field(default=20, ge=1, le=512)
    framework: str = Field(
        default="mlcommons",
        description="The policy framework whose codes (S1, S2, ...) the model answers with.",
    )
    chat_template: bool = Field(
        default=True,
        description="Use the tokenizer's chat template when it has one (Llama Guard 3/4); false "
        "always uses the built-in Llama Guard 3 prompt listing the policy framework's categories.",
    )
    device: str = "cpu"


def llama_guard_prompt(text: str, kind: Kind, hazards: Mapping[str, str]) -> str:
    """The Llama Guard 3 task prompt (model card, "Prompt format") without model-specific tokens."""
    role = "User" if kind == "prompt" else "Agent"
    categories = "\n".join(f"{code}: {name}." for code, name in hazards.items())
    return (
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according "
        "our safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{role}: {text.strip()}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above "
        "conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line "
        "must include a comma-separated list of violated categories.\n\n"
    )


def parse_llama_guard(output: str, known_codes: Collection[str]) -> tuple[str, ...]:
    """The hazard codes in a Llama Guard answer: () for "safe", ("S1", "S10") for "unsafe\\nS1,S10".

    Anything else raises DetectorError, so that an answer the parser cannot read is never "safe".
    "unsafe" without codes is an error too: there is no category to record it under.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        raise DetectorError(LLAMA_GUARD, "the model generated no text; expected 'safe' or 'unsafe'")
    verdict = lines[0].lower()
    if verdict == "safe":
        return ()
    if verdict != "unsafe":
        raise DetectorError(
            LLAMA_GUARD,
            f"cannot read the model's answer {output[:80]!r}: its first line must be 'safe' or "
            "'unsafe' (is this a Llama Guard model, and does its prompt format match?)",
        )
    if len(lines) < 2:
        raise DetectorError(
            LLAMA_GUARD, "the model answered 'unsafe' without hazard codes; raise max_new_tokens?"
        )
    codes = [code.strip().upper() for code in lines[1].split(",") if code.strip()]
    unknown = [code for code in codes if code not in known_codes]
    if not codes or unknown:
        raise DetectorError(
            LLAMA_GUARD,
            f"the model answered unknown hazard code(s) {', '.join(unknown) or repr(lines[1])}; "
            f"the policy framework knows {', '.join(known_codes)}",
        )
    return tuple(dict.fromkeys(codes))


@detector(LLAMA_GUARD)
class LlamaGuard(Detector):
    """A local Llama Guard-style causal LM that answers "safe" or "unsafe\\nS1,S10".

    Each hazard code maps to policy categories through `frameworks.<framework>`; one Finding per
    category, labelled with its code(s). Codes the policy maps to no category (S6, S8 by default)
    make no finding of their own but are named in the evidence of the others. The score is the
    model's probability of its first answer token ("unsafe"), as in Meta's Llama Guard evaluation.
    The text and each decoded payload are judged separately, greedily, one at a time.
    """

    version = "1"
    Options = LlamaGuardOptions
    options: LlamaGuardOptions

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        super().__init__(policy, options)
        opts = self.options
        entries = policy.frameworks.get(opts.framework)
        if not entries:
            raise PolicyError(
                f"judge.detectors[{LLAMA_GUARD}].options.framework: policy {policy.ref} has no "
                f"framework '{opts.framework}'; known: {', '.join(policy.frameworks) or 'none'}"
            )
        self.hazards = {code: entry.name for code, entry in entries.items()}
        self._torch, self.tokenizer, self.model = _load(
            LLAMA_GUARD, opts.model, "AutoModelForCausalLM", opts.device
        )
        self._pad_id = self.tokenizer.pad_token_id
        if self._pad_id is None:
            self._pad_id = self.tokenizer.eos_token_id

    def encode_prompt(self, text: str, kind: Kind) -> list[int]:
        """The exact token ids the model is given for `text` in the role `kind` names."""
        tokenizer = self.tokenizer
        try:
            if self.options.chat_template and getattr(tokenizer, "chat_template", None):
                # Llama Guard templates want turns alternating from the user's; a response is
                # judged after an empty user turn, since a Sample carries no prompt.
                messages = [{"role": "user", "content": text}]
                if kind == "response":
                    messages = [
                        {"role": "user", "content": ""},
                        {"role": "assistant", "content": text},
                    ]
                encoded = tokenizer.apply_chat_template(
                    messages,
                    tokenize=True,
                    add_generation_prompt=True,
                    sanitize_control_tokens=True,
                )
                ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
                return [int(i) for i in ids]
            # Control tokens written by the user are encoded as plain text, never as instructions.
            body = tokenizer(
                llama_guard_prompt(text, kind, self.hazards),
                add_special_tokens=False,
                split_special_tokens=True,
            )["input_ids"]
        except ValueError as exc:  # e.g. a control token the tokenizer cannot escape
            raise DetectorError(LLAMA_GUARD, f"cannot build the prompt: {exc}") from exc
        bos = tokenizer.bos_token_id
        return ([bos] if bos is not None else []) + [int(i) for i in body]

    def generate(self, text: str, kind: Kind) -> tuple[str, float]:
        """The model's answer, and the probability of its first non-blank token (1.0 if unknown)."""
        torch = self._torch
        prompt = torch.tensor([self.encode_prompt(text, kind)], device=self.options.device)
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=prompt,
                    attention_mask=torch.ones_like(prompt),
                    max_new_tokens=self.options.max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=self._pad_id,
                    output_logits=True,
                    return_dict_in_generate=True,
                )
        except RuntimeError as exc:
            raise DetectorError(
                LLAMA_GUARD, f"generation failed on {self.options.model}: {exc}"
            ) from exc
        generated = out.sequences[0, prompt.shape[1] :].tolist()
        logits = getattr(out, "logits", None)
        probability = 1.0
        for step, token in enumerate(generated):
            if self.tokenizer.decode([token], skip_special_tokens=True).strip():
                if logits is not None and step < len(logits):
                    probability = float(logits[step][0].float().softmax(dim=-1)[token])
                break
        return self.tokenizer.decode(generated, skip_special_tokens=True), probability

    def detect(self, sample: Sample) -> list[Finding]:
        framework = self.options.framework
        found: dict[str, Finding] = {}
        for view in sample.normalised.views():
            if not view.text.strip():
                continue
            answer, probability = self.generate(view.text, sample.kind)
            codes = parse_llama_guard(answer, self.hazards)
            if not codes:
                continue
            by_category: dict[str, list[str]] = {}
            named = []
            for code in codes:
                categories = self.policy.framework_categories(framework, code) or []
                named.append(f"{code} {self.hazards[code]}" + ("" if categories else " (unmapped)"))
                for category in categories:
                    by_category.setdefault(category, []).append(code)
            if not by_category:
                log.info("%s: %s have no category in policy %s", self.ref, codes, self.policy.ref)
            evidence = "unsafe: " + ", ".join(named)
            for category, mapped in by_category.items():
                held = found.get(category)
                if held is None or probability > held.score:
                    found[category] = self.finding(
                        category,
                        probability,
                        source=view.source,
                        span=view.span(0, len(view.text)),
                        evidence=evidence,
                        label=",".join(mapped),
                    )
        return [found[c] for c in sorted(found)]
