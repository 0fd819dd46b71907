"""C2PA content credentials on chat answers, when the deployment asks (provenance_sign_text).

Each non-streamed answer the guard let through gets a C2PA text manifest appended (invisible
variation selectors, docs/media.md "Provenance"); answers the guard replaced are not the model's
and are left unsigned. Streamed answers are not signed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from safestack.errors import MediaError
from safestack.server.errors import ApiError
from safestack.settings import Settings

if TYPE_CHECKING:
    from safestack.media.provenance import ContentSigner


def text_signer(settings: Settings) -> ContentSigner | None:
    """The signer for chat answers when the deployment enables it (credentials checked at start)."""
    if not settings.provenance_sign_text:
        return None
    from safestack.media.provenance import signer_from_settings

    return signer_from_settings(settings)


async def sign_answers(request: Request, completion: dict[str, Any], model: str) -> int:
    """Embed a text manifest in each choice's content, in place; how many were signed."""
    signer: ContentSigner | None = getattr(request.app.state, "text_signer", None)
    if signer is None:
        return 0
    from safestack.media.provenance import sign_text

    signed = 0
    choices = completion.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or choice.get("finish_reason") == "content_filter":
            continue
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            continue
        try:
            message["content"] = await asyncio.to_thread(sign_text, signer, content, model)
        except MediaError as exc:
            raise ApiError(
                503,
                f"the answer could not be signed, so it is not returned: {exc}",
                type="service_unavailable",
                code="provenance_unavailable",
            ) from None
        signed += 1
    return signed
