"""POST /v1/moderations in OpenAI's shape, judged by the key's policy (built-in models by default).

`input` is a string, a list of strings (one result each) or a list of content parts, text and
images (one result for them all, as OpenAI's); images are hashed and matched first, as in chat (a
match is a 400 `media_match` and a case), then judged by the policy's image detectors.
`category_scores` are the calibrated scores of the policy's detectors, and each result carries
safestack's own fields (action, severity, findings, ...) under `safestack`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from safestack.errors import DetectorError, InputError
from safestack.judge import Judge, Sample
from safestack.judge.judge import combine_findings
from safestack.judge.moderation import moderation_response
from safestack.records import Verdict
from safestack.server.calls import Call, handle, read_json
from safestack.server.enforcement import enforce_end_user
from safestack.server.errors import ApiError, bad_request, json_response
from safestack.server.gateway import Gateway
from safestack.server.limits import WorkLimits
from safestack.server.messages import ImagePart, text_of
from safestack.server.openapi import BODY_ERRORS, json_content, operation

MODERATIONS = "/v1/moderations"

router = APIRouter()


@router.post(
    MODERATIONS,
    openapi_extra=operation(
        body="ModerationRequest", ok=json_content("ModerationResponse"), errors=BODY_ERRORS
    ),
)
async def moderations(request: Request) -> Response:
    """Judge text with the key's policy (scope `moderate`), in OpenAI's moderation shape."""
    return await handle(request, MODERATIONS, "moderate", _moderate)


async def _moderate(gateway: Gateway, call: Call, request: Request) -> Response:
    settings = gateway.settings
    payload = await read_json(request, call, settings.max_request_bytes, settings.body_timeout)
    model = payload.get("model")
    call.model = model if isinstance(model, str) else None
    await enforce_end_user(gateway, call, payload)  # who it is for, and their measures
    parts: list[ImagePart] = []
    texts = _inputs(payload.get("input"), parts)
    images = await gateway.media.screen_parts(
        parts, call=call, request=request, store=gateway.store, calls=gateway.calls
    )
    limits = WorkLimits.of(call.key, gateway.settings)
    limits.check_inputs(len(texts))
    await limits.charge_characters(gateway, call, sum(len(t) for t in texts), "input")
    loaded = await gateway.policies.get(call.key.policy if call.key is not None else None)
    call.policy = loaded.policy.ref
    call.keep_content = loaded.policy.audit.content
    # Content parts with images but no text: the images alone are judged.
    judged = [t for t in texts if t.strip()] if images else texts
    samples = [_sample(loaded.judge, text, i, len(judged)) for i, text in enumerate(judged)]
    started = time.perf_counter()
    verdicts = await asyncio.to_thread(_judge, loaded.judge, samples) if samples else []
    image_verdicts = await gateway.media.judge(loaded, images)
    gateway.metrics.guard_latency.labels("moderation").observe(time.perf_counter() - started)
    if images:  # one result for the content parts, text and images together
        verdicts = [_together(loaded.judge, verdicts + image_verdicts)]
    for verdict in verdicts:
        call.act(verdict.action, verdict.flagged_categories, verdict.category_scores)
    body = moderation_response(verdicts, loaded.policy)
    call.output = json.dumps(body["results"], ensure_ascii=False, sort_keys=True)
    call.response_content = body["results"]
    return json_response(body)


def _inputs(raw: Any, images: list[ImagePart]) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        return list(raw)
    if isinstance(raw, list) and raw and all(isinstance(item, dict) for item in raw):
        return [text_of(raw, "input", images)]
    raise bad_request(
        "'input' must be a string, a non-empty list of strings, or a list of content parts "
        '([{"type": "text", "text": "..."}, {"type": "image_url", "image_url": {"url": ...}}])',
        param="input",
    )


def _together(judge: Judge, verdicts: list[Verdict]) -> Verdict:
    """One verdict from the text's and the images' (all findings combined by the policy)."""
    return combine_findings(
        judge.policy,
        [f for v in verdicts for f in v.findings],
        [f for v in verdicts for f in v.failures],
        normalisations=sorted({n for v in verdicts for n in v.normalisations}),
        detectors=list(dict.fromkeys(d for v in verdicts for d in v.detectors)),
    )


def _sample(judge: Judge, text: str, index: int, count: int) -> Sample:
    field = "input" if count == 1 else f"input[{index}]"
    try:
        return judge.prepare(text, "prompt", field=field)
    except InputError as exc:
        raise bad_request(str(exc), param=field) from None


def _judge(judge: Judge, samples: list[Sample]) -> list[Verdict]:
    try:
        return judge.check_batch(samples)
    except DetectorError as exc:  # on_detector_error: fail -- an error, never "not flagged"
        raise ApiError(
            503,
            f"{exc}; the input could not be judged (fail closed), retry later",
            type="service_unavailable",
            code="detector_error",
        ) from None
