"""The `llm-judge` detector: an LLM rates the text per policy category, following a rubric.

It asks any OpenAI-compatible chat completions API; the HTTP plumbing it shares with the other
remote detectors is in `http.py`, the packaged rubrics in `judge/assets/rubrics/`.
"""

from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

from pydantic import Field

from safestack.errors import PolicyError
from safestack.judge.detector import DetectorOptions, Sample, detector
from safestack.judge.detectors.http import RemoteDetector, RemoteOptions, shorten
from safestack.policy import Policy
from safestack.policy.model import MAX_SEVERITY
from safestack.records import Finding

_RUBRIC_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_LEADING_COMMENT = re.compile(r"\A\s*<!--.*?-->\s*", re.DOTALL)
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n?(.*?)\n?```\Z", re.DOTALL | re.IGNORECASE)


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
        self.rubric = load_rubric(self.options.rubric)
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
        text = content.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1).strip()
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise self.unusable(f"the reply is not valid JSON ({shorten(str(exc))})") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("categories"), dict):
            raise self.unusable("the reply has no 'categories' object")
        if answer.get("rubric", self.options.rubric) != self.options.rubric:
            raise self.unusable(
                f"the reply names rubric {answer['rubric']!r}, not {self.options.rubric!r}"
            )
        rated: dict[str, tuple[int, str | None]] = {}
        for name, entry in answer["categories"].items():
            if name not in self.categories:
                raise self.unusable(f"the reply rates category {name!r}, which was not asked about")
            severity = entry.get("severity") if isinstance(entry, dict) else None
            if type(severity) is not int or not 0 <= severity <= MAX_SEVERITY:
                raise self.unusable(
                    f"categories.{name}.severity is {severity!r}, not an integer 0-{MAX_SEVERITY}"
                )
            rationale = entry.get("rationale")
            if rationale is not None and not isinstance(rationale, str):
                raise self.unusable(f"categories.{name}.rationale is not a string")
            rated[name] = (severity, shorten(rationale, 500) if rationale else None)
        return rated


@lru_cache(maxsize=16)
def load_rubric(name: str) -> str:
    """A packaged rubric (`judge/assets/rubrics/<name>.md`) without its header comment."""
    folder = resources.files("safestack.judge").joinpath("assets", "rubrics")
    packaged = sorted(
        p.name.removesuffix(".md") for p in folder.iterdir() if p.name.endswith(".md")
    )
    if not _RUBRIC_NAME.fullmatch(name) or name not in packaged:
        raise PolicyError(
            f"judge.detectors[llm-judge].options.rubric: no packaged rubric {name!r}; "
            f"available: {', '.join(packaged)}"
        )
    return _LEADING_COMMENT.sub("", folder.joinpath(f"{name}.md").read_text("utf-8"))
