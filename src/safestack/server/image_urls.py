"""An image part's bytes: a data: URL decoded, or an http(s) URL fetched when the deployment allows
it, within a size and a time limit, no redirects followed, and no loopback, private or link-local
address unless allowed (server-side request forgery). Every failure is a 400 `invalid_image`
naming the part. `images.py` hashes what this returns.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from safestack.server.errors import ApiError, bad_request
from safestack.server.messages import ImagePart
from safestack.settings import Settings

INVALID_IMAGE = "invalid_image"


async def load_image(
    part: ImagePart, settings: Settings, client: httpx.AsyncClient | None
) -> tuple[bytes, bool]:
    """The part's bytes, and whether they were fetched (`client` is used to fetch)."""
    url = part.url
    if url[:5].lower() == "data:":
        return decode_data_url(part, settings.media_max_bytes), False
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise _invalid(
            part,
            "the image URL must be a data: URL (data:image/png;base64,...)"
            + (" or an http(s) URL" if settings.media_fetch_urls else ""),
        )
    if not settings.media_fetch_urls or client is None:
        raise _invalid(
            part,
            "this gateway does not fetch image URLs (SAFESTACK_MEDIA_FETCH_URLS is off); send "
            "the image as a data: URL",
        )
    return await _fetch(part, settings, client), True


def decode_data_url(part: ImagePart, limit: int) -> bytes:
    header, comma, encoded = part.url.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise _invalid(part, "a data: URL image must be base64 (data:image/png;base64,...)")
    if len(encoded) * 3 // 4 > limit + 3:  # refused before decoding
        raise _invalid(part, _too_large(len(encoded) * 3 // 4, limit))
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(part, "the data: URL is not valid base64") from None


async def _fetch(part: ImagePart, settings: Settings, client: httpx.AsyncClient) -> bytes:
    shown = _shown(part.url)

    def refused(problem: str) -> ApiError:
        return _invalid(part, f"{shown} {problem}")

    limit = settings.media_max_bytes
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(settings.media_fetch_timeout):
            if not settings.media_fetch_private:
                await _check_public(part.url, refused)
            async with client.stream("GET", part.url) as response:
                if response.status_code != 200:
                    hint = " (redirects are not followed; give the final URL)"
                    raise refused(
                        f"answered HTTP {response.status_code}"
                        + (hint if response.is_redirect else "")
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise refused(_too_large(int(declared), limit))
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise refused(_too_large(size, limit))
                    chunks.append(chunk)
    except TimeoutError:
        raise refused(
            f"did not arrive within {settings.media_fetch_timeout:g} s "
            "(SAFESTACK_MEDIA_FETCH_TIMEOUT)"
        ) from None
    except httpx.HTTPError as exc:
        raise refused(f"could not be fetched ({type(exc).__name__})") from None
    return b"".join(chunks)


async def _check_public(url: str, refused: Callable[[str], ApiError]) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or reserved address
    (the cloud's metadata service, the intranet). Checked when resolved: a host that resolves
    to another address by the time of the connection (DNS rebinding) is not caught."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname or "", port, type=socket.SOCK_STREAM
        )
    except OSError:
        raise refused("could not be fetched (its host does not resolve)") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise refused(
                f"resolves to a non-public address ({address}); the gateway fetches public URLs "
                "only (SAFESTACK_MEDIA_FETCH_PRIVATE)"
            )


def _invalid(part: ImagePart, problem: str) -> ApiError:
    return bad_request(f"{part.where}: {problem}", param=part.where, code=INVALID_IMAGE)


def _too_large(size: int, limit: int) -> str:
    return (
        f"is {size:,} bytes or more, over the limit of {limit:,} (SAFESTACK_MEDIA_MAX_BYTES); "
        "send a smaller image"
    )


def _shown(url: str) -> str:
    """A URL as errors show it: no credentials, no query (signed URLs carry tokens there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
