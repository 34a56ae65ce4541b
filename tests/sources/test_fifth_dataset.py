"""A fifth upstream layout added from the test folder alone: a `Dataset` subclass, registered, with its own suite.

Nothing in the package names it: the run finds its parser, archive members, image rule, table and preview text
through the dataset object, as it does for the four shipped layouts.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from beam_pipelines.records import Provenance, Sample
from beam_pipelines.sources import registry
from beam_pipelines.sources.dataset import RECORDS, Dataset, Row, Segments, Table
from beam_pipelines.sources.fields import image_paths, make_sample_id, metadata_of, require
from beam_pipelines.validation.suites import DEFAULT_DIR
from tests.conftest import assert_invariant, parquet_rows, rejected_lines, report_of, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

NAME = "toy_captions"


def caption_rows(sample: Sample, _units: str) -> list[Row]:
    return [{"caption_words": len((sample.answer or "").split())}]


class ToyCaptions(Dataset):
    """`{"picture": "cats/1.png", "caption": "..."}` in `*_captions.jsonl` archive members; pictures under
    `pictures/`."""

    name = NAME
    description = "toy captions"
    id_fields = ("picture", "caption")
    tables = (Table("toy_captions", RECORDS, "sample", ("caption_words",), caption_rows),)

    def parse(self, record: dict[str, Any], provenance: Provenance) -> Sample:
        paths = image_paths({"image": require(record, "picture", str)})
        caption = require(record, "caption", str)
        return Sample(
            sample_id=make_sample_id(NAME, paths, caption),
            source=NAME,
            subset=paths[0].split("/", 1)[0],
            provenance=provenance,
            image_paths=paths,
            question="Describe the picture.",
            answer=caption,
            metadata=metadata_of(record, ("picture", "caption")),
            record=record,
        )

    def archive_members(self, names: list[str]) -> list[str]:
        return [n for n in names if n.endswith("_captions.jsonl")]

    def image_candidates(self, rel: str) -> list[tuple[str, str]]:
        return [("as_written", rel), ("under_pictures", f"pictures/{rel}")]

    def card_text(self, sample: Sample) -> Segments | None:
        return ((f"caption: {sample.answer}", None),)


SUITE = {
    "name": "toy_captions",
    "expectations": [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "caption_words", "min_value": 3},
            "meta": {"name": "toy_caption_has_three_words", "description": "a caption says something"},
            "severity": "critical",
        }
    ],
}


@pytest.fixture
def toy(tmp_path: Path):
    registry.register(ToyCaptions())
    yield tmp_path
    registry.unregister(NAME)


def test_a_dataset_registered_outside_the_package_runs_end_to_end(toy: Path):
    for i, colour in enumerate(("red", "green", "blue")):
        path = toy / "images" / "pictures" / "cats" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(path)
    records = [
        {"picture": "cats/0.png", "caption": "a red cat sleeping", "photographer": "x"},
        {"picture": "cats/1.png", "caption": "green"},  # fails the toy suite
        {"picture": "cats/2.png", "caption": "a blue cat sitting"},
        {"picture": "cats/9.png", "caption": "a missing cat picture"},
    ]
    with zipfile.ZipFile(toy / "annotations.zip", "w") as zf:
        zf.writestr("cats_captions.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        zf.writestr("ignored.jsonl", json.dumps(records[0]) + "\n")
    expectations = toy / "expectations"
    shutil.copytree(DEFAULT_DIR, expectations, ignore=shutil.ignore_patterns("*.md"))
    (expectations / "toy_captions.json").write_text(json.dumps(SUITE))
    out = toy / "out"
    argv = ["--source", NAME, "--input", str(toy / "annotations.zip"), "--image_root", str(toy / "images")]
    assert run_cli(*argv, "--output", str(out), "--expectations", str(expectations), "--max_reject_fraction=0.6") == 0

    report = assert_invariant(out)
    assert (report["input_records"], report["accepted"], report["rejected"]) == (4, 2, 2)
    rows = parquet_rows(out, "samples")
    assert {r["answer"] for r in rows} == {"a red cat sleeping", "a blue cat sitting"}
    assert {r["source"] for r in rows} == {NAME} and {r["subset"] for r in rows} == {"cats"}
    assert all(r["image_resolution"] == ["under_pictures"] for r in rows)
    assert json.loads(rows[0]["metadata"]) == {"photographer": "x"}
    assert {e["check"] for line in rejected_lines(out) for e in line["errors"]} == {
        "toy_caption_has_three_words",
        "image_missing",
    }
    assert report["expectations"]["toy_caption_has_three_words"]["evaluated"] == 4
    assert "caption: a " in (out / "preview" / "index.html").read_text()
    assert report_of(out)["config"]["source"] == NAME


def test_a_dataset_is_a_source_choice_only_while_registered(toy: Path):
    assert NAME in registry.names()
    registry.unregister(NAME)
    assert NAME not in registry.names()
    with pytest.raises(ValueError, match="--source 'toy_captions'"):
        registry.dataset_named(NAME)
    registry.register(ToyCaptions())
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ToyCaptions())
