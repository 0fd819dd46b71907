"""Detectors that ask a remote service: OpenAI's moderation endpoint and an LLM judge.

Both speak the OpenAI HTTP API, so they work against api.openai.com or any compatible server (vLLM,
llama.cpp, LiteLLM). They are the expensive end of the cascade, and they fail loudly: an outage, a
timeout or an answer that cannot be read raises `DetectorError`, never "no findings".
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import string
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import httpx
from pydantic import Field, field_validator

from safestack.errors import DetectorError, PolicyError
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.policy import Policy
from safestack.policy.model import MAX_SEVERITY
from safestack.records import Finding, Span

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RUBRIC_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_LEADING_COMMENT = re.compile(r"\A\s*<!--.*?-->\s*", re.DOTALL)
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n?(.*?)\n?```\Z", re.DOTALL | re.IGNORECASE)
_OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_-]{6,}")
# Connection-level failures happen before the server did any work, so resending is safe.
_RETRYABLE_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


class RemoteOptions(DetectorOptions):
    """Options every remote detector takes: where, how long, how often to retry, which key."""

    base_url: str = Field(description="OpenAI-compatible API root, e.g. https://api.openai.com/v1")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key itself); "
        "null for a server without authentication.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds for each of connect and read.")
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries after 429, 5xx, network.")
    backoff: float = Field(
        default=0.5, ge=0, description="First retry delay (s); doubles per retry."
    )
    max_backoff: float = Field(
        default=30.0, ge=0, description="Longest wait before a retry; a longer Retry-After fails."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.openai.com/v1")
        return url.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not _ENV_NAME.fullmatch(name):
            # Deliberately does not echo the value: it may be a key pasted in by mistake.
            raise ValueError(
                "must be the NAME of an environment variable (like OPENAI_API_KEY), not the key "
                "itself; keys never go in the policy file"
            )
        return name


class RemoteDetector(Detector):
    """HTTP plumbing shared by the remote detectors: headers, retries, errors, JSON decoding.

    Subclasses build a payload, call `_post` (sync) or `_apost` (async), and parse the answer;
    everything between is here once. Clients are created lazily and kept for connection reuse;
    `close()` / `aclose()` release them.
    """

    path: ClassVar[str]
    options: RemoteOptions
    # What to tell the user when the service answers something this detector cannot read.
    unusable_hint: ClassVar[str] = "check that base_url points at an OpenAI-compatible API"

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        super().__init__(policy, options)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._aclient: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    @property
    def url(self) -> str:
        return self.options.base_url + self.path

    def close(self) -> None:
        """Close the pooled connections of the sync client; the owner calls this when done."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop (a server calls this at shutdown)."""
        current = self._aclient
        if current is not None and current[0] is asyncio.get_running_loop():
            self._aclient = None
            await current[1].aclose()

    # -- the two transports: identical steps, sync and async ---------------------------------------
    def _post(self, payload: dict[str, Any]) -> Any:
        request = self._request(payload)
        client = self._sync_client()
        attempt = 0
        while True:
            try:
                response = client.send(request)
            except httpx.TransportError as exc:
                time.sleep(self._delay_after_error(attempt, exc))
            else:
                if response.is_success:
                    return self._decode(response)
                time.sleep(self._delay_after_status(attempt, response))
            attempt += 1

    async def _apost(self, payload: dict[str, Any]) -> Any:
        request = self._request(payload)
        client = self._async_client()
        attempt = 0
        while True:
            try:
                response = await client.send(request)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._delay_after_error(attempt, exc))
            else:
                if response.is_success:
                    return self._decode(response)
                await asyncio.sleep(self._delay_after_status(attempt, response))
            attempt += 1

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.options.timeout)
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient's connections belong to the loop that opened them, and each
        # `asyncio.run()` is a new loop: keep the client of the current loop, drop one left by
        # a finished loop (its sockets close when it is collected).
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            self._aclient = (loop, httpx.AsyncClient(timeout=self.options.timeout))
        return self._aclient[1]

    # -- shared steps ------------------------------------------------------------------------------
    def _request(self, payload: dict[str, Any]) -> httpx.Request:
        from safestack import __version__  # at call time: the package may still be importing us

        headers = {
            "Accept": "application/json",
            "User-Agent": f"safestack/{__version__} {self.name}/{self.version}",
        }
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Request("POST", self.url, json=payload, headers=headers)

    def _api_key(self) -> str | None:
        name = self.options.api_key_env
        if name is None:
            return None
        key = os.environ.get(name, "").strip()
        if not key:
            raise DetectorError(
                self.name,
                f"environment variable {name} (api_key_env) is not set; export the API key in it, "
                "or set api_key_env: null for a server without authentication",
            )
        return key

    def _where(self) -> str:
        url = httpx.URL(self.url).copy_with(username=None, password=None, query=None)
        return f"POST {url}"

    def _fail(self, message: str) -> DetectorError:
        return DetectorError(self.name, _one_line(self._scrub(message)))

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything shaped like an OpenAI key) from text we show."""
        name = self.options.api_key_env
        key = os.environ.get(name, "").strip() if name else ""
        if len(key) >= 4:
            text = text.replace(key, "<api key>")
        return _OPENAI_KEY.sub("sk-<redacted>", text)

    def _backoff(self, attempt: int) -> float:
        # Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff
        # and Jitter", 2015): half the delay fixed, half random, so clients do not retry in step.
        delay = min(self.options.max_backoff, self.options.backoff * 2.0**attempt)
        return delay / 2 + random.uniform(0, delay / 2)

    def _delay_after_error(self, attempt: int, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying after a transport error, or raise DetectorError."""
        where, tries = self._where(), _attempts(attempt)
        if isinstance(exc, _RETRYABLE_ERRORS):
            if attempt < self.options.max_retries:
                return self._backoff(attempt)
            reason = str(exc) or type(exc).__name__
            raise self._fail(
                f"cannot reach {where} ({reason}) after {tries}; check that the server is running "
                "and that base_url is right"
            ) from None
        if isinstance(exc, httpx.TimeoutException):
            # A read timeout is not retried: the server was busy with the request, and resending
            # it would multiply the latency the caller is waiting through.
            raise self._fail(
                f"{where} did not answer within {self.options.timeout:g}s (timeout); raise the "
                "timeout option or check the server's load"
            ) from None
        raise self._fail(
            f"{where} failed ({type(exc).__name__}: {exc}); check base_url and the network"
        ) from None

    def _delay_after_status(self, attempt: int, response: httpx.Response) -> float:
        """Seconds to wait before retrying a non-2xx answer, or raise DetectorError."""
        status, where = response.status_code, self._where()
        retryable = status == 429 or status >= 500
        if retryable and attempt < self.options.max_retries:
            wait = _retry_after(response)
            if wait is None:
                return self._backoff(attempt)
            if wait <= self.options.max_backoff:
                return wait
            raise self._fail(
                f"{where} answered HTTP {status} and asked to retry after {wait:g}s, longer than "
                f"max_backoff={self.options.max_backoff:g}s; try later or raise max_backoff"
            )
        detail = _error_detail(response)
        tries = f" after {_attempts(attempt)}" if retryable else ""
        raise self._fail(f"{where} answered HTTP {status}{tries} ({detail}); {self._hint(status)}")

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            where = f"${self.options.api_key_env}" if self.options.api_key_env else "api_key_env"
            return f"check the API key in {where} and its access to this endpoint"
        if status == 404:
            return "check base_url (it usually ends in /v1) and the model name"
        if status == 429:
            return "the service is rate limiting; lower the request rate or raise max_retries"
        if status >= 500:
            return "the service is failing; try again later or raise max_retries"
        return "the service rejected the request; check the model name and the detector options"

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise self._fail(
                f"{self._where()} answered HTTP {response.status_code} with a body that is not "
                f"valid JSON ({_short(str(exc))}); {self.unusable_hint}"
            ) from None

    def _unusable(self, problem: str) -> DetectorError:
        return self._fail(
            f"{self._where()} sent an unusable answer: {problem}; {self.unusable_hint}"
        )


# -- openai-moderation -----------------------------------------------------------------------------


class ModerationOptions(RemoteOptions):
    base_url: str = Field(default="https://api.openai.com/v1", description="API root.")
    model: str = Field(default="omni-moderation-latest", min_length=1)
    batch_size: int = Field(default=32, ge=1, le=1000, description="Texts per request.")


@dataclass(frozen=True, slots=True)
class _Input:
    """One text sent to the moderation endpoint: the original input or a decoded payload."""

    sample: int
    text: str
    source: str
    span: Span | None


@detector("openai-moderation")
class OpenAIModeration(RemoteDetector):
    """OpenAI's moderation endpoint (or a compatible one): one score per category.

    The original input is sent together with every payload the normaliser decoded from it, so a
    base64-wrapped request is scored as what it says. Scores for categories the policy does not
    know are dropped; the API's own `flagged` booleans are ignored in favour of the policy's
    thresholds.
    """

    version: ClassVar[str] = "1"
    Options = ModerationOptions
    options: ModerationOptions
    path: ClassVar[str] = "/moderations"
    unusable_hint: ClassVar[str] = (
        "check that base_url points at an OpenAI-compatible moderation API"
    )

    def detect(self, sample: Sample) -> list[Finding]:
        return self.detect_batch([sample])[0]

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        inputs = _moderation_inputs(samples)
        scores: list[dict[str, float]] = []
        for chunk in _chunks(inputs, self.options.batch_size):
            scores.extend(self._scores(self._post(self._payload(chunk)), len(chunk)))
        return self._findings(len(samples), inputs, scores)

    async def adetect(self, sample: Sample) -> list[Finding]:
        inputs = _moderation_inputs([sample])
        scores: list[dict[str, float]] = []
        for chunk in _chunks(inputs, self.options.batch_size):
            scores.extend(self._scores(await self._apost(self._payload(chunk)), len(chunk)))
        return self._findings(1, inputs, scores)[0]

    def _payload(self, chunk: Sequence[_Input]) -> dict[str, Any]:
        return {"model": self.options.model, "input": [item.text for item in chunk]}

    def _scores(self, body: Any, expected: int) -> list[dict[str, float]]:
        """The `category_scores` of each result, validated; raises on anything off-shape."""
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise self._unusable("no 'results' list")
        if len(results) != expected:
            raise self._unusable(f"{len(results)} results for {expected} inputs")
        parsed: list[dict[str, float]] = []
        for i, result in enumerate(results):
            raw = result.get("category_scores") if isinstance(result, dict) else None
            if not isinstance(raw, dict):
                raise self._unusable(f"results[{i}] has no 'category_scores' object")
            for name, score in raw.items():
                if not _is_probability(score):
                    raise self._unusable(
                        f"results[{i}].category_scores.{name} is {score!r}, not a number in [0, 1]"
                    )
            parsed.append({str(name): float(score) for name, score in raw.items()})
        return parsed

    def _findings(
        self, n_samples: int, inputs: Sequence[_Input], scores: Sequence[dict[str, float]]
    ) -> list[list[Finding]]:
        findings: list[list[Finding]] = [[] for _ in range(n_samples)]
        for item, category_scores in zip(inputs, scores, strict=True):
            for name, score in category_scores.items():
                # A category new to the API is not in the policy, so not ours to act on.
                if name in self.policy.categories:
                    findings[item.sample].append(
                        self.finding(name, score, label=name, source=item.source, span=item.span)
                    )
        return findings


def _moderation_inputs(samples: Sequence[Sample]) -> list[_Input]:
    inputs: list[_Input] = []
    for index, sample in enumerate(samples):
        original = sample.normalised.original
        inputs.append(_Input(index, original, "text", None))
        seen = {original}
        for view in list(sample.normalised.views())[1:]:
            if view.text.strip() and view.text not in seen:
                seen.add(view.text)
                inputs.append(_Input(index, view.text, view.source, view.span(0, len(view.text))))
    return inputs


# -- llm-judge -------------------------------------------------------------------------------------


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

    version: ClassVar[str] = "1"
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
        # (Detector.version is a class attribute; the instance one shadows it for this judge.)
        vars(self)["version"] = f"{type(self).version}+{self.options.rubric}"

    def detect(self, sample: Sample) -> list[Finding]:
        return self._findings(self._post(self._payload(sample)))

    async def adetect(self, sample: Sample) -> list[Finding]:
        return self._findings(await self._apost(self._payload(sample)))

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
            raise self._unusable("no 'choices' in the chat completion")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise self._unusable("choices[0] has no 'message'")
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            return content
        if message.get("refusal"):
            raise self._unusable("the judge model refused to rate the text")
        if choices[0].get("finish_reason") == "length":
            raise self._unusable("the reply was cut off at the token limit")
        raise self._unusable("choices[0].message.content is empty")

    def _ratings(self, content: str) -> dict[str, tuple[int, str | None]]:
        """Category -> (severity, rationale) from the judge's reply; strict about the shape."""
        text = content.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1).strip()
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise self._unusable(f"the reply is not valid JSON ({_short(str(exc))})") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("categories"), dict):
            raise self._unusable("the reply has no 'categories' object")
        if answer.get("rubric", self.options.rubric) != self.options.rubric:
            raise self._unusable(
                f"the reply names rubric {answer['rubric']!r}, not {self.options.rubric!r}"
            )
        rated: dict[str, tuple[int, str | None]] = {}
        for name, entry in answer["categories"].items():
            if name not in self.categories:
                raise self._unusable(
                    f"the reply rates category {name!r}, which was not asked about"
                )
            severity = entry.get("severity") if isinstance(entry, dict) else None
            if type(severity) is not int or not 0 <= severity <= MAX_SEVERITY:
                raise self._unusable(
                    f"categories.{name}.severity is {severity!r}, not an integer 0-{MAX_SEVERITY}"
                )
            rationale = entry.get("rationale")
            if rationale is not None and not isinstance(rationale, str):
                raise self._unusable(f"categories.{name}.rationale is not a string")
            rated[name] = (severity, _short(rationale, 500) if rationale else None)
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


# -- small pure helpers ----------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (Retry-After, or OpenAI's retry-after-ms), if any."""
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # RFC 9110 also allows an HTTP date
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_detail(response: httpx.Response) -> str:
    """The server's own error message (OpenAI shape: {"error": {"message": ...}}), shortened."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text) or response.reason_phrase or "no body"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return _short(str(message if message else body))


def _is_probability(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


def _chunks(items: Sequence[_Input], size: int) -> list[Sequence[_Input]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _attempts(attempt: int) -> str:
    return "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = 160) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
