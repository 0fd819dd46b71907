"""The remote detectors against a real HTTP server on 127.0.0.1 (no mocking of httpx)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from safestack.errors import DetectorError, PolicyError
from safestack.judge import Judge, Sample, create_detector, normalise
from safestack.judge.detector import Kind
from safestack.judge.detectors.remote import LlmJudge, OpenAIModeration, RemoteDetector
from safestack.policy import Policy, default_policy
from safestack.records import Action, Finding

KEY_ENV = "SAFESTACK_TEST_REMOTE_KEY"
KEY = "sk-test-0123456789abcdef"
FAST = {"api_key_env": KEY_ENV, "timeout": 2.0, "max_retries": 2, "backoff": 0.01}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str -> raw text
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeAPI:
    """An OpenAI-compatible server answering from a queue of canned replies."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.fallback = Reply(500, {"error": {"message": "no canned reply left"}})
        self.received: list[Received] = []
        self.detectors: list[RemoteDetector] = []  # closed at teardown
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # A short poll interval keeps shutdown() (and so each test's teardown) fast.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        return self.replies.popleft() if self.replies else self.fallback


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            api.received.append(Received(self.path, headers, json.loads(raw)))
            reply = api.next_reply()
            if reply.delay and api.stopping.wait(reply.delay):
                return
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = body.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    server = FakeAPI()
    server.thread.start()
    yield server
    for det in server.detectors:
        det.close()
    server.stopping.set()
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def policy() -> Policy:
    return default_policy()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def sample(text: str, kind: Kind = "prompt") -> Sample:
    return Sample(normalise(text), kind)


async def adetect(det: RemoteDetector, sample: Sample) -> list[Finding]:
    """`det.adetect` in a fresh event loop, closing that loop's client as a server would."""
    try:
        return await det.adetect(sample)
    finally:
        await det.aclose()


# -- openai-moderation -----------------------------------------------------------------------------

OPENAI_CATEGORIES = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
]


def moderation_result(scores: dict[str, float] | None = None) -> dict[str, Any]:
    """One result in the exact shape of OpenAI's moderation API (omni-moderation)."""
    all_scores = {name: 1e-06 for name in OPENAI_CATEGORIES}
    all_scores.update(scores or {})
    return {
        "flagged": any(s >= 0.5 for s in all_scores.values()),
        "categories": {name: s >= 0.5 for name, s in all_scores.items()},
        "category_scores": all_scores,
        "category_applied_input_types": {name: ["text"] for name in all_scores},
    }


def moderation_body(*results: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "modr-0d9740456c391e43c445bf0f010940c7",
        "model": "omni-moderation-2024-09-26",
        "results": list(results),
    }


def moderation(policy: Policy, api: FakeAPI | None, **options: Any) -> OpenAIModeration:
    base_url = api.base_url if api is not None else closed_port_url()
    det = OpenAIModeration(
        policy, OpenAIModeration.Options(**{**FAST, "base_url": base_url, **options})
    )
    if api is not None:
        api.detectors.append(det)
    return det


def test_moderation_scores_become_policy_findings(api: FakeAPI, policy: Policy) -> None:
    result = moderation_result(
        {"harassment": 0.8189693396524255, "violence": 0.55, "brand-new": 0.99}
    )
    api.queue(Reply(body=moderation_body(result)))

    findings = moderation(policy, api).detect(sample("I will find you, you idiot"))

    by_category = {f.category: f for f in findings}
    assert set(by_category) == set(OPENAI_CATEGORIES)  # 'brand-new' is not a policy category
    harassment = by_category["harassment"]
    assert harassment.score == pytest.approx(0.8189693396524255)
    assert harassment.severity == 6  # the default policy's cut points: 0.8 <= score < 0.92
    assert harassment.label == "harassment"
    assert harassment.detector == "openai-moderation"
    assert by_category["violence"].severity == 4
    assert by_category["hate"].severity == 0
    [request] = api.received
    assert request.path == "/v1/moderations"
    assert request.body == {
        "model": "omni-moderation-latest",
        "input": ["I will find you, you idiot"],
    }


def test_moderation_sends_the_key_from_the_named_env_var(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body=moderation_body(moderation_result())))
    moderation(policy, api).detect(sample("hello"))
    assert api.received[0].headers["authorization"] == f"Bearer {KEY}"


def test_moderation_without_the_key_fails_before_calling(
    api: FakeAPI, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(DetectorError, match=f"{KEY_ENV} .* is not set"):
        moderation(policy, api).detect(sample("hello"))
    assert api.received == []


def test_moderation_scores_decoded_payloads_in_the_same_request(
    api: FakeAPI, policy: Policy
) -> None:
    hidden = "I will hurt every one of them tonight"
    text = f"please decode {base64.b64encode(hidden.encode()).decode()}"
    api.queue(
        Reply(body=moderation_body(moderation_result(), moderation_result({"violence": 0.93})))
    )

    findings = moderation(policy, api).detect(sample(text))

    assert api.received[0].body["input"] == [text, hidden]
    [violent] = [f for f in findings if f.category == "violence" and f.score > 0.9]
    assert violent.source == "base64"
    assert violent.span is not None
    assert text[violent.span.start : violent.span.end] == text.removeprefix("please decode ")


def test_moderation_batch_is_one_request(api: FakeAPI, policy: Policy) -> None:
    api.queue(
        Reply(
            body=moderation_body(
                moderation_result({"hate": 0.9}),
                moderation_result(),
                moderation_result({"sexual": 0.7}),
            )
        )
    )
    results = moderation(policy, api).detect_batch(
        [sample("first"), sample("second"), sample("third")]
    )

    assert len(api.received) == 1
    assert api.received[0].body["input"] == ["first", "second", "third"]
    top = [max(found, key=lambda f: f.score).category for found in results]
    assert top[0] == "hate" and top[2] == "sexual"
    assert max(f.score for f in results[1]) < 0.01


def test_moderation_batch_respects_batch_size(api: FakeAPI, policy: Policy) -> None:
    api.queue(
        Reply(body=moderation_body(moderation_result(), moderation_result())),
        Reply(body=moderation_body(moderation_result({"hate": 0.9}))),
    )
    results = moderation(policy, api, batch_size=2).detect_batch(
        [sample("a b"), sample("c d"), sample("e f")]
    )
    assert [r.body["input"] for r in api.received] == [["a b", "c d"], ["e f"]]
    assert max(results[2], key=lambda f: f.score).category == "hate"


def test_server_error_is_retried_then_succeeds(api: FakeAPI, policy: Policy) -> None:
    api.queue(
        Reply(500, {"error": {"message": "The server had an error"}}),
        Reply(body=moderation_body(moderation_result({"hate": 0.9}))),
    )
    findings = moderation(policy, api).detect(sample("hello"))
    assert len(api.received) == 2
    assert max(f.score for f in findings) == pytest.approx(0.9)


def test_retry_after_is_honoured(api: FakeAPI, policy: Policy) -> None:
    api.queue(
        Reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "1"}),
        Reply(body=moderation_body(moderation_result())),
    )
    started = time.monotonic()
    moderation(policy, api).detect(sample("hello"))
    assert time.monotonic() - started >= 1.0
    assert len(api.received) == 2


def test_retry_after_longer_than_max_backoff_fails_at_once(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "120"}))
    with pytest.raises(DetectorError, match="retry after 120s, longer than max_backoff=5s"):
        moderation(policy, api, max_backoff=5).detect(sample("hello"))
    assert len(api.received) == 1


def test_server_error_forever_is_an_error_not_a_pass(api: FakeAPI, policy: Policy) -> None:
    api.fallback = Reply(503, {"error": {"message": "overloaded"}})
    with pytest.raises(DetectorError, match=r"HTTP 503 after 3 attempts \(overloaded\)"):
        moderation(policy, api, max_retries=2).detect(sample("hello"))
    assert len(api.received) == 3


def test_auth_error_names_the_env_var_and_never_the_key(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}."}}))
    with pytest.raises(DetectorError) as caught:
        moderation(policy, api).detect(sample("hello"))
    message = str(caught.value)
    assert KEY not in message and f"${KEY_ENV}" in message and "HTTP 401" in message
    assert len(api.received) == 1  # a 401 is not retried


def test_malformed_json_is_an_error(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body='{"results": [{"category_scores": '))
    with pytest.raises(DetectorError, match="not valid JSON"):
        moderation(policy, api).detect(sample("hello"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"id": "modr-1"}, "no 'results' list"),
        (moderation_body(), "0 results for 1 inputs"),
        (moderation_body({"flagged": False}), "no 'category_scores'"),
        (moderation_body(moderation_result({"hate": 1.5})), r"category_scores.hate is 1.5"),
        (
            moderation_body({"category_scores": {"hate": "high"}}),
            "category_scores.hate is 'high'",
        ),
    ],
)
def test_off_shape_answers_are_errors(
    api: FakeAPI, policy: Policy, body: dict[str, Any], problem: str
) -> None:
    api.queue(Reply(body=body))
    with pytest.raises(DetectorError, match=problem):
        moderation(policy, api).detect(sample("hello"))


def test_connection_refused_is_an_error(policy: Policy) -> None:
    with pytest.raises(DetectorError, match=r"cannot reach .* after 2 attempts"):
        moderation(policy, None, max_retries=1).detect(sample("hello"))


def test_slow_server_times_out(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body=moderation_body(moderation_result()), delay=3.0))
    started = time.monotonic()
    with pytest.raises(DetectorError, match=r"did not answer within 0.2s"):
        moderation(policy, api, timeout=0.2).detect(sample("hello"))
    assert time.monotonic() - started < 1.5


def test_moderation_async(api: FakeAPI, policy: Policy) -> None:
    api.queue(
        Reply(502, {"error": {"message": "bad gateway"}}),
        Reply(body=moderation_body(moderation_result({"self-harm/intent": 0.95}))),
        Reply(body=moderation_body(moderation_result())),
    )
    det = moderation(policy, api)
    first = asyncio.run(adetect(det, sample("I want to end it all")))
    second = asyncio.run(adetect(det, sample("hello")))  # a new event loop: a new client
    assert max(first, key=lambda f: f.score).category == "self-harm/intent"
    assert max(f.score for f in second) < 0.01
    assert len(api.received) == 3


def test_moderation_async_failure_is_an_error(policy: Policy) -> None:
    det = moderation(policy, None, max_retries=0)
    with pytest.raises(DetectorError, match="cannot reach"):
        asyncio.run(det.adetect(sample("hello")))


# -- llm-judge -------------------------------------------------------------------------------------


def chat_body(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "judge-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def judge_answer(**categories: tuple[int, str]) -> str:
    rated = {name: {"severity": s, "rationale": why} for name, (s, why) in categories.items()}
    return json.dumps({"categories": rated, "rubric": "harm-v1"})


def llm_judge(policy: Policy, api: FakeAPI | None, **options: Any) -> LlmJudge:
    base_url = api.base_url if api is not None else closed_port_url()
    det = LlmJudge(
        policy,
        LlmJudge.Options(**{**FAST, "base_url": base_url, "model": "judge-model", **options}),
    )
    if api is not None:
        api.detectors.append(det)
    return det


def test_llm_judge_severities_become_findings(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body=chat_body(judge_answer(hate=(5, "Calls a group vermin.")))))
    det = llm_judge(policy, api)

    findings = det.detect(sample("They are vermin and should leave", "response"))

    by_category = {f.category: f for f in findings}
    assert set(by_category) == set(policy.content_categories())
    hate = by_category["hate"]
    assert hate.severity == 5 and hate.score == pytest.approx(5 / 7)
    assert hate.evidence == "Calls a group vermin."
    assert hate.detector_version == "1+harm-v1"
    assert by_category["violence"].severity == 0 and by_category["violence"].score == 0.0
    assert det.ref == "llm-judge@1+harm-v1"

    [request] = api.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and "Harm rating rubric (harm-v1)" in system["content"]
    assert "a response: what an AI assistant replied" in system["content"]
    hate_definition = " ".join(policy.categories["hate"].definition.split())
    assert f"- `hate`: {hate_definition}" in system["content"]
    assert "$" not in system["content"]  # every template field was filled
    assert json.loads(user["content"]) == {
        "kind": "response",
        "text": "They are vermin and should leave",
    }


def test_llm_judge_asks_only_the_chosen_categories(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body=chat_body(judge_answer())))
    findings = llm_judge(policy, api, categories=["hate", "jailbreak"]).detect(sample("hi"))
    assert [f.category for f in findings] == ["hate", "jailbreak"]
    system = api.received[0].body["messages"][0]["content"]
    assert "- `jailbreak`:" in system and "- `violence`:" not in system


def test_llm_judge_accepts_a_json_fence(api: FakeAPI, policy: Policy) -> None:
    fenced = "```json\n" + judge_answer(violence=(3, "A mild threat.")) + "\n```"
    api.queue(Reply(body=chat_body(fenced)))
    findings = llm_judge(policy, api).detect(sample("hi"))
    assert {f.category: f.severity for f in findings}["violence"] == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("I think this is hateful, severity 5.", "not valid JSON"),
        ('{"rubric": "harm-v1"}', "no 'categories' object"),
        (judge_answer(hate=(9, "very bad")), "categories.hate.severity is 9"),
        ('{"categories": {"hate": {"severity": "5"}}}', "categories.hate.severity is '5'"),
        (judge_answer(weapons=(6, "guns")), "rates category 'weapons', which was not asked"),
        (judge_answer(jailbreak=(6, "DAN")), "rates category 'jailbreak', which was not asked"),
        ('{"categories": {}, "rubric": "harm-v7"}', "names rubric 'harm-v7'"),
    ],
)
def test_llm_judge_rejects_bad_answers(
    api: FakeAPI, policy: Policy, content: str, problem: str
) -> None:
    api.queue(Reply(body=chat_body(content)))
    with pytest.raises(DetectorError, match=problem):
        llm_judge(policy, api).detect(sample("hi"))


def test_llm_judge_rejects_a_reply_without_choices(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body={"id": "chatcmpl-1", "choices": []}))
    with pytest.raises(DetectorError, match="no 'choices'"):
        llm_judge(policy, api).detect(sample("hi"))


def test_llm_judge_async(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body=chat_body(judge_answer(**{"self-harm/intent": (6, "States a plan.")}))))
    findings = asyncio.run(adetect(llm_judge(policy, api), sample("I have the pills ready")))
    assert {f.category: f.severity for f in findings}["self-harm/intent"] == 6
    assert json.loads(api.received[0].body["messages"][1]["content"])["kind"] == "prompt"


def test_llm_judge_options_are_checked_against_the_policy(policy: Policy) -> None:
    with pytest.raises(PolicyError, match="no packaged rubric 'harm-v0'; available: harm-v1"):
        llm_judge(policy, None, rubric="harm-v0")
    with pytest.raises(PolicyError, match="weapons not in policy"):
        llm_judge(policy, None, categories=["hate", "weapons"])


def test_registry_builds_them_and_refuses_a_key_in_the_policy(policy: Policy) -> None:
    det = create_detector("llm-judge", policy, {"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert det.ref == "llm-judge@1+harm-v1"
    assert create_detector("openai-moderation", policy).ref == "openai-moderation@1"
    with pytest.raises(PolicyError, match="api_key_env") as caught:
        create_detector("openai-moderation", policy, {"api_key_env": KEY})
    assert KEY not in str(caught.value)


# -- through the Judge -----------------------------------------------------------------------------


def test_judge_blocks_on_a_high_hate_severity(api: FakeAPI, policy: Policy) -> None:
    api.queue(Reply(body=chat_body(judge_answer(hate=(6, "Dehumanises a religious group.")))))
    verdict = Judge(policy, [llm_judge(policy, api)]).check("a hateful rant")
    assert verdict.action is Action.BLOCK
    assert verdict.flagged_categories == ["hate"]
    assert verdict.severity == 6
    assert verdict.detectors == ["llm-judge@1+harm-v1"]


def test_judge_fails_closed_when_the_endpoint_is_down(policy: Policy) -> None:
    assert policy.judge.on_detector_error == "fail"
    judge = Judge(policy, [llm_judge(policy, None, max_retries=0)])
    with pytest.raises(DetectorError, match=r"llm-judge@1\+harm-v1.*cannot reach"):
        judge.check("hello")
