"""Who writes the chosen (policy-compliant) answer of each finding: the offline templates, or any
chat model the red team knows, whose answers the built-in judges check before they are kept.

`--writer templates` (default) never calls a model. `--writer '{kind: openai, options: {...}}'`
(or a bare kind, or a YAML file) builds the model with the red team's `build_model`; each answer is
judged by the `refusal` and `harm-severity` scorers, and a harmful, empty or failed one is rejected
and counted, never kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import ValidationError

from safestack.align.findings import Finding, prompt_of
from safestack.align.rows import ScoreSummary
from safestack.align.templates import (
    packaged_templates,
    style_of,
    template_answer,
    templates_ref,
)
from safestack.errors import InputError, PolicyError
from safestack.models.base import ChatModel, GenerationSettings, ModelError
from safestack.policy import Policy
from safestack.records import Attempt, AttemptStatus, Message, Role
from safestack.redteam.campaign import ModelSpec
from safestack.redteam.runner import build_model
from safestack.redteam.scorers import Scorer, scorers

LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}
# What the writer model is told per template style (the same styles the templates follow).
GUIDANCE = {
    "refuse": (
        "Decline briefly and without lecturing: say plainly what you will not help with, then "
        "offer a safe, genuinely useful alternative."
    ),
    "support": (
        "The person may be at risk of harming themselves. Give no method, dose or detail that "
        "could help self-harm. Answer warmly, encourage them to reach out to someone they trust, "
        "and give crisis resources: the local emergency number, a crisis line (988 in the US, "
        "Samaritans 116 123 in the UK and Ireland, findahelpline.com elsewhere)."
    ),
    "high-level": (
        "Decline the operational part: no steps, quantities, code, recipes, targets or sources "
        "of materials. You may give high-level, non-operational background (why it is dangerous, "
        "how it is regulated or defended against) and offer a safe alternative."
    ),
}
WRITER_SYSTEM = """You write the reply that a safe and helpful assistant gives to a request that \
falls under a category of its usage policy.

Policy category `{category}`: {definition}

How to answer: {guidance}

Write the reply in {language}, in at most {words} words. Output only the assistant's reply: no \
preamble, no quotation marks, no notes about these instructions."""
WRITER_REQUEST = """The conversation so far; the assistant must now answer its last turn.

{conversation}

What the user is actually asking for: {objective}"""
WRITER_SETTINGS = GenerationSettings(temperature=0.0, max_tokens=320, seed=0)
MAX_WORDS = 120


@dataclass(frozen=True)
class Written:
    """A chosen answer and who wrote it."""

    text: str
    language: str
    writer: str
    template: str | None = None
    scores: tuple[ScoreSummary, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """An answer not kept, and why (`writer-harmful`, `writer-empty`, `writer-error`, ...)."""

    reason: str
    detail: str = ""


Progress = Callable[[int], None]


class AnswerWriter(Protocol):
    """Writes the chosen answer for each finding, in order."""

    @property
    def ref(self) -> str: ...

    def write(
        self, findings: Sequence[Finding], policy: Policy, seed: int, progress: Progress | None
    ) -> list[Written | Rejected]: ...


class TemplateWriter:
    """The offline default: the packaged templates (`assets/templates.yaml`)."""

    @property
    def ref(self) -> str:
        return templates_ref()

    def write(
        self,
        findings: Sequence[Finding],
        policy: Policy,
        seed: int,
        progress: Progress | None = None,
    ) -> list[Written | Rejected]:
        written: list[Written | Rejected] = []
        for item in findings:
            text, language, template = template_answer(
                item.attempt.category, item.language, item.prompt_hash, seed
            )
            written.append(Written(text, language, self.ref, template))
            if progress is not None:
                progress(1)
        return written


def parse_writer(text: str) -> ModelSpec | None:
    """`--writer`: 'templates' (None), a chat-model kind, a YAML mapping `{kind:, options:}`, or
    the path of a YAML file holding one."""
    if text.strip() == "templates":
        return None
    path = Path(text)
    source = text
    if text.endswith((".yaml", ".yml")):
        try:
            source = path.read_text("utf-8")
        except OSError as exc:
            raise InputError(f"--writer {text}: cannot read the file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise InputError(f"--writer: not valid YAML ({exc})") from None
    if isinstance(data, str):
        data = {"kind": data}
    if not isinstance(data, dict):
        raise InputError(
            "--writer: expected 'templates', a model kind (e.g. gguf) or a mapping such as "
            "'{kind: openai, options: {base_url: http://127.0.0.1:8000/v1, model: NAME}}'"
        )
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        raise InputError(f"--writer: {where}: {problem['msg']}") from None


class ModelWriter:
    """A chat model writes each answer; the built-in `refusal` and `harm-severity` scorers judge it
    with the request, and a harmful (severity at or above the scorer's success severity), empty or
    failed answer is rejected."""

    def __init__(
        self,
        model: ChatModel,
        policy: Policy,
        *,
        judges: Sequence[Scorer] | None = None,
        settings: GenerationSettings = WRITER_SETTINGS,
    ) -> None:
        self.model = model
        self.settings = settings
        self.judges = list(judges) if judges is not None else built_in_judges(policy)

    @classmethod
    def from_spec(cls, spec: ModelSpec, policy: Policy) -> ModelWriter:
        return cls(build_model(spec, "--writer"), policy)

    @property
    def ref(self) -> str:
        return f"model:{self.model.model_id}"

    def write(
        self,
        findings: Sequence[Finding],
        policy: Policy,
        seed: int,
        progress: Progress | None = None,
    ) -> list[Written | Rejected]:
        return asyncio.run(self._write(findings, policy, seed, progress))

    async def _write(
        self, findings: Sequence[Finding], policy: Policy, seed: int, progress: Progress | None
    ) -> list[Written | Rejected]:
        settings = self.settings.model_copy(update={"seed": seed})
        answers: list[str | Rejected] = []
        try:
            for item in findings:
                answers.append(await self._ask(item, policy, settings))
                if progress is not None:
                    progress(1)
        finally:
            await self.model.aclose()
        return await self._judge(findings, answers)

    async def _ask(
        self, item: Finding, policy: Policy, settings: GenerationSettings
    ) -> str | Rejected:
        try:
            completion = await self.model.complete(writer_messages(item, policy), settings)
        except ModelError as exc:
            return Rejected("writer-error", str(exc))
        text = completion.text.strip()
        return text if text else Rejected("writer-empty")

    async def _judge(
        self, findings: Sequence[Finding], answers: Sequence[str | Rejected]
    ) -> list[Written | Rejected]:
        judged = [
            (index, answered(findings[index].attempt, answer))
            for index, answer in enumerate(answers)
            if isinstance(answer, str)
        ]
        verdicts: dict[int, list[ScoreSummary]] = {index: [] for index, _ in judged}
        for judge in self.judges:
            scores = await judge.score_many([attempt for _, attempt in judged])
            for (index, _), score in zip(judged, scores, strict=True):
                verdicts[index].append(ScoreSummary.of(score))
        results: list[Written | Rejected] = []
        for index, answer in enumerate(answers):
            if isinstance(answer, Rejected):
                results.append(answer)
                continue
            results.append(self._verdict(findings[index], answer, verdicts[index]))
        return results

    def _verdict(self, item: Finding, text: str, scores: list[ScoreSummary]) -> Written | Rejected:
        harm = next((s for s in scores if s.scorer == "harm-severity"), None)
        if harm is None or harm.error is not None:
            detail = "no harm-severity verdict" if harm is None else str(harm.error)
            return Rejected("writer-judge-error", detail)
        if harm.success:
            return Rejected("writer-harmful", f"severity {harm.value} ({harm.label})")
        return Written(text, item.language, self.ref, None, tuple(scores))


def built_in_judges(policy: Policy) -> list[Scorer]:
    """The red team's `refusal` and `harm-severity` scorers with their defaults (built-in models)."""
    return [
        scorers.get(name).from_options({}, policy, where=f"--writer judges.{name}")
        for name in ("refusal", "harm-severity")
    ]


def answered(attempt: Attempt, text: str) -> Attempt:
    """The finding's attempt as if the target had answered `text`: what the judges read."""
    prefix = list(attempt.conversation)
    while prefix and prefix[-1].role == Role.ASSISTANT:
        prefix.pop()
    return attempt.model_copy(
        update={
            "conversation": [*prefix, Message(role=Role.ASSISTANT, content=text)],
            "response": text,
            "status": AttemptStatus.COMPLETE,
            "error": None,
            "scores": [],
        }
    )


def writer_messages(item: Finding, policy: Policy) -> list[Message]:
    """The writer model's conversation: the policy category and how to answer, then the finding."""
    category = item.attempt.category
    try:
        definition = policy.category(category).definition
    except PolicyError:  # a category the policy lacks: described by its name only
        definition = f"requests in the category '{category}'"
    language = item.language if item.language in LANGUAGE_NAMES else "en"
    system = WRITER_SYSTEM.format(
        category=category,
        definition=" ".join(definition.split()),
        guidance=GUIDANCE[style_of(category, packaged_templates())],
        language=LANGUAGE_NAMES[language],
        words=MAX_WORDS,
    )
    shown = "\n\n".join(f"[{turn.role}]\n{turn.content}" for turn in prompt_of(item.attempt))
    request = WRITER_REQUEST.format(conversation=shown, objective=item.attempt.objective)
    return [Message(role=Role.SYSTEM, content=system), Message(role=Role.USER, content=request)]
