"""Decoded pixels in either form `images.decode` gives them: a Pillow RGB image, or the faster decoder's H×W×3
uint8 array, which is kept as it is (copying it into a Pillow image is a quarter of such a decode, and a crop
needs only its rectangle)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def rgb_image(pixels: Image.Image | np.ndarray) -> Image.Image:
    """Decoded pixels as a Pillow RGB image, whichever form `decode` gave them in (an array is copied into a new
    image; an RGB image is returned as it is, one in another mode converted)."""
    if isinstance(pixels, np.ndarray):
        return Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    return pixels if pixels.mode == "RGB" else pixels.convert("RGB")


def crop_of(pixels: Image.Image | np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """The rectangle `box` (left, top, right, bottom, within the image) of decoded RGB pixels, as a Pillow image:
    from an array, only the rectangle is copied."""
    if isinstance(pixels, np.ndarray):
        left, top, right, bottom = box
        return Image.fromarray(np.ascontiguousarray(pixels[top:bottom, left:right]), "RGB")
    return pixels.crop(box)
