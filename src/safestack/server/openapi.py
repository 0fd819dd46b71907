"""The gateway's OpenAPI document (`GET /openapi.json`): what each route accepts and answers.

The routes read raw bodies and validate them themselves (strict JSON in calls.py, the fields the
gateway reads in messages.py), so the models here describe that parsing rather than drive it.
Each route declares its operation with `operation(...)` next to its code; `openapi_document()`
adds the models as components. tests/server/test_openapi.py fuzzes the running gateway against
this document (schemathesis), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from safestack import __version__
from safestack.guard import Reason, StreamEnd
from safestack.records import Action, AuditEvent, DetectorFailure, Finding

_REF = "#/components/schemas/{model}"
_OPEN = ConfigDict(extra="allow")  # fields the gateway does not read pass through untouched


# -- requests ------------------------------------------------------------------------------------
class TextPart(BaseModel):
    """A text content part; text and images are judged, any other part type is refused (400)."""

    model_config = _OPEN
    type: Literal["text", "input_text"]
    text: str


class RefusalPart(BaseModel):
    model_config = _OPEN
    type: Literal["refusal"]
    refusal: str


class ImageUrl(BaseModel):
    model_config = _OPEN
    url: str = Field(
        min_length=1,
        description="A data: URL (data:image/png;base64,...); an http(s) URL only when the "
        "gateway fetches images (SAFESTACK_MEDIA_FETCH_URLS). PNG, JPEG, WebP or GIF.",
    )


class ImagePart(BaseModel):
    """An image, hashed and matched against the hash banks before anything else: a match is a
    400 `media_match`; an image that cannot be hashed a 400 `invalid_image` naming the part."""

    model_config = _OPEN
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = TextPart | RefusalPart | ImagePart


class ChatMessage(BaseModel):
    """One message; `tool`/`function` turns (and `source: retrieval`) are judged as untrusted."""

    model_config = _OPEN
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    source: Literal["chat", "tool", "retrieval"] | None = Field(
        default=None,
        description="safestack's: marks a retrieved document or tool output passed as a user "
        "message, judged and spotlighted as untrusted; removed before forwarding.",
    )


# The end user a request is for (docs/monitor-enforcement.md): hashed before it is kept.
EndUserId = Annotated[str | None, Field(max_length=256)]
_END_USER = (
    "Who the request is for (an app's user id; better a hash of it). The gateway keeps only its "
    "HMAC-SHA256 (`end_user` in audit events) and enforces that end user's measures: 403 "
    "account_suspended, 429 when throttled. `safety_identifier` wins over `user`."
)


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request. The gateway reads `model`, `messages` and `stream`; every other
    field (temperature, tools, ...) goes upstream as sent."""

    model_config = _OPEN
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="At most the key's message limit (SAFESTACK_MAX_MESSAGES, 256) and its "
        "character limit over all contents (SAFESTACK_MAX_CHARS, 100,000); more is a 400.",
    )
    stream: bool | None = False
    safety_identifier: EndUserId = Field(default=None, description=_END_USER)
    user: EndUserId = Field(default=None, description="Legacy: " + _END_USER)


# Text to judge: empty or blank text is refused (400), there being nothing to judge.
Judged = Annotated[str, Field(pattern=r"\S")]


class ModerationRequest(BaseModel):
    """OpenAI's moderation request: one result per string, or one for a list of content parts."""

    model_config = _OPEN
    input: (
        Judged
        | Annotated[list[Judged], Field(min_length=1)]
        | Annotated[list[ContentPart], Field(min_length=1)]
    ) = Field(
        description="At most the key's input limit (SAFESTACK_MAX_INPUTS, 256) strings and its "
        "character limit (SAFESTACK_MAX_CHARS, 100,000); empty text is a 400."
    )
    model: Any = Field(default=None, description="Echoed in the audit log; not used to judge.")
    safety_identifier: EndUserId = Field(default=None, description=_END_USER)
    user: EndUserId = Field(default=None, description="Legacy: " + _END_USER)


class ImageGenerationRequest(BaseModel):
    """OpenAI's image request; the prompt is judged like a chat message, the rest goes upstream."""

    model_config = _OPEN
    model: str = Field(min_length=1)
    prompt: Judged
    response_format: Literal["b64_json", "url"] | None = Field(
        default=None,
        description="With signing on (SAFESTACK_PROVENANCE_SIGN_IMAGES) only b64_json: a URL's "
        "image cannot be signed.",
    )


# -- answers -------------------------------------------------------------------------------------
class ErrorObject(BaseModel):
    message: str
    type: str = Field(description="e.g. invalid_request_error, policy_violation, server_error")
    param: str | None = Field(description="The field at fault, when one is.")
    code: str | None = Field(description="e.g. invalid_json, blocked:prompt-injection")


class VerdictSummary(BaseModel):
    """The guard's verdict on a request, under `safestack` in answers and refusals."""

    request_id: str
    policy: str | None
    action: Action | None
    categories: list[str]
    reasons: list[Reason]


class ErrorResponse(BaseModel):
    """OpenAI's error shape; a request the guard refused also carries the verdict."""

    error: ErrorObject
    safestack: VerdictSummary | None = None


class AssistantMessage(BaseModel):
    model_config = _OPEN
    role: str
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(BaseModel):
    model_config = _OPEN
    index: int
    message: AssistantMessage
    finish_reason: str | None


class ChatCompletion(BaseModel):
    """The upstream's completion, its choices checked by the guard, with the verdict added."""

    model_config = _OPEN
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    safestack: VerdictSummary


class ChunkChoice(BaseModel):
    model_config = _OPEN
    index: int
    delta: dict[str, Any]
    finish_reason: str | None = None


class StreamSummary(VerdictSummary):
    choices: list[StreamEnd] = Field(description="How each choice's stream ended.")


class ChatCompletionChunk(BaseModel):
    """One streamed event; the last one has `choices: []` and the verdict under `safestack`."""

    model_config = _OPEN
    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    safestack: StreamSummary | None = None


class StreamError(BaseModel):
    """The event that ends a stream that failed after its 200 status line had left."""

    error: ErrorObject


class ModerationDetail(BaseModel):
    """safestack's fields of one moderation result: the Verdict's evidence."""

    schema_version: int
    action: Action
    severity: int
    flagged_categories: list[str]
    category_scores: dict[str, float]
    category_severities: dict[str, int]
    findings: list[Finding]
    normalisations: list[str]
    failures: list[DetectorFailure]
    policy: str
    detectors: list[str]


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]
    safestack: ModerationDetail


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]


class GeneratedImage(BaseModel):
    model_config = _OPEN
    b64_json: str | None = Field(
        default=None, description="The image, with C2PA content credentials when signing is on."
    )
    url: str | None = None


class ImageRecord(BaseModel):
    index: int
    signed: bool
    sha256: str | None = Field(default=None, description="Of the image as returned (signed).")


class ImageSummary(VerdictSummary):
    images: list[ImageRecord]


class ImagesResponse(BaseModel):
    """The upstream's images, each signed when the deployment signs, with the verdict added."""

    model_config = _OPEN
    created: int
    data: list[GeneratedImage]
    safestack: ImageSummary


class ModelCard(BaseModel):
    model_config = _OPEN
    id: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class AuditEventList(BaseModel):
    object: Literal["list"]
    data: list[AuditEvent]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="store, rate_limiter, upstream: 'ok' or the error.")


_REQUESTS: list[type[BaseModel]] = [
    ChatCompletionRequest,
    ModerationRequest,
    ImageGenerationRequest,
]
_ANSWERS: list[type[BaseModel]] = [
    ErrorResponse,
    ChatCompletion,
    ChatCompletionChunk,
    StreamError,
    ModerationResponse,
    ImagesResponse,
    ModelList,
    AuditEventList,
    Health,
    Readiness,
]

# -- operations ----------------------------------------------------------------------------------
_ERRORS: dict[int | str, str] = {
    400: "Malformed body or fields, a request over a limit (code request_limit_exceeded), an "
    "image that cannot be hashed (invalid_image), refused by the guard (type policy_violation, "
    "code blocked:<category>), or an image matching a hash bank (policy_violation, media_match).",
    401: "No API key, or an unknown or revoked one (invalid_api_key).",
    403: "The key lacks this endpoint's scope (insufficient_scope), or the key or the end user "
    "is suspended (account_suspended: the reason and an appeal reference, also in "
    "x-safestack-appeal).",
    404: "Unknown model, or one the key may not use (model_not_found).",
    408: "The request body did not arrive in time.",
    413: "The body is over SAFESTACK_MAX_REQUEST_BYTES (request_too_large).",
    429: "The key's requests or characters per minute are spent, or the key or end user is "
    "throttled by an enforcement decision (rate_limit_exceeded; Retry-After).",
    500: "A bug (internal_error, with the request id) or a key's policy that does not load "
    "(policy_error).",
    502: "The upstream is down, failed or answered nonsense.",
    503: "Not configured or a dependency failed, fail closed: no_upstream, detector_error, "
    "audit_unavailable, store_unavailable, rate_limiter_unavailable, provenance_unavailable "
    "(an image that could not be signed is not returned).",
    504: "The upstream did not answer within SAFESTACK_UPSTREAM_TIMEOUT.",
    "4XX": "The upstream refused the request: its status and error, in the same shape.",
}
BODY_ERRORS = (400, 401, 403, 408, 413, 429, 500, 503)
KEY_ERRORS = (400, 401, 403, 429, 500, 503)  # 400: also uvicorn's for an unparseable request


def ref(model: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=model)}


def json_content(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": ref(model)}}


def operation(
    *,
    ok: dict[str, Any],
    errors: tuple[int | str, ...] = (),
    body: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    secured: bool = True,
    extra: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A route's `openapi_extra`: its body, its 200 content, and its errors in OpenAI's shape."""
    responses: dict[str, Any] = {"200": {"description": "Success", "content": ok}}
    for status in sorted(errors, key=str):
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": json_content("ErrorResponse"),
        }
    for status, response in (extra or {}).items():
        responses[str(status)] = response
    spec: dict[str, Any] = {"responses": responses}
    if body is not None:
        spec["requestBody"] = {"required": True, "content": json_content(body)}
    if parameters:
        spec["parameters"] = parameters
    spec["security"] = [{"bearerAuth": []}] if secured else []
    return spec


def event_stream(*events: str) -> dict[str, Any]:
    """Server-sent events whose `data` is one of `events` (JSON), or the closing `[DONE]`;
    `itemSchema` as FastAPI writes it for its own event streams."""
    return {
        "itemSchema": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "anyOf": [
                        {"const": "[DONE]"},
                        {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"anyOf": [ref(event) for event in events]},
                        },
                    ]
                }
            },
        },
    }


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The whole document: FastAPI's paths (each route's `openapi_extra`) plus the models."""
    document = get_openapi(
        title=app.title,
        version=__version__,
        description=app.description,
        routes=app.routes,
    )
    _, requests = models_json_schema([(m, "validation") for m in _REQUESTS], ref_template=_REF)
    _, answers = models_json_schema([(m, "serialization") for m in _ANSWERS], ref_template=_REF)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(requests.get("$defs", {}))
    schemas.update(answers.get("$defs", {}))
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "A key made with `safestack keys create`.",
        }
    }
    return document
