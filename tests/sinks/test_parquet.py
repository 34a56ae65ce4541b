"""The Parquet writers driven directly: one samples/regions (or index) file per chunk part, rows streamed in row
groups, files published whole with their size and checksum, and the stage times handed on last."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import datasets
import pyarrow.parquet as pq
from PIL import Image

from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import release_pixels
from beam_pipelines.records import Duplicate, EncodedImage, ErrorInfo, LoadedImage, Provenance, Rejection, Sample
from beam_pipelines.sinks.features import REGION_FEATURES, SAMPLE_FEATURES
from beam_pipelines.sinks.parquet import ROW_GROUP, IndexShardWriterFn, ParquetShardWriterFn, _Table
from beam_pipelines.sinks.schema import INDEX_SCHEMA, REGION_SCHEMA, SAMPLE_SCHEMA
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget, payload_bytes
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.stages import StageTimes
from beam_pipelines.validation.boxes import normalise_boxes
from tests.helpers.outputs import column_storage

VERSION = "v000001"
BOX = "<SOT>[0.1, 0.2, 0.5, 0.6]<EOT><image>"


def _png(width: int = 60, height: int = 40) -> tuple[bytes, Image.Image]:
    image = Image.new("RGB", (width, height), (200, 10, 10))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), image


def _sample(row: int, chunk: str = "c0", boxes: int = 1, member: str | None = None) -> Sample:
    """A parsed VGR sample with its image loaded and its regions cut, as the writers receive it."""
    gpt = "<think> a " + " and ".join([BOX] * boxes) + " b </think> Final answer: 3"
    record = {
        "image": f"coco/{chunk}/{row}.png",
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}],
    }
    sample = dataset_named("vgr").parse(record, Provenance("in.jsonl", row, chunk, member, offset=row))
    data, pixels = _png()
    image = LoadedImage(record["image"], "/r/a.png", "as_written", EncodedImage(data, "png", 60, 40), "PNG", 1, pixels)
    sample = crop_regions(normalise_boxes(dataclasses.replace(sample, images=(image,)), "normalized"), CropSettings())
    return release_pixels(sample)


def _plain(row: int, chunk: str = "c0") -> Sample:
    """A sample without regions, cheap to build in numbers."""
    image = LoadedImage(
        "a.png", "/r/a.png", "as_written", EncodedImage(b"\x89PNG" + bytes([row % 256]), "png", 4, 3), "PNG"
    )
    provenance = Provenance("in.jsonl", row, chunk, offset=row)
    return Sample(f"vgr-{chunk}-{row:04d}", "vgr", "", provenance, ("a.png",), "q", "a", images=(image,))


def _target(tmp_path, max_samples: int = 1000, max_bytes: int = 1 << 30) -> ShardTarget:
    return ShardTarget(OutputLayout(str(tmp_path / "out")), ShardLimits(max_samples, max_bytes), VERSION)


def _drive(fn, elements) -> list:
    """setup, one bundle with every element, finish_bundle: what the writer emitted, in order."""
    fn.setup()
    fn.start_bundle()
    out = []
    for element in elements:
        out += list(fn.process(element))
    out += [w.value for w in fn.finish_bundle()]
    return out


def _files(out: list) -> list[WrittenFile]:
    return [o for o in out if isinstance(o, WrittenFile)]


def _read(target: ShardTarget, info: WrittenFile):
    return pq.read_table(target.layout.path(info.path))


def test_one_samples_and_one_regions_file_per_chunk(tmp_path):
    target = _target(tmp_path)
    samples = [_sample(0, "c0", boxes=2), _sample(1, "c0", boxes=0), _sample(0, "c1"), _sample(1, "c1")]
    files = _files(_drive(ParquetShardWriterFn(target), samples))
    assert sorted((f.kind, f.path, f.rows, f.unit) for f in files) == [
        ("parquet_regions", "parquet/regions/v000001-c0-000000.parquet", 2, "v000001-c0"),
        ("parquet_regions", "parquet/regions/v000001-c1-000000.parquet", 2, "v000001-c1"),
        ("parquet_samples", "parquet/samples/v000001-c0-000000.parquet", 2, "v000001-c0"),
        ("parquet_samples", "parquet/samples/v000001-c1-000000.parquet", 2, "v000001-c1"),
    ]
    by_path = {f.path: _read(target, f) for f in files}
    c0 = by_path["parquet/samples/v000001-c0-000000.parquet"].to_pylist()
    assert [r["sample_id"] for r in c0] == [samples[0].sample_id, samples[1].sample_id]
    assert [r["num_regions"] for r in c0] == [2, 0]
    assert c0[0]["image"] == {"bytes": samples[0].images[0].encoded.data, "path": samples[0].images[0].path}
    regions = by_path["parquet/regions/v000001-c0-000000.parquet"].to_pylist()
    assert [(r["sample_id"], r["region_index"]) for r in regions] == [
        (samples[0].sample_id, 0),
        (samples[0].sample_id, 1),
    ]
    assert regions[0]["crop"]["bytes"] == samples[0].regions[0].crop.data
    assert regions[0]["box_px"] == [6, 8, 30, 24]


def test_written_files_report_their_real_size_and_checksum(tmp_path):
    target = _target(tmp_path)
    files = _files(_drive(ParquetShardWriterFn(target), [_sample(0), _sample(1)]))
    assert len(files) == 2
    for info in files:
        with open(target.layout.path(info.path), "rb") as f:
            data = f.read()
        assert info.bytes == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_files_carry_the_declared_schemas_with_their_huggingface_metadata(tmp_path):
    target = _target(tmp_path)
    files = {f.kind: f for f in _files(_drive(ParquetShardWriterFn(target), [_sample(0)]))}
    samples = pq.read_schema(target.layout.path(files["parquet_samples"].path))
    regions = pq.read_schema(target.layout.path(files["parquet_regions"].path))
    assert samples.names == SAMPLE_SCHEMA.names and samples.metadata == SAMPLE_SCHEMA.metadata
    assert regions.names == REGION_SCHEMA.names and regions.metadata == REGION_SCHEMA.metadata
    assert datasets.Features.from_arrow_schema(samples) == SAMPLE_FEATURES
    assert datasets.Features.from_arrow_schema(regions) == REGION_FEATURES


def test_payload_columns_are_stored_plain_and_uncompressed_the_others_with_snappy(tmp_path):
    target = _target(tmp_path)
    files = {f.kind: f for f in _files(_drive(ParquetShardWriterFn(target), [_sample(0), _sample(1)]))}
    samples = column_storage(target.layout.path(files["parquet_samples"].path))
    regions = column_storage(target.layout.path(files["parquet_regions"].path))
    for payload in ("image.bytes", "additional_images.list.element.bytes"):
        assert samples.pop(payload) == ("UNCOMPRESSED", False)
    for payload in ("crop.bytes", "replay_pixels"):
        assert regions.pop(payload) == ("UNCOMPRESSED", False)
    assert {compression for compression, _ in [*samples.values(), *regions.values()]} == {"SNAPPY"}
    assert samples["sample_id"] == regions["sample_id"] == ("SNAPPY", True)
    assert pq.read_table(target.layout.path(files["parquet_samples"].path))["image"][0].as_py()["bytes"] == _png()[0]


def test_finish_bundle_hands_on_the_stage_times_last(tmp_path):
    out = _drive(ParquetShardWriterFn(_target(tmp_path)), [_sample(0)])
    assert isinstance(out[-1], StageTimes)
    assert all(isinstance(o, WrittenFile) for o in out[:-1]) and len(out) == 3
    assert dict(out[-1].us).get("write_parquet", -1) >= 0


def test_an_empty_bundle_emits_only_the_stage_times(tmp_path):
    target = _target(tmp_path)
    out = _drive(ParquetShardWriterFn(target), [])
    assert len(out) == 1 and isinstance(out[0], StageTimes)
    assert not (tmp_path / "out" / "parquet").exists()


def test_rejections_and_duplicates_are_not_written(tmp_path):
    target = _target(tmp_path)
    p = Provenance("in.jsonl", 5, "c0", offset=5)
    others = [
        Rejection("vgr", p, (ErrorInfo("parse", "bad", "no"),), record={}),
        Duplicate("vgr", p, "vgr-x", kept=p),
    ]
    files = _files(_drive(ParquetShardWriterFn(target), [*others, _sample(0), *others]))
    samples = [f for f in files if f.kind == "parquet_samples"]
    assert [f.rows for f in samples] == [1]
    assert samples[0].path == "parquet/samples/v000001-c0-000000.parquet"


def test_rows_are_streamed_in_row_groups(tmp_path):
    target = _target(tmp_path)
    n = 2 * ROW_GROUP + 3
    files = _files(_drive(ParquetShardWriterFn(target), [_plain(row) for row in range(n)]))
    assert [(f.kind, f.rows) for f in files] == [("parquet_samples", n)], "no regions: no regions file"
    meta = pq.ParquetFile(target.layout.path(files[0].path)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [ROW_GROUP, ROW_GROUP, 3]
    ids = _read(target, files[0]).column("sample_id").to_pylist()
    assert ids == [f"vgr-c0-{row:04d}" for row in range(n)], "rows keep the input order"


def test_parts_roll_over_at_max_samples_and_are_named_after_their_first_offset(tmp_path):
    target = _target(tmp_path, max_samples=2)
    files = _files(_drive(ParquetShardWriterFn(target), [_plain(row) for row in range(5)]))
    assert [(f.path.rsplit("/", 1)[1], f.rows) for f in files] == [
        ("v000001-c0-000000.parquet", 2),
        ("v000001-c0-000002.parquet", 2),
        ("v000001-c0-000004.parquet", 1),
    ]


def test_parts_roll_over_at_max_bytes_of_image_payload(tmp_path):
    samples = [_plain(row) for row in range(4)]
    size = payload_bytes(samples[0])
    target = _target(tmp_path, max_bytes=2 * size + 1)
    files = _files(_drive(ParquetShardWriterFn(target), samples))
    assert [(f.path.rsplit("/", 1)[1], f.rows) for f in files] == [
        ("v000001-c0-000000.parquet", 2),
        ("v000001-c0-000002.parquet", 2),
    ]


def test_one_sample_larger_than_max_bytes_still_gets_a_part(tmp_path):
    target = _target(tmp_path, max_bytes=1)
    files = _files(_drive(ParquetShardWriterFn(target), [_plain(0), _plain(1)]))
    assert [f.rows for f in files] == [1, 1]


def test_nothing_is_left_in_the_scratch_folder(tmp_path):
    target = _target(tmp_path)
    _drive(ParquetShardWriterFn(target), [_sample(0), _plain(1)])
    scratch = tmp_path / "out" / "_tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "out" / "parquet").rglob("*.parquet")) == [
        "v000001-c0-000000.parquet",
        "v000001-c0-000000.parquet",
    ]


def test_a_rerun_writes_byte_identical_files(tmp_path):
    samples = [_sample(0, boxes=2), _sample(1)]
    first = _target(tmp_path / "a")
    second = _target(tmp_path / "b")
    one = {f.path: f.sha256 for f in _files(_drive(ParquetShardWriterFn(first), samples))}
    two = {f.path: f.sha256 for f in _files(_drive(ParquetShardWriterFn(second), samples))}
    assert one == two and len(one) == 2


def test_the_index_writer_writes_only_ids_and_input_positions(tmp_path):
    target = _target(tmp_path)
    samples = [_sample(3, "c0", member="part/a.jsonl"), _plain(4, "c0"), _plain(0, "c1")]
    out = _drive(IndexShardWriterFn(target), samples)
    files = _files(out)
    assert [(f.kind, f.path, f.rows) for f in files] == [
        ("index", "index/v000001-c0-000003.parquet", 2),
        ("index", "index/v000001-c1-000000.parquet", 1),
    ]
    table = _read(target, files[0])
    assert table.schema.equals(INDEX_SCHEMA)
    assert table.to_pylist() == [
        {"sample_id": samples[0].sample_id, "input_file": "in.jsonl", "input_member": "part/a.jsonl", "input_row": 3},
        {"sample_id": "vgr-c0-0004", "input_file": "in.jsonl", "input_member": None, "input_row": 4},
    ]
    assert not (tmp_path / "out" / "parquet").exists()
    assert "write_index" in dict(out[-1].us)


def test_a_table_without_rows_publishes_nothing(tmp_path):
    target = _target(tmp_path)
    table = _Table(target, "parquet_regions", "v000001-c0-000000", REGION_SCHEMA, "v000001-c0")
    assert table.commit() is None
    assert not (tmp_path / "out" / "parquet" / "regions" / "v000001-c0-000000.parquet").exists()
    scratch = tmp_path / "out" / "_tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []


def test_a_table_flushes_a_row_group_each_time_it_holds_row_group_rows(tmp_path):
    target = _target(tmp_path)
    table = _Table(target, "index", "v000001-c0-000000", INDEX_SCHEMA, "v000001-c0")
    row = {"sample_id": "s", "input_file": "f", "input_member": None, "input_row": 0}
    table.add([row] * (ROW_GROUP - 1))
    assert len(table.rows) == ROW_GROUP - 1, "held until a whole row group"
    table.add([row] * 2)
    assert table.rows == [] and table.count == ROW_GROUP + 1
    info = table.commit()
    assert (info.kind, info.path, info.rows, info.unit) == (
        "index",
        "index/v000001-c0-000000.parquet",
        65,
        "v000001-c0",
    )
    meta = pq.ParquetFile(target.layout.path(info.path)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [ROW_GROUP + 1]


def test_a_chunk_continued_in_a_later_bundle_gets_a_part_named_after_its_first_offset(tmp_path):
    """A runner may split a chunk across bundles: the second bundle's part starts at its own first row."""
    target = _target(tmp_path)
    fn = ParquetShardWriterFn(target)
    first = _files(_drive(fn, [_plain(row) for row in range(3)]))
    fn.start_bundle()
    second = [o for row in range(3, 5) for o in fn.process(_plain(row))]
    second += [w.value for w in fn.finish_bundle() if isinstance(w.value, WrittenFile)]
    assert [(f.path, f.rows) for f in first + second] == [
        ("parquet/samples/v000001-c0-000000.parquet", 3),
        ("parquet/samples/v000001-c0-000003.parquet", 2),
    ]
    assert _read(target, second[0]).column("input_row").to_pylist() == [3, 4]


def test_index_parts_line_up_with_the_samples_parts(tmp_path):
    samples = [_sample(row) for row in range(5)]
    target = _target(tmp_path, max_bytes=2 * payload_bytes(samples[0]) + 1)
    parquet = [f for f in _files(_drive(ParquetShardWriterFn(target), samples)) if f.kind == "parquet_samples"]
    index = _files(_drive(IndexShardWriterFn(target), samples))
    assert [f.path.rsplit("/", 1)[1] for f in index] == [f.path.rsplit("/", 1)[1] for f in parquet]
    assert [f.rows for f in index] == [f.rows for f in parquet] == [2, 2, 1]
