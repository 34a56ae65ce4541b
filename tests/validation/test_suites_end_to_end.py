"""Every shipped expectation through the real pipeline: its violating row lands in rejected/ under the expectation's
name (severity error) or is kept with the name in its `warnings` column (severity warning)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import assert_invariant, parquet_rows, rejected_lines, run_cli
from tests.validation.test_checker import CASES, FACTS, INFOS

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

GROUPS: dict[tuple[str, str], list[str]] = defaultdict(list)
for _name, (_source, _record, _image, _units) in sorted(CASES.items()):
    if _name not in FACTS:  # label_matches_score_rule needs --label_reference: test_validation_end_to_end
        GROUPS[(_source, _units)].append(_name)


def _write_image(path: Path, spec) -> None:
    width, height, fmt, orientation = (*(spec or (100, 80, "JPEG")), 1)[:4]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (120, 60, 30)).save(path, format=fmt, **({"exif": exif} if fmt != "PCX" else {}))


@pytest.mark.parametrize(("source", "units"), sorted(GROUPS))
def test_each_violation_is_routed_by_the_pipeline(tmp_path, source, units):
    names = GROUPS[(source, units)]
    lines = []
    for row, name in enumerate(names):
        _, record, image, _ = CASES[name]
        ext = {"JPEG": "jpg", "PNG": "png", "PCX": "pcx"}[(image or (0, 0, "JPEG"))[2]]
        path = f"img{row}.{ext}"
        _write_image(tmp_path / "images" / path, image)
        lines.append(json.dumps({**record, "image": [path] if source == "visualprocessbench" else path}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = [f"--source={source}", f"--input={tmp_path / 'in.jsonl'}", f"--image_root={tmp_path / 'images'}"]
    assert run_cli(*args, f"--output={out}", f"--box_units={units}", "--max_reject_fraction=1") == 0
    assert_invariant(out)
    rejected = {line["provenance"]["row"]: line for line in rejected_lines(out)}
    kept = {r["input_row"]: r for r in parquet_rows(out, "samples")}
    for row, name in enumerate(names):
        if INFOS[name].severity == "error":
            assert row in rejected, name
            assert name in [e["check"] for e in rejected[row]["errors"]], (name, rejected[row]["errors"])
        else:
            assert row in kept and name in kept[row]["warnings"], (name, rejected.get(row))
