"""The `llm-judge` detector: an LLM rates the text per policy category, following a rubric.

It asks any OpenAI-compatible chat completions API; the HTTP plumbing it shares with the other
remote detectors is in `http.py`, the rubrics and the reading of a reply in `judge/rubrics.py`
(shared with the red-team LLM scorers).
"""

from __future__ import annotations

import json
import string
from typing import Any, ClassVar

from pydantic import Field

from safestack.errors import PolicyError
from safestack.judge.detector import DetectorOptions, Sample, detector
from safestack.judge.detectors.http import RemoteDetector, RemoteOptions
from safestack.judge.rubrics import JudgeReplyError, load_rubric, parse_reply, reply_int, reply_text
from safestack.policy import Policy
from safestack.policy.model import MAX_SEVERITY
from safestack.records import Finding


class LlmJudgeOptions(RemoteOptions):
    model: str = Field(min_length=1, description="The judge model's name on the server.")
    rubric: str = Field(default="harm-v1", description="A packaged rubric (judge/assets/rubrics).")
    categories: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Policy categories to rate; all content categories of the policy when unset.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


_SUBJECTS = {
    "prompt": "a prompt: a message a user sent to an AI assistant",
    "response": "a response: what an AI assistant replied to a user",
}


@detector("llm-judge")
class LlmJudge(RemoteDetector):
    """An LLM rates the text per category on the policy's 0-7 scale, following a packaged rubric.

    score = severity / 7. The judge gives a severity, not a probability; dividing by 7 keeps the
    order, puts the default threshold (0.5) between low (3 -> 0.43) and medium (4 -> 0.57), and
    maps back to the same severity through the default policy's score cut points. It is not
    calibrated: measure the judge against human labels before trusting it as a probability.
    """

    version = "1"
    Options = LlmJudgeOptions
    options: LlmJudgeOptions
    path: ClassVar[str] = "/chat/completions"
    unusable_hint: ClassVar[str] = (
        "use a judge model that follows JSON instructions, or check base_url and model"
    )

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        if options is None:
            raise PolicyError("llm-judge needs options: base_url and model at least")
        super().__init__(policy, options)
        self.rubric = load_rubric(
            self.options.rubric, where="judge.detectors[llm-judge].options.rubric"
        )
        self.categories = list(self.options.categories or policy.content_categories())
        unknown = [c for c in self.categories if c not in policy.categories]
        if unknown:
            raise PolicyError(
                f"judge.detectors[llm-judge].options.categories: {', '.join(unknown)} not in "
                f"policy {policy.ref}; known: {', '.join(policy.categories)}"
            )
        # The rubric is part of what the judge is: findings made under another rubric differ.
        self.version = f"{type(self).version}+{self.options.rubric}"

    def detect(self, sample: Sample) -> list[Finding]:
        return self._findings(self.post(self._payload(sample)))

    async def adetect(self, sample: Sample) -> list[Finding]:
        return self._findings(await self.apost(self._payload(sample)))

    def instructions(self, sample: Sample) -> str:
        """The system message: the rubric with this sample's kind and the categories filled in."""
        listed = "\n".join(
            f"- `{name}`: {' '.join(self.policy.categories[name].definition.split())}"
            for name in self.categories
        )
        return string.Template(self.rubric).substitute(
            subject=_SUBJECTS[sample.kind], categories=listed, rubric=self.options.rubric
        )

    def _payload(self, sample: Sample) -> dict[str, Any]:
        # The text goes in as a JSON string, so it cannot close a delimiter and pose as rubric.
        data: dict[str, Any] = {"kind": sample.kind, "text": sample.normalised.original}
        decoded = [
            {"encoding": view.source, "text": view.text}
            for view in list(sample.normalised.views())[1:]
        ]
        if decoded:
            data["decoded"] = decoded
        return {
            "model": self.options.model,
            "temperature": self.options.temperature,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": self.instructions(sample)},
                {"role": "user", "content": json.dumps(data, ensure_ascii=False)},
            ],
        }

    def _findings(self, body: Any) -> list[Finding]:
        rated = self._ratings(self._content(body))
        findings = []
        for name in self.categories:
            severity, rationale = rated.get(name, (0, None))  # left out means severity 0
            findings.append(
                self.finding(name, severity / MAX_SEVERITY, severity=severity, evidence=rationale)
            )
        return findings

    def _content(self, body: Any) -> str:
        """`choices[0].message.content` of a chat completion, or an error saying what was there."""
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.unusable("no 'choices' in the chat completion")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise self.unusable("choices[0] has no 'message'")
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            return content
        if message.get("refusal"):
            raise self.unusable("the judge model refused to rate the text")
        if choices[0].get("finish_reason") == "length":
            raise self.unusable("the reply was cut off at the token limit")
        raise self.unusable("choices[0].message.content is empty")

    def _ratings(self, content: str) -> dict[str, tuple[int, str | None]]:
        """Category -> (severity, rationale) from the judge's reply; strict about the shape."""
        try:
            answer = parse_reply(content)
            categories = answer.get("categories")
            if not isinstance(categories, dict):
                raise JudgeReplyError("the reply has no 'categories' object")
            if answer.get("rubric", self.options.rubric) != self.options.rubric:
                raise JudgeReplyError(
                    f"the reply names rubric {answer['rubric']!r}, not {self.options.rubric!r}"
                )
            return {name: self._rating(name, entry) for name, entry in categories.items()}
        except JudgeReplyError as exc:
            raise self.unusable(str(exc)) from None

    def _rating(self, name: str, entry: Any) -> tuple[int, str | None]:
        if name not in self.categories:
            raise JudgeReplyError(f"the reply rates category {name!r}, which was not asked about")
        entry = entry if isinstance(entry, dict) else {}
        severity = reply_int(entry, "severity", MAX_SEVERITY, where=f"categories.{name}.severity")
        rationale = entry.get("rationale")
        if rationale is not None and not isinstance(rationale, str):
            raise JudgeReplyError(f"categories.{name}.rationale is not a string")
        return severity, reply_text(entry, "rationale")
