"""The faster decoders give Pillow's pixels on every image of the corpus, and leave every verdict on a damaged
file to Pillow."""

import io
import random

import numpy as np
import pytest
from PIL import Image

from beam_pipelines.demo.images import chart, document
from beam_pipelines.materialisation import decoders
from beam_pipelines.materialisation.images import decode
from beam_pipelines.records import RejectedError
from benchmarks.data import photo


def _encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def _corpus() -> dict[str, tuple[bytes, bool]]:
    """name → (file, whether a faster decoder should take it)."""
    rng, prng = np.random.default_rng(3), random.Random(3)
    shot, odd, tiny = photo(rng, 640, 480), photo(rng, 333, 217), photo(rng, 17, 9)
    graph, page = chart(prng, 800, 600)[0], document(prng, 850, 1100)[0]
    corpus = {
        "jpeg 4:4:4": (_encoded(shot, "JPEG", quality=90, subsampling=0), True),
        "jpeg 4:2:2": (_encoded(shot, "JPEG", quality=90, subsampling=1), True),
        "jpeg 4:2:0": (_encoded(shot, "JPEG", quality=90, subsampling=2), True),
        "jpeg progressive": (_encoded(shot, "JPEG", quality=75, progressive=True), True),
        "jpeg optimised q30": (_encoded(odd, "JPEG", quality=30, optimize=True), True),
        "jpeg odd size q95": (_encoded(odd, "JPEG", quality=95), True),
        "jpeg 17x9": (_encoded(tiny, "JPEG"), True),
        "jpeg grey": (_encoded(shot.convert("L"), "JPEG", quality=85), True),
        "jpeg chart": (_encoded(graph, "JPEG"), True),
        "jpeg cmyk": (_encoded(shot.convert("CMYK"), "JPEG"), False),
        "png rgb": (_encoded(graph, "PNG"), True),
        "png document": (_encoded(page, "PNG"), True),
        "png rgba": (_encoded(odd.convert("RGBA"), "PNG"), True),
        "png grey": (_encoded(odd.convert("L"), "PNG"), True),
        "png palette": (_encoded(graph.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), True),
        "png palette transparent": (_encoded(graph.convert("P"), "PNG", transparency=0), True),
        "png 1x1": (_encoded(Image.new("RGB", (1, 1), (9, 99, 199)), "PNG"), True),
        "png grey alpha": (_encoded(odd.convert("LA"), "PNG"), False),
        "png 1-bit": (_encoded(odd.convert("1"), "PNG"), False),
        "png 16-bit": (
            _encoded(Image.fromarray(np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30), "PNG"),
            False,
        ),
        "gif": (_encoded(graph.convert("P"), "GIF"), False),
        "webp": (_encoded(odd, "WEBP", lossless=True), False),
    }
    for i in range(6):  # noisy photos of the benchmark's kind and sizes
        corpus[f"photo {i}"] = (_encoded(photo(rng, *((640, 480), (800, 600))[i % 2]), "JPEG", quality=90), True)
    corpus["jpeg restart markers"] = (_encoded(odd, "JPEG", restart_marker_blocks=4), True)
    corpus["jpeg progressive grey"] = (_encoded(odd.convert("L"), "JPEG", progressive=True), True)
    corpus["jpeg trailing bytes"] = (_encoded(odd, "JPEG") + b"\0" * 16, False)
    return corpus


CORPUS = _corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_pixels_are_pillows(name):
    data, fast = CORPUS[name]
    ours = np.asarray(decode(data, name, rgb=True))
    pillows = np.asarray(decode(data, name, rgb=True, fast=False))
    assert ours.dtype == np.uint8 and ours.shape == pillows.shape and ours.shape[2] == 3
    assert np.array_equal(ours, pillows), "pixel for pixel"
    assert (decoders.rgb_array(data, Image.open(io.BytesIO(data))) is not None) == fast, "taken where checked only"


@pytest.mark.parametrize("name", ["jpeg 4:2:0", "png rgb", "png document", "png palette"])
@pytest.mark.parametrize("rgb", [True, False])
def test_a_truncated_file_is_still_rejected_as_pillow_rejects_it(name, rgb):
    data = CORPUS[name][0]
    cut = data[: len(data) * 2 // 3]
    checks = []
    for fast in (True, False):
        with pytest.raises(RejectedError) as err:
            decode(cut, name, rgb=rgb, fast=fast)
        checks.append(err.value.info.check)
    assert checks == ["image_unreadable", "image_unreadable"]


def _verdict(data: bytes, fast: bool) -> tuple[str, np.ndarray | None]:
    try:
        return "accepted", np.asarray(decode(data, "damaged.jpg", rgb=True, fast=fast))
    except RejectedError as err:
        return err.info.check, None


@pytest.mark.parametrize("name", ["jpeg 4:2:0", "jpeg progressive", "jpeg grey", "jpeg restart markers"])
def test_a_damaged_jpeg_gets_pillows_verdict_and_pixels(name):
    """Bits flipped in the entropy-coded data, files cut short, and cut short with an EOI marker put back: where
    Pillow accepts, the same pixels; where it rejects, the same check."""
    data, prng = CORPUS[name][0], random.Random(name)
    damaged = []
    for _ in range(25):
        flipped = bytearray(data)
        flipped[prng.randrange(len(data) // 3, len(data) - 2)] ^= 1 << prng.randrange(8)
        damaged.append(bytes(flipped))
    for _ in range(8):
        cut = data[: prng.randrange(200, len(data) - 2)]
        damaged += [cut, cut + b"\xff\xd9"]
    verdicts = {"accepted": 0}
    for file in damaged:
        (ours, ours_pixels), (pillows, pillows_pixels) = _verdict(file, True), _verdict(file, False)
        assert ours == pillows
        if ours == "accepted":
            assert np.array_equal(ours_pixels, pillows_pixels), "pixel for pixel"
        verdicts[ours] = verdicts.get(ours, 0) + 1
    assert verdicts["accepted"] and verdicts.get("image_unreadable"), "both verdicts are exercised"


def test_a_file_the_faster_decoder_refuses_is_pillows_to_judge():
    data = bytearray(CORPUS["png rgb"][0])
    idat = data.index(b"IDAT")
    data[idat + 4 + 40] ^= 0x01  # a bit of the image data: the chunk's checksum no longer matches, which spng checks
    assert decoders.rgb_array(bytes(data), Image.open(io.BytesIO(bytes(data)))) is None
    with pytest.raises(RejectedError) as ours:
        decode(bytes(data), "p.png", rgb=True)
    with pytest.raises(RejectedError) as pillows:
        decode(bytes(data), "p.png", rgb=True, fast=False)
    assert ours.value.info == pillows.value.info, "the same verdict, Pillow's"
