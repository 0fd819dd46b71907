"""The pixel limit is the caller's, per call: Pillow's process-wide MAX_IMAGE_PIXELS is neither
read nor changed, so two callers with different limits in one process do not race on it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from media_images import encode, generated_image
from PIL import Image

from safestack.errors import MediaError
from safestack.media import ImageLimits, decode_image

IMAGE = encode(generated_image(3))  # 320 x 240 = 76,800 pixels


def test_decoding_leaves_pillows_global_limit_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    decode_image(IMAGE, ImageLimits(max_pixels=100_000))
    with pytest.raises(MediaError):
        decode_image(IMAGE, ImageLimits(max_pixels=1_000))
    assert before == Image.MAX_IMAGE_PIXELS


def test_each_call_has_its_own_limit_across_threads() -> None:
    def strict(_: int) -> str:
        try:
            decode_image(IMAGE, ImageLimits(max_pixels=50_000))
        except MediaError as exc:
            return str(exc)
        return "decoded"

    def loose(_: int) -> str:
        decode_image(IMAGE, ImageLimits(max_pixels=100_000))
        return "decoded"

    with ThreadPoolExecutor(4) as pool:
        strict_results = list(pool.map(strict, range(40)))
        loose_results = list(pool.map(loose, range(40)))
    assert all("over the limit of 50000" in r for r in strict_results)
    assert loose_results == ["decoded"] * 40


def test_a_limit_above_pillows_own_is_the_callers_to_set() -> None:
    # Pillow alone would refuse this header (over twice its default limit) before our check;
    # here the caller's limit decides, and the message says which limit it was.
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 10_000  # another library in the process set it low
        assert decode_image(IMAGE, ImageLimits(max_pixels=100_000)).width == 320
    finally:
        Image.MAX_IMAGE_PIXELS = old
