"""OpenAI chat requests in, safestack conversations out, and the guard's rewrite back again.

A request's messages become a `Conversation` (text parts joined; `tool` and legacy `function` turns
untrusted) and its `image_url` parts a list of `ImagePart`s, which `images.py` hashes and matches
before anything else; a message may carry safestack's `source: "retrieval"` to mark a retrieved
document, removed before forwarding. What is forwarded is the request with its messages replaced by
the guard's (spotlighted, redacted, canary planted), its images as they were hashed; every other
field goes upstream as it came.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from safestack.guard import InputDecision
from safestack.records import Conversation, Message, Role
from safestack.server.errors import bad_request

_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.DEVELOPER,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
_SOURCES = ("chat", "tool", "retrieval")
# Parts the guard can read; images are hashed and matched (images.py); anything else (audio,
# files) would pass unjudged, so it is refused.
_TEXT_PARTS = {"text": "text", "refusal": "refusal", "input_text": "text"}


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An `image_url` content part: where it is (`messages[0].content[1]`) and its URL."""

    where: str
    url: str
    message: int | None  # its message's index (None: a moderation input)
    part: int


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    stream: bool
    payload: dict[str, Any]
    conversation: Conversation
    images: list[ImagePart] = field(default_factory=list)


def parse_chat_request(payload: dict[str, Any], *, locale: str | None) -> ChatRequest:
    """Validate the fields the gateway reads; raises a 400 ApiError naming the field."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string", param="model")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise bad_request("'stream' must be true or false", param="stream")
    raw = payload.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty list", param="messages")
    images: list[ImagePart] = []
    messages = [_message(item, i, images) for i, item in enumerate(raw)]
    metadata = {"locale": locale} if locale else {}
    conversation = Conversation(messages=messages, metadata=metadata)
    return ChatRequest(model, bool(stream), payload, conversation, images)


def _message(item: Any, index: int, images: list[ImagePart]) -> Message:
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise bad_request(f"{where} must be an object with 'role' and 'content'", param=where)
    raw_role = item.get("role")
    role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
    if role is None:
        raise bad_request(
            f"{where}.role must be one of {', '.join(_ROLES)}, got {_brief(raw_role)}",
            param=f"{where}.role",
        )
    source = item.get("source")
    if source is not None and not (isinstance(source, str) and source in _SOURCES):
        raise bad_request(
            f"{where}.source must be one of {', '.join(_SOURCES)}", param=f"{where}.source"
        )
    name = item.get("name")
    return Message(
        role=role,
        content=text_of(item.get("content"), f"{where}.content", images, message=index),
        name=name if isinstance(name, str) else None,
        source=source,
    )


def text_of(
    content: Any, where: str, images: list[ImagePart], *, message: int | None = None
) -> str:
    """The text of a message's `content`: a string, null, or a list of text and image parts; the
    image parts are appended to `images`."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"{where} must be a string or a list of content parts", param=where)
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}[{index}]"
        if kind == "image_url":
            images.append(ImagePart(at, _image_url(part, at), message, index))
            continue
        key = _TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if key is None or not isinstance(part.get(key), str):
            raise bad_request(
                f"{at}: only text and image_url content parts can be guarded, got type "
                f"{_brief(kind)}; send audio and files to the model directly, not through the "
                "gateway",
                param=at,
                code="unsupported_content",
            )
        texts.append(part[key])
    return "\n".join(texts)


def _image_url(part: dict[str, Any], where: str) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise bad_request(
            f'{where}.image_url must be {{"url": "data:image/png;base64,..."}}',
            param=f"{where}.image_url",
        )
    return url


def _brief(value: Any) -> str:
    """A client's value quoted in an error message, cut short: it may be a megabyte of JSON."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def forward_payload(request: ChatRequest, decision: InputDecision) -> dict[str, Any]:
    """The request to send upstream: its fields, with the guard's messages."""
    original = request.payload["messages"]
    messages = []
    for forwarded in decision.messages:
        if forwarded.origin is None:
            message = forwarded.message
            messages.append({"role": message.role.value, "content": message.content})
            continue
        item = {k: v for k, v in original[forwarded.origin].items() if k != "source"}
        if forwarded.changes:
            item["content"] = _with_text(item.get("content"), forwarded.message.content)
        messages.append(item)
    return {**request.payload, "messages": messages}


def _with_text(content: Any, text: str) -> Any:
    """A message's content with its text replaced by the guard's, its image parts kept."""
    images = (
        [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
        if isinstance(content, list)
        else []
    )
    return [{"type": "text", "text": text}, *images] if images else text


def with_image_urls(payload: dict[str, Any], urls: dict[ImagePart, str]) -> dict[str, Any]:
    """`payload` with the image parts given a new URL (a data: URL of the bytes that were hashed,
    so the upstream sees exactly what was matched); the rest shared, not copied."""
    if not urls:
        return payload
    messages = list(payload["messages"])
    for image, url in urls.items():
        assert image.message is not None
        item = messages[image.message] = dict(messages[image.message])
        content = item["content"] = list(item["content"])
        part = content[image.part] = copy.deepcopy(content[image.part])
        if isinstance(part.get("image_url"), dict):
            part["image_url"]["url"] = url
        else:
            part["image_url"] = {"url": url}
    return {**payload, "messages": messages}
