"""Box validation before any image is read: units, range, orientation."""

import pytest

from beam_pipelines.records import RejectedError
from beam_pipelines.validation.boxes import check_normalized


@pytest.mark.parametrize(
    ("box", "check"),
    [
        ((42, 81, 442, 219), "box_pixel_like"),
        ((0.1, 0.2, 1.2, 0.5), "box_pixel_like"),
        ((-0.1, 0.2, 0.3, 0.5), "box_out_of_range"),
        ((0.6, 0.2, 0.3, 0.5), "box_inverted"),
        ((0.1, 0.6, 0.3, 0.5), "box_inverted"),
        ((0.3, 0.2, 0.3, 0.5), "box_degenerate"),
    ],
)
def test_rejections(box, check):
    with pytest.raises(RejectedError) as err:
        check_normalized(box, 0)
    assert err.value.info.check == check


def test_pixel_like_message_says_so():
    with pytest.raises(RejectedError) as err:
        check_normalized((42, 81, 442, 219), 2)
    assert "pixel coordinates" in err.value.info.message and "region 2" in err.value.info.message


def test_valid_box_is_returned_as_floats():
    assert check_normalized((0, 0.25, 1, 0.5), 0) == (0.0, 0.25, 1.0, 0.5)
