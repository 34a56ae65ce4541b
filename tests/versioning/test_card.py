"""The dataset card: after several runs into one output the usual readers, following it, read the current version
once; globbing the folders reads every version (which is why the card and `vgr-etl files` exist)."""

from __future__ import annotations

import datasets
import duckdb
import polars as pl
import pytest
import webdataset as wds

from beam_pipelines.versioning.manifest import data_files
from tests.conftest import report_of, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`


@pytest.fixture(scope="module")
def twice(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "vgr"
    args = [*demo["vgr"].argv(str(out)), "--max_reject_fraction=0.5"]
    assert run_cli(*args) == 0
    assert run_cli(*args, "--formats=parquet,webdataset") == 0
    return out


def test_datasets_loads_the_current_version_from_the_output_folder_itself(twice):
    accepted = report_of(twice)["accepted"]
    samples = datasets.load_dataset(str(twice), split="train")
    assert len(samples) == accepted and len(set(samples["sample_id"])) == accepted
    assert isinstance(samples.features["image"], datasets.Image)
    regions = datasets.load_dataset(str(twice), "regions", split="train")
    assert len(regions) == report_of(twice)["regions"]
    card = (twice / "README.md").read_text()
    assert "license: cc0-1.0" in card and "v000002" in card and "v000001-" not in card.split("---")[1]


def test_duckdb_and_polars_read_the_current_files_and_globbing_reads_every_version(twice):
    accepted = report_of(twice)["accepted"]
    files = data_files(str(twice))
    count, distinct = duckdb.sql(f"SELECT count(*), count(DISTINCT sample_id) FROM read_parquet({files!r})").fetchall()[
        0
    ]
    assert count == distinct == accepted
    assert pl.read_parquet(files).height == accepted
    globbed = duckdb.sql(f"SELECT count(*) FROM '{twice}/parquet/samples/*.parquet'").fetchall()[0][0]
    assert globbed == 2 * accepted, "the folders hold both versions: readers must follow the card or the manifest"


def test_webdataset_samples_read_with_one_pattern_whatever_the_image_format(twice):
    tars = data_files(str(twice), "webdataset")
    pairs = list(wds.WebDataset(tars, shardshuffle=False).decode("pil").to_tuple("image.jpg;image.png", "json"))
    assert len(pairs) == report_of(twice)["accepted"]
    assert {r["image_path"].rsplit(".", 1)[1] for _, r in pairs} == {"jpg", "png"}, "both kinds, one pattern"
    assert all(image.size == (record["width"], record["height"]) for image, record in pairs)
