"""POST /v1/images/generations: OpenAI's image endpoint passed through to the upstream, each image
signed with C2PA content credentials when the deployment enables it (provenance_sign_images).

The prompt is judged like a chat message (scope `chat`) and refused the same way; images come
back as `b64_json` (a URL cannot be signed, so with signing on `response_format: url` is a 400).
An image the gateway was meant to sign and could not is never sent unsigned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from safestack.errors import MediaError
from safestack.records import Conversation, Message, Role
from safestack.server.calls import Call, begin, handle, opened, read_json
from safestack.server.errors import ApiError, bad_request, json_response
from safestack.server.gateway import Gateway
from safestack.server.limits import WorkLimits
from safestack.server.openapi import BODY_ERRORS, json_content, operation
from safestack.server.verdicts import input_scores, refusal, summary
from safestack.settings import Settings

if TYPE_CHECKING:
    from safestack.media.provenance import ContentSigner

IMAGES = "/v1/images/generations"

router = APIRouter()


def image_signer(settings: Settings) -> ContentSigner | None:
    """The signer for generated images when the deployment enables it (credentials checked now,
    at start, so a wrong path fails `safestack serve` rather than a request)."""
    if not settings.provenance_sign_images:
        return None
    from safestack.media.provenance import signer_from_settings

    return signer_from_settings(settings)


@router.post(
    IMAGES,
    openapi_extra=operation(
        body="ImageGenerationRequest",
        ok=json_content("ImagesResponse"),
        errors=(*BODY_ERRORS, 404, 502, 504, "4XX"),
    ),
)
async def generations(request: Request) -> Response:
    """Generate images upstream (scope `chat`), signed with C2PA content credentials if enabled."""
    return await handle(request, IMAGES, "chat", _generate)


async def _generate(gateway: Gateway, call: Call, request: Request) -> Response:
    settings = gateway.settings
    payload = await read_json(request, call, settings.max_request_bytes, settings.body_timeout)
    prompt, model = payload.get("prompt"), payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must name the image model", param="model")
    call.model = model
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("'prompt' must be a non-empty string", param="prompt")
    signer: ContentSigner | None = request.app.state.image_signer
    if signer is not None and payload.get("response_format", "b64_json") != "b64_json":
        raise bad_request(
            "this gateway signs generated images, so it returns them as 'b64_json' only",
            param="response_format",
        )
    limits = WorkLimits.of(call.key, settings)
    await limits.charge_characters(gateway, call, len(prompt), "prompt")
    upstream, catalog = gateway.require_upstream()
    await catalog.check(call.key, model)
    loaded = await gateway.policies.get(call.key.policy if call.key is not None else None)
    call.policy = loaded.policy.ref
    call.keep_content = loaded.policy.audit.content
    begin(gateway, call)
    conversation = Conversation(messages=[Message(role=Role.USER, content=prompt)])
    decision = await loaded.guard.acheck_input(conversation)
    call.act(decision.action, decision.flagged_categories, input_scores(decision))
    await opened(gateway, call)
    if not decision.forward:  # an election redirect is text, not an image: refused too
        raise refusal(call, decision)
    user = next((m for m in decision.messages if m.origin == 0 and m.changes), None)
    body = {**payload, "prompt": user.message.content if user is not None else prompt}
    if signer is not None:
        body.setdefault("response_format", "b64_json")
    started = time.perf_counter()
    result = await upstream.generate_images(body)
    gateway.metrics.upstream_latency.observe(time.perf_counter() - started)
    images = result.get("data")
    if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
        raise _bad_upstream("answered without a 'data' list of images")
    kept = [await _sign(signer, image, model, index) for index, image in enumerate(images)]
    call.output = "\n".join(k["sha256"] for k in kept if "sha256" in k)
    call.response_content = kept  # digests, not the images
    return json_response(
        {**result, "safestack": {**summary(call, list(decision.reasons)), "images": kept}}
    )


async def _sign(
    signer: ContentSigner | None, image: dict[str, Any], model: str, index: int
) -> dict[str, Any]:
    """Sign one returned image in place; what the audit keeps of it."""
    encoded = image.get("b64_json")
    if not isinstance(encoded, str):
        if signer is not None:
            raise _bad_upstream(f"data[{index}] has no 'b64_json' image to sign")
        return {"index": index, "signed": False}
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_upstream(f"data[{index}].b64_json is not base64") from None
    if signer is not None:
        from safestack.media.provenance import image_format

        if image_format(data) is None:
            raise _bad_upstream(f"data[{index}] is not a PNG, JPEG, WebP or GIF image")
        try:
            data = await asyncio.to_thread(signer.sign_image, data, model)
        except MediaError as exc:
            raise ApiError(
                503,
                f"the image could not be signed, so it is not returned: {exc}",
                type="service_unavailable",
                code="provenance_unavailable",
            ) from None
        image["b64_json"] = base64.b64encode(data).decode("ascii")
    return {
        "index": index,
        "signed": signer is not None,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _bad_upstream(what: str) -> ApiError:
    return ApiError(
        502, f"the upstream {what}", type="upstream_error", code="upstream_bad_response"
    )
