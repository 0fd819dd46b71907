"""GET /v1/models: the upstream's models, limited to those the key may use."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from safestack.server.calls import Call, handle
from safestack.server.errors import json_response
from safestack.server.gateway import Gateway
from safestack.server.openapi import KEY_ERRORS, json_content, operation

MODELS = "/v1/models"

router = APIRouter()


@router.get(
    MODELS,
    openapi_extra=operation(ok=json_content("ModelList"), errors=(*KEY_ERRORS, 502, 503, 504)),
)
async def list_models(request: Request) -> Response:
    """The upstream's models this key may use (scope `chat`)."""
    return await handle(request, MODELS, "chat", _list)


async def _list(gateway: Gateway, call: Call, request: Request) -> Response:
    _, catalog = gateway.require_upstream()
    models = await catalog.visible(call.key)
    call.response_content = [m["id"] for m in models]
    call.output = "\n".join(m["id"] for m in models)
    return json_response({"object": "list", "data": models})
