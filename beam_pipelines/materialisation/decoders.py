"""Faster full decodes that give exactly Pillow's pixels: libjpeg-turbo through simplejpeg for JPEG (the same
library Pillow uses, with its accurate DCT and fancy upsampling), libspng through imagecodecs for 8-bit PNG.

They are used only for the kinds of file where they were checked to match Pillow pixel for pixel (YCbCr, RGB
and greyscale JPEGs; 8-bit RGB, RGBA, greyscale and palette PNGs), and only as far as they accept a file: a file
either refuses (a warning counts, as simplejpeg's strict mode has it) is decoded by Pillow, so every verdict on a
damaged file stays Pillow's own. Everything else (CMYK JPEGs, 16-bit PNGs, other formats) is Pillow's.
"""

from __future__ import annotations

import imagecodecs
import numpy as np
import simplejpeg
from PIL import Image

_PNG_MODES = ("RGB", "RGBA", "L", "P")
_PNG_DEPTH = 24  # the IHDR's bit depth: 8-byte signature, 4-byte length, "IHDR", width, height, then depth


def rgb_array(data: bytes, im: Image.Image) -> np.ndarray | None:
    """The file's pixels as an H×W×3 uint8 array when a faster decoder reads this kind of file exactly as Pillow
    does and accepts this file; None to leave it to Pillow. `im` is the file opened (header only) by Pillow."""
    try:
        if im.format == "JPEG" and im.mode in ("RGB", "L"):
            return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False, strict=True)
        if im.format == "PNG" and im.mode in _PNG_MODES and len(data) > _PNG_DEPTH and data[_PNG_DEPTH] == 8:
            return _three_channels(imagecodecs.spng_decode(data))
    except (ValueError, RuntimeError, imagecodecs.DelayedImportError, imagecodecs.SpngError):
        return None
    return None


def _three_channels(pixels: np.ndarray) -> np.ndarray | None:
    if pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        return pixels[:, :, :3]
    return None


def rgb_image(data: bytes, im: Image.Image) -> Image.Image | None:
    """`rgb_array` as a Pillow RGB image (what crops and thumbnails are cut from), or None."""
    pixels = rgb_array(data, im)
    return None if pixels is None else Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def readable(data: bytes, im: Image.Image) -> bool:
    """Whether a faster decoder reads the whole file without a complaint (so Pillow would too): the integrity
    check of an image whose pixels nobody keeps. False leaves the check to Pillow."""
    if im.format == "PNG":
        return rgb_array(data, im) is not None
    return False
