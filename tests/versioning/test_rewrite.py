"""`rewrite_units` on real files made by the real writers: the units' files merged into one unit, kind by kind,
without the dropped samples, rows and tar members in order."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile

import datasets
import pyarrow.parquet as pq
from PIL import Image

from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import release_pixels
from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Sample
from beam_pipelines.sinks.features import REGION_FEATURES, SAMPLE_FEATURES
from beam_pipelines.sinks.parquet import ROW_GROUP, IndexShardWriterFn, ParquetShardWriterFn
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget
from beam_pipelines.sinks.webdataset import WebDatasetShardWriterFn, members
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.validation.boxes import normalise_boxes
from beam_pipelines.versioning.manifest import Unit, units_of
from beam_pipelines.versioning.rewrite import rewrite_units
from tests.helpers.outputs import column_storage

UNIT = "v000002-compact-00000"


def _sample(row: int, chunk: str, boxes: int) -> Sample:
    gpt = "<think> a " + " and ".join(["<SOT>[0.1, 0.2, 0.5, 0.6]<EOT><image>"] * boxes) + " b </think> Final answer: 3"
    record = {
        "image": f"coco/{chunk}/{row}.png",
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}],
    }
    sample = dataset_named("vgr").parse(record, Provenance("in.jsonl", row, chunk, offset=row))
    image = Image.new("RGB", (20, 10), (row * 40 % 256, 0, 0))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    loaded = LoadedImage(
        record["image"], "/r", "as_written", EncodedImage(buf.getvalue(), "png", 20, 10), "PNG", 1, image
    )
    sample = crop_regions(normalise_boxes(dataclasses.replace(sample, images=(loaded,)), "normalized"), CropSettings())
    return release_pixels(sample)


def _write(output: str, samples: list[Sample], max_samples: int = 1000) -> list[Unit]:
    """The version v000001 of `samples` as the writers make it, grouped into its units."""
    target = ShardTarget(OutputLayout(output), ShardLimits(max_samples, 1 << 30), "v000001")
    infos = []
    for fn in (ParquetShardWriterFn(target), IndexShardWriterFn(target), WebDatasetShardWriterFn(target)):
        fn.setup()
        fn.start_bundle()
        for sample in samples:
            infos += list(fn.process(sample))
        infos += [w.value for w in fn.finish_bundle() if isinstance(w.value, WrittenFile)]
    return units_of(infos)


def _ids(output: str, info: WrittenFile, column: str = "sample_id") -> list:
    return pq.read_table(OutputLayout(output).path(info.path)).column(column).to_pylist()


def _members(output: str, info: WrittenFile) -> list[tuple[str, bytes]]:
    with tarfile.open(OutputLayout(output).path(info.path)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def _scratch_is_empty(output: str) -> bool:
    scratch = OutputLayout(output).scratch
    return not os.path.exists(scratch) or os.listdir(scratch) == []


def _corpus(tmp_path) -> tuple[str, list[Sample], list[Unit]]:
    output = str(tmp_path / "out")
    samples = [_sample(0, "c0", 1), _sample(1, "c0", 0), _sample(2, "c0", 2), _sample(0, "c1", 1), _sample(1, "c1", 0)]
    return output, samples, _write(output, samples)


def test_units_are_merged_into_one_part_per_kind_in_order(tmp_path):
    output, samples, units = _corpus(tmp_path)
    assert [u.name for u in units] == ["v000001-c0", "v000001-c1"]
    infos = rewrite_units(output, UNIT, units)
    assert [(f.kind, f.path, f.rows, f.unit) for f in infos] == [
        ("parquet_samples", f"parquet/samples/{UNIT}-000000.parquet", 5, UNIT),
        ("parquet_regions", f"parquet/regions/{UNIT}-000000.parquet", 4, UNIT),
        ("webdataset", f"webdataset/{UNIT}-000000.tar", 5, UNIT),
        ("index", f"index/{UNIT}-000000.parquet", 5, UNIT),
    ]
    ids = [s.sample_id for s in samples]
    assert _ids(output, infos[0]) == ids
    assert _ids(output, infos[3]) == ids
    assert _ids(output, infos[3], "input_row") == [0, 1, 2, 0, 1]
    assert _members(output, infos[2]) == [m for s in samples for m in members(s)]
    assert _scratch_is_empty(output)


def test_dropped_samples_lose_their_rows_regions_index_entries_and_tar_members(tmp_path):
    output, samples, units = _corpus(tmp_path)
    drop = frozenset({samples[2].sample_id, samples[3].sample_id, "vgr-not-in-these-units"})
    infos = {f.kind: f for f in rewrite_units(output, UNIT, units, drop)}
    kept = [s for s in samples if s.sample_id not in drop]
    assert {k: f.rows for k, f in infos.items()} == {
        "parquet_samples": 3,
        "parquet_regions": 1,
        "webdataset": 3,
        "index": 3,
    }
    assert _ids(output, infos["parquet_samples"]) == [s.sample_id for s in kept]
    assert _ids(output, infos["parquet_regions"]) == [samples[0].sample_id]
    assert _ids(output, infos["index"]) == [s.sample_id for s in kept]
    assert _members(output, infos["webdataset"]) == [m for s in kept for m in members(s)]
    rows = pq.read_table(OutputLayout(output).path(infos["parquet_samples"].path)).to_pylist()
    assert rows[0]["image"]["bytes"] == samples[0].images[0].encoded.data, "rows are copied whole"


def test_a_kind_whose_rows_are_all_dropped_gets_no_file(tmp_path):
    output, samples, units = _corpus(tmp_path)
    with_regions = frozenset(s.sample_id for s in samples if s.regions)
    infos = rewrite_units(output, UNIT, units, with_regions)
    assert [(f.kind, f.rows) for f in infos] == [("parquet_samples", 2), ("webdataset", 2), ("index", 2)]
    assert not (tmp_path / "out" / "parquet" / "regions" / f"{UNIT}-000000.parquet").exists()
    assert _scratch_is_empty(output)


def test_dropping_every_sample_writes_nothing(tmp_path):
    output, samples, units = _corpus(tmp_path)
    assert rewrite_units(output, UNIT, units, frozenset(s.sample_id for s in samples)) == []
    assert not list((tmp_path / "out").rglob(f"{UNIT}-*"))
    assert _scratch_is_empty(output)


def test_the_source_files_are_left_as_they_were(tmp_path):
    output, samples, units = _corpus(tmp_path)
    before = {f.path: f.sha256 for u in units for f in u.files}
    rewrite_units(output, UNIT, units, frozenset({samples[0].sample_id}))
    after = {p: hashlib.sha256((tmp_path / "out" / p).read_bytes()).hexdigest() for p in before}
    assert after == before


def test_written_files_report_their_real_size_and_checksum(tmp_path):
    output, samples, units = _corpus(tmp_path)
    for info in rewrite_units(output, UNIT, units, frozenset({samples[1].sample_id})):
        data = (tmp_path / "out" / info.path).read_bytes()
        assert (info.bytes, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_a_unit_of_several_parts_is_read_in_part_order(tmp_path):
    output = str(tmp_path / "out")
    samples = [_sample(row, "c0", 0) for row in range(2 * ROW_GROUP + 5)]
    (unit,) = _write(output, samples, max_samples=ROW_GROUP)
    assert len(unit.of_kind("parquet_samples")) == 3
    drop = frozenset(s.sample_id for s in samples[ROW_GROUP - 2 : ROW_GROUP + 2])
    infos = {f.kind: f for f in rewrite_units(output, UNIT, [unit], drop)}
    kept = [s.sample_id for s in samples if s.sample_id not in drop]
    assert _ids(output, infos["parquet_samples"]) == kept
    assert [name.split(".", 1)[0] for name, _ in _members(output, infos["webdataset"])][::2] == kept
    meta = pq.ParquetFile(OutputLayout(output).path(infos["index"].path)).metadata
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(groups) == len(kept) and max(groups) <= ROW_GROUP, "streamed a row group at a time"


def test_only_the_kinds_the_sources_have_are_written(tmp_path):
    output, _, units = _corpus(tmp_path)
    index_only = [Unit(u.name, u.samples, tuple(f for f in u.files if f.kind == "index")) for u in units]
    infos = rewrite_units(output, UNIT, index_only)
    assert [(f.kind, f.rows) for f in infos] == [("index", 5)]


def test_merged_files_keep_the_schemas_their_huggingface_metadata_and_column_storage(tmp_path):
    output, samples, units = _corpus(tmp_path)
    infos = {f.kind: f for f in rewrite_units(output, UNIT, units, frozenset({samples[0].sample_id}))}
    for kind, features in (("parquet_samples", SAMPLE_FEATURES), ("parquet_regions", REGION_FEATURES)):
        schema = pq.read_schema(OutputLayout(output).path(infos[kind].path))
        source = pq.read_schema(OutputLayout(output).path(units[0].of_kind(kind)[0].path))
        assert schema.equals(source, check_metadata=True)
        assert datasets.Features.from_arrow_schema(schema) == features
        assert column_storage(OutputLayout(output).path(infos[kind].path)) == column_storage(
            OutputLayout(output).path(units[0].of_kind(kind)[0].path)
        )
