"""Generated test images (never real photos, never abusive material) and the edits users make.

`generated_image(seed)` draws a smooth random background, random shapes and a line of text; the
same seed gives the same picture. `TRANSFORMS` are the edits a match must survive. PDQ
survives crops of about 1% a side; at 3% most crops no longer match (docs/media.md has the figures).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance


def generated_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = random.Random(seed)
    noise = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(rng.randint(4, 9)):
        box = sorted(rng.sample(range(width), 2)), sorted(rng.sample(range(height), 2))
        xy = (box[0][0], box[1][0], box[0][1], box[1][1])
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(("ellipse", "rectangle", "line", "polygon"))
        if shape == "ellipse":
            draw.ellipse(xy, fill=colour)
        elif shape == "rectangle":
            draw.rectangle(xy, fill=colour)
        elif shape == "line":
            draw.line(xy, fill=colour, width=rng.randint(3, 12))
        else:
            points = [
                (rng.randrange(width), rng.randrange(height)) for _ in range(rng.randint(3, 6))
            ]
            draw.polygon(points, fill=colour)
    draw.text(
        (rng.randrange(width // 2), rng.randrange(height - 20)), f"sample {seed}", fill=(0, 0, 0)
    )
    return image


def encode(image: Image.Image, format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def crop(image: Image.Image, share: float = 0.01) -> Image.Image:
    width, height = image.size
    dx, dy = int(width * share), int(height * share)
    return image.crop((dx, dy, width - dx, height - dy))


# Each edit, as bytes in a format a user would send.
TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "resize-half": lambda im: encode(im.resize((im.width // 2, im.height // 2))),
    "resize-double": lambda im: encode(im.resize((im.width * 2, im.height * 2))),
    "jpeg-q60": lambda im: encode(im, "JPEG", quality=60),
    "webp": lambda im: encode(im, "WEBP", quality=80),
    "crop-1pc-each-side": lambda im: encode(crop(im)),
    "flip": lambda im: encode(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "rotate-90": lambda im: encode(im.transpose(Image.Transpose.ROTATE_90)),
    "brighter": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.1)),
    "saturated": lambda im: encode(ImageEnhance.Color(im).enhance(1.2)),
    "crop-jpeg-resize": lambda im: encode(crop(im).resize((240, 180)), "JPEG", quality=75),
}
