"""Safe image decoding: the only way bytes from a user become pixels in `safestack.media`.

Allowed formats only (PNG, JPEG, WebP, the first frame of a GIF), a byte limit, and a pixel limit
checked from the header before anything is decompressed; every failure is a MediaError saying why.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from safestack.errors import MediaError

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
# Images past the pixel limit are refused below before they are decoded, so Pillow's warning about
# them (between the limit and twice it) is noise. A filter, not catch_warnings(): that is not
# thread-safe, and the gateway decodes in a thread pool.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


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
    # Pillow's own bomb check reads this global; the explicit check below gives the clear message.
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        width, height = image.size
        if width * height > limits.max_pixels:
            raise _bomb(name, width, height, limits)
        image.seek(0)  # a GIF's first frame
        image.load()
        rgb = image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(name, *_header_size(data), limits) from None
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


def _header_size(data: bytes) -> tuple[int, int]:
    """The size the header claims, read by the format's own parser without Pillow's bomb check."""
    Image.init()
    for format in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[format]
        try:
            if accept is None or accept(data[:16]):
                return factory(io.BytesIO(data), "").size
        except Exception:  # only for the message: the image is refused either way
            continue
    return (0, 0)


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
