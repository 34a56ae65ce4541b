"""A faster full decode that gives exactly Pillow's pixels: libspng through imagecodecs, for 8-bit PNGs.

It is used only for the kinds of file where it was checked to match Pillow pixel for pixel (8-bit RGB, RGBA,
greyscale and palette PNGs), and only as far as it accepts a file: a file it refuses is decoded by Pillow, so
every verdict on a damaged file stays Pillow's own. Its pixels are kept as its array (`pixels`). Everything else
is Pillow's, JPEG included: Pillow decodes a JPEG straight into its own pixel buffer, and when any other
decoder's pixels still had to be copied into one, that cost more than libjpeg-turbo through simplejpeg saved
(benchmark figures in docs/performance.md); with the array kept, that comparison is still to be made again.
"""

from __future__ import annotations

import imagecodecs
import numpy as np
from PIL import Image

_PNG_MODES = ("RGB", "RGBA", "L", "P")
_PNG_DEPTH = 24  # the IHDR's bit depth: 8-byte signature, 4-byte length, "IHDR", width, height, then depth


def _decoded(data: bytes, im: Image.Image) -> np.ndarray | None:
    """libspng's pixels for a file of the kinds it was checked on, or None (another kind, or a file it refuses)."""
    if im.format != "PNG" or im.mode not in _PNG_MODES or len(data) <= _PNG_DEPTH or data[_PNG_DEPTH] != 8:
        return None
    try:
        return imagecodecs.spng_decode(data)
    except (ValueError, RuntimeError, imagecodecs.DelayedImportError, imagecodecs.SpngError):
        return None


def rgb_array(data: bytes, im: Image.Image) -> np.ndarray | None:
    """The file's pixels as an H×W×3 uint8 array when a faster decoder reads this kind of file exactly as Pillow
    does and accepts this file; None to leave it to Pillow. `im` is the file opened (header only) by Pillow."""
    pixels = _decoded(data, im)
    if pixels is None or pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        return pixels[:, :, :3]
    return None


def readable(data: bytes, im: Image.Image) -> bool:
    """Whether the faster decoder reads the whole file without a complaint (so Pillow would too): the integrity
    check of an image whose pixels nobody keeps. False leaves the check to Pillow."""
    return _decoded(data, im) is not None
