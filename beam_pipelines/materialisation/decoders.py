"""A faster full decode that gives exactly Pillow's pixels: libspng (8-bit PNGs) and libjpeg-turbo's libjpeg8 API
(JPEGs), both through imagecodecs.

Each is used only for the kinds of file where it was checked to match Pillow pixel for pixel (8-bit RGB, RGBA,
greyscale and palette PNGs; YCbCr and greyscale JPEGs), and only as far as it accepts a file: a file it refuses is
decoded by Pillow, so every verdict on a damaged file stays Pillow's own. libjpeg fills a truncated JPEG in with
grey without a complaint, where Pillow rejects it: a JPEG is taken only when it ends with its EOI marker, so a file
cut short is always Pillow's to judge. The pixels are kept as the decoder's array (`pixels`).
"""

from __future__ import annotations

import imagecodecs
import numpy as np
from PIL import Image

_PNG_MODES = ("RGB", "RGBA", "L", "P")
_PNG_DEPTH = 24  # the IHDR's bit depth: 8-byte signature, 4-byte length, "IHDR", width, height, then depth
_JPEG_MODES = ("RGB", "L")  # CMYK and YCCK files are Pillow's (it inverts Adobe CMYK); MPO is Pillow's too
_EOI = b"\xff\xd9"


def _png(data: bytes, im: Image.Image) -> np.ndarray | None:
    """libspng's pixels for a PNG of the kinds it was checked on, or None (another kind, or a file it refuses)."""
    if im.format != "PNG" or im.mode not in _PNG_MODES or len(data) <= _PNG_DEPTH or data[_PNG_DEPTH] != 8:
        return None
    try:
        return imagecodecs.spng_decode(data)
    except (ValueError, RuntimeError, imagecodecs.DelayedImportError, imagecodecs.SpngError):
        return None


def _jpeg(data: bytes, im: Image.Image) -> np.ndarray | None:
    """libjpeg-turbo's pixels for a whole (EOI-terminated) YCbCr or greyscale JPEG, or None."""
    if im.format != "JPEG" or im.mode not in _JPEG_MODES or not data.endswith(_EOI):
        return None
    try:
        return imagecodecs.jpeg8_decode(data)
    except (ValueError, RuntimeError, imagecodecs.DelayedImportError, imagecodecs.Jpeg8Error):
        return None


def rgb_array(data: bytes, im: Image.Image) -> np.ndarray | None:
    """The file's pixels as an H×W×3 uint8 array when a faster decoder reads this kind of file exactly as Pillow
    does and accepts this file; None to leave it to Pillow. `im` is the file opened (header only) by Pillow."""
    pixels = _png(data, im) if im.format == "PNG" else _jpeg(data, im)
    if pixels is None or pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        return pixels[:, :, :3]
    return None


def readable(data: bytes, im: Image.Image) -> bool:
    """Whether libspng reads the whole PNG without a complaint (so Pillow would too): the integrity check of an
    image whose pixels nobody keeps. False leaves the check to Pillow (a JPEG's, in draft mode, is cheaper)."""
    return _png(data, im) is not None
