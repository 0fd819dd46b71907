"""Safe image decoding: the only way bytes from a user become pixels in `safestack.media`.

Allowed formats only (PNG, JPEG, WebP, the first frame of a GIF), a byte limit, and a pixel limit
checked from the header before anything is decompressed; every failure is a MediaError saying why.
The limits are the caller's, per call: Pillow's process-wide `Image.MAX_IMAGE_PIXELS` is neither
read nor set (two callers with different limits in one process, as the gateway's thread pool and a
CLI command may be, do not race on it).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from safestack.errors import MediaError

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be: at most `max_bytes` long and `max_pixels` in area."""

    max_bytes: int = 20_971_520
    max_pixels: int = 50_000_000


@dataclass(frozen=True)
class DecodedImage:
    """An image's pixels (RGB) and what its header said."""

    image: Image.Image
    format: str
    width: int
    height: int


def decode_image(data: bytes, limits: ImageLimits, *, name: str = "image") -> DecodedImage:
    """Decode `data` to RGB pixels, or raise a MediaError naming `name` and what to do."""
    if len(data) > limits.max_bytes:
        raise MediaError(
            f"{name}: {len(data)} bytes is over the limit of {limits.max_bytes} "
            "(SAFESTACK_MEDIA_MAX_BYTES); send a smaller image"
        )
    if not data:
        raise MediaError(f"{name}: the file is empty")
    try:
        image = _open_header(data)
        width, height = image.size
        if width * height > limits.max_pixels:
            raise _bomb(name, width, height, limits)
        image.seek(0)  # a GIF's first frame
        image.load()
        rgb = image.convert("RGB")
    except UnidentifiedImageError:
        raise MediaError(f"{name}: {_what_it_is(data)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(
            f"{name}: the image is truncated or corrupt ({exc}); send the complete file"
        ) from None
    return DecodedImage(image=rgb, format=str(image.format), width=width, height=height)


def _bomb(name: str, width: int, height: int, limits: ImageLimits) -> MediaError:
    return MediaError(
        f"{name}: {width}x{height} pixels is over the limit of {limits.max_pixels} "
        "(SAFESTACK_MEDIA_MAX_PIXELS): refused as a possible decompression bomb"
    )


def _open_header(data: bytes) -> ImageFile.ImageFile:
    """What `Image.open(..., formats=ALLOWED_FORMATS)` does, less its bomb check against the global
    limit: the allowed formats' own parsers read the header only (nothing is decompressed), and
    `decode_image` checks the size against the caller's limit before `load()`."""
    Image.init()
    head = data[:16]
    for format in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[format]
        accepted = True if accept is None else accept(head)
        if not accepted or isinstance(accepted, str):  # a str: Pillow lacks that codec
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # Pillow's own Image.open tries the next format on these too
    raise UnidentifiedImageError("not an allowed image format")


def _what_it_is(data: bytes) -> str:
    allowed = "PNG, JPEG, WebP or GIF"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        return f"SVG is not an allowed image type (it is a program, not pixels); send {allowed}"
    try:
        found = Image.open(io.BytesIO(data)).format
    except Exception:
        found = None
    if found:
        return f"{found} is not an allowed image type; send {allowed}"
    return f"not a readable image (unknown or corrupt header); send {allowed}"
