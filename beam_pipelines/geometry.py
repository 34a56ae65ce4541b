"""Box geometry shared by validation and materialisation: box numbers as floats, and the pixel box of a box.

Pixel box (left, top, right, bottom; right/bottom exclusive) = floor(x1·W), floor(y1·H), ceil(x2·W), ceil(y2·H) in
Python floats (with `--box_units pixels`, floor/ceil of the values as written), on the pixel array as stored: the
smallest pixel rectangle that covers the box. The suites check it unclamped; crops are cut from it clamped.
"""

from __future__ import annotations

import math

UNITS = ("normalized", "pixels")


def as_float(value: float | int) -> float:
    """A box number as a float; a runaway integer (hundreds of digits) becomes ±inf, not an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _clamp(value: int, limit: int) -> int:
    return min(max(value, 0), limit)


def raw_pixel_box(box: tuple[float, ...], width: int, height: int, units: str) -> tuple[int, int, int, int]:
    """floor/ceil of the box in pixels of the stored image, not clamped (so a box outside the image shows)."""
    x1, y1, x2, y2 = box if units == "pixels" else (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
    return math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)


def pixel_box(box: tuple[float, ...], width: int, height: int, units: str = "normalized") -> tuple[int, int, int, int]:
    """The crop rectangle: `raw_pixel_box` clamped to the image."""
    left, top, right, bottom = raw_pixel_box(box, width, height, units)
    return _clamp(left, width), _clamp(top, height), _clamp(right, width), _clamp(bottom, height)
