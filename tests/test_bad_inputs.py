"""Every kind of bad input lands in rejected/ with its reason and provenance; nothing crashes or vanishes."""

import io
import json
import math
import os

import pytest
from PIL import Image

from tests.conftest import assert_invariant, parquet_rows, rejected_lines, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

GOOD_GPT = "<think> The bar <SOT>[0.1, 0.1, 0.5, 0.5]<EOT><image> is tall. </think> Final answer: 3"


def row(image="good.png", gpt=GOOD_GPT, **extra):
    return {
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}],
        **extra,
    }


def png(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 20, 200)).save(buf, format="PNG")
    return buf.getvalue()


def many_scans() -> bytes:
    """A valid progressive JPEG whose last scan is repeated 200 times (the real one: 20,000 times, 415 s)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 20, 200)).save(buf, format="JPEG", progressive=True)
    data = buf.getvalue()
    last = data[data.rindex(b"\xff\xda") : -2]
    return data[:-2] + last * 200 + b"\xff\xd9"


CASES = [
    # (line, expected check)
    (b'{"image": "good.png", "conversations": [', "malformed_json"),
    (b'{"image": "good\xff.png", "conversations": []}', "non_utf8"),
    (b"[1, 2, 3]", "not_an_object"),
    (json.dumps({"conversations": row()["conversations"]}).encode(), "missing_field"),
    (json.dumps(row(image=7)).encode(), "wrong_type"),
    (json.dumps(row(image="missing.png")).encode(), "image_missing"),
    (json.dumps(row(image="truncated.png")).encode(), "image_unreadable"),
    (json.dumps(row(image="text.png")).encode(), "not_an_image"),
    (json.dumps(row(image="huge.png")).encode(), "image_too_large"),
    (json.dumps(row(image="fifo.png")).encode(), "image_not_a_file"),  # reading it would block the job
    (json.dumps(row(image="scans.jpg")).encode(), "jpeg_too_many_scans"),  # decoding it would take minutes
    (json.dumps(row(image="bulky.png")).encode(), "image_file_too_large"),
    (json.dumps(row(image="../outside.png")).encode(), "path_escapes_root"),
    (json.dumps(row(image="/etc/hosts")).encode(), "path_escapes_root"),
    (json.dumps(row(image="link.png")).encode(), "path_escapes_root"),
    (
        row_nan := b'{"image": "good.png", "conversations": [{"from": "human", "value": "q"}, '
        b'{"from": "gpt", "value": "<SOT>[NaN, 0.1, 0.5, 0.5]<EOT> Final answer: 1"}]}',
        "box_finite",
    ),
    (json.dumps(row(gpt="<SOT>[0.1, 0.1, 0.5]<EOT> Final answer: 1")).encode(), "box_arity"),
    (json.dumps(row(gpt="<SOT>[0.5, 0.1, 0.2, 0.5]<EOT> Final answer: 1")).encode(), "x1_before_x2"),
    (json.dumps(row(gpt="<SOT>[42, 81, 442, 219]<EOT> Final answer: 1")).encode(), "x1_in_unit_range"),
    (json.dumps(row(gpt="<SOT>[0.999, 0.1, 1.0, 0.5]<EOT> Final answer: 1")).encode(), "min_region_width"),  # 1 px
    (json.dumps(row(gpt="<SOT>[0.98, 0.1, 1.0, 0.5]<EOT> Final answer: 1")).encode(), None),  # 2 px: valid
    # numbers too big for a float, or for pixels once scaled: rejected, not an OverflowError
    (json.dumps(row(gpt="<SOT>[0, 0, 1" + "0" * 400 + ", 1]<EOT> Final answer: 1")).encode(), "box_finite"),
    (json.dumps(row(gpt="<SOT>[0.1, 0.1, 1e306, 0.5]<EOT> Final answer: 1")).encode(), "x2_in_unit_range"),
    # Python's json.dumps writes NaN/Infinity (not JSON): kept in metadata, and in a dead letter, as strings
    (json.dumps(row(difficulty=float("nan"), weights=[1.0, float("-inf")])).encode(), None),
    (json.dumps(row(image="gone.png", difficulty=float("inf"))).encode(), "image_missing"),
    (json.dumps(row(gpt="Half an emoji \ud83d. Final answer: 1")).encode(), "invalid_unicode"),
]


@pytest.fixture(scope="module")
def rejected_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    root = tmp / "images"
    root.mkdir()
    (root / "good.png").write_bytes(png())
    data = png((300, 300))
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "text.png").write_bytes(b"this is not an image")
    (root / "huge.png").write_bytes(png((400, 400)))
    os.mkfifo(root / "fifo.png")
    (root / "scans.jpg").write_bytes(many_scans())
    (root / "bulky.png").write_bytes(png() + b"\0" * 300_000)
    (tmp / "outside.png").write_bytes(png())
    os.symlink(tmp / "outside.png", root / "link.png")
    inputs = tmp / "vgr.jsonl"
    inputs.write_bytes(b"\n".join(line for line, _ in CASES) + b"\n")
    out = tmp / "out"
    status = run_cli(
        "--source=vgr",
        f"--input={inputs}",
        f"--image_root={root}",
        f"--output={out}",
        "--max_image_pixels=100000",
        "--max_image_bytes=200000",
        "--max_reject_fraction=1",
    )
    assert status == 0
    return out


def test_each_bad_kind_is_rejected_with_reason_at_its_row(rejected_run):
    by_row = {line["provenance"]["row"]: line for line in rejected_lines(rejected_run)}
    for row_no, (_, check) in enumerate(CASES):
        if check is None:
            assert row_no not in by_row
            continue
        line = by_row[row_no]
        assert line["errors"][0]["check"] == check, (row_no, line["errors"])
        assert line["errors"][0]["message"] and line["errors"][0]["stage"]
        assert line["provenance"]["input_file"].endswith("vgr.jsonl")
        assert ("raw_line" in line) == (check in ("malformed_json", "non_utf8", "not_an_object", "invalid_unicode"))


def test_invariant_holds_with_every_kind_of_dirt(rejected_run):
    report = assert_invariant(rejected_run)
    kept = sum(check is None for _, check in CASES)
    assert report["accepted"] == kept and report["rejected"] == len(CASES) - kept
    assert math.isclose(sum(report["rejected_by_check"].values()), report["rejected"])


def test_non_finite_numbers_are_written_as_strings(rejected_run):
    kept = [json.loads(r["metadata"]) for r in parquet_rows(rejected_run, "samples")]
    assert {"difficulty": "NaN", "weights": [1.0, "-Infinity"]} in kept
    [line] = [x for x in rejected_lines(rejected_run) if (x.get("record") or {}).get("image") == "gone.png"]
    assert line["record"]["difficulty"] == "Infinity"


def test_pixel_like_message_is_explicit(rejected_run):
    lines = [x for x in rejected_lines(rejected_run) if x["errors"][0]["check"] == "x1_in_unit_range"]
    assert "pixel coordinates" in lines[0]["errors"][0]["message"]
    assert lines[0]["record"]["image"] == "good.png"
