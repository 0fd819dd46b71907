"""The `hf-llama-guard` detector: a local causal LM that answers in the Llama Guard format
("safe", or "unsafe" and hazard codes such as S1,S10), its codes mapped through a policy framework.
Model loading, shared with `hf-classifier`, is in `hf_loading.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

from pydantic import Field

from safestack.errors import DetectorError, PolicyError
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.detectors.hf_loading import load_local_model
from safestack.policy import Policy
from safestack.records import Finding, Kind

LLAMA_GUARD = "hf-llama-guard"

log = logging.getLogger(__name__)


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
        self._torch, self.tokenizer, self.model = load_local_model(
            LLAMA_GUARD, opts.model, "AutoModelForCausalLM", opts.device
        )
        # The model is part of what the detector is: findings of another model differ.
        self.version = f"{type(self).version}+{opts.model.resolve().name}"
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
