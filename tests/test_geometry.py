"""Box geometry: floor/ceil in Python floats, clamping for crops, none of it for the suites, no overflow."""

import math

from beam_pipelines.geometry import as_float, pixel_box, raw_pixel_box


def test_pixel_box_floor_ceil_and_clamp():
    assert pixel_box((0.1, 0.2, 0.5, 0.75), 100, 40) == (10, 8, 50, 30)
    assert pixel_box((0.0, 0.0, 1.0, 1.0), 640, 480) == (0, 0, 640, 480)
    assert pixel_box((0.101, 0.0, 0.109, 0.5), 100, 10) == (10, 0, 11, 5)


def test_pixel_box_follows_python_float_rounding():
    # 0.07 * 100 == 7.000000000000001 in binary floating point: ceil gives 8, exactly as the contract states.
    assert pixel_box((0.03, 0.03, 0.07, 0.07), 100, 100)[2] == 8


def test_the_unclamped_box_shows_what_lies_outside_the_image():
    assert raw_pixel_box((-0.1, 0.5, 1.2, 1.0), 100, 10, "normalized") == (-10, 5, 120, 10)
    assert pixel_box((-0.1, 0.5, 1.2, 1.0), 100, 10) == (0, 5, 100, 10)
    assert raw_pixel_box((3.5, 2.0, 7.2, 9.0), 100, 10, "pixels") == (3, 2, 8, 9)


def test_runaway_integers_become_infinities_not_errors():
    assert as_float(10**400) == math.inf and as_float(-(10**400)) == -math.inf and as_float(3) == 3.0
