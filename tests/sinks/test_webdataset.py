"""WebDataset shards: the members of a sample and their order, deterministic tar headers (a rerun gives the same
bytes), and tars the `webdataset` library reads back as written."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile

import numpy as np
import webdataset as wds
from PIL import Image

from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import release_pixels
from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Sample
from beam_pipelines.sinks.parquet import ParquetShardWriterFn
from beam_pipelines.sinks.schema import record_fields
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget, payload_bytes
from beam_pipelines.sinks.tar_members import member_names
from beam_pipelines.sinks.webdataset import REPLAY_JSON_FIELDS, WebDatasetShardWriterFn, members
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.stages import StageTimes
from beam_pipelines.validation.boxes import normalise_boxes

BOXES = ("[0.1, 0.2, 0.5, 0.6]", "[0.5, 0.5, 1.0, 1.0]")
PRESET = replay.preset(replay.DEFAULT_PRESET, None)


def _encoded(fmt: str, size: tuple[int, int], color: tuple[int, int, int]) -> tuple[EncodedImage, Image.Image]:
    image = Image.new("RGB", size, color)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return EncodedImage(buf.getvalue(), "png" if fmt == "PNG" else "jpg", *size), image


def _sample(
    row: int,
    chunk: str = "c0",
    boxes: tuple[str, ...] = BOXES,
    second_image: bool = False,
    with_replay: bool = True,
    pixels: bool = True,
) -> Sample:
    """A VGR sample as it reaches the writers: parsed, image loaded, regions cut, replay computed, pixels released."""
    gpt = "<think> a " + " and ".join(f"<SOT>{b}<EOT><image>" for b in boxes) + " b </think> Final answer: 3"
    paths = [f"coco/{chunk}/{row}.png"] + ([f"coco/{chunk}/{row}-b.jpg"] if second_image else [])
    record = {
        "image": paths if second_image else paths[0],
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}],
    }
    sample = dataset_named("vgr").parse(record, Provenance("in.jsonl", row, chunk, offset=row))
    first, im = _encoded("PNG", (60, 40), (200, 10, 10))
    images = [LoadedImage(paths[0], "/r/a.png", "as_written", first, "PNG", 1, im)]
    if second_image:
        images.append(LoadedImage(paths[1], "/r/b.jpg", "as_written", _encoded("JPEG", (8, 8), (0, 0, 255))[0], "JPEG"))
    sample = dataclasses.replace(sample, images=tuple(images))
    sample = crop_regions(normalise_boxes(sample, "normalized"), CropSettings())
    if with_replay:
        sample = replay.compute_replay(sample, PRESET, with_pixels=pixels)
    return release_pixels(sample)


def _with_features(sample: Sample, region: int) -> Sample:
    regions = list(sample.regions)
    features = np.arange(12, dtype=np.float16).reshape(3, 4)
    regions[region] = dataclasses.replace(
        regions[region], replay={**regions[region].replay, "replay_features": features}
    )
    return dataclasses.replace(sample, regions=tuple(regions))


def _target(root, max_samples: int = 1000, max_bytes: int = 1 << 30) -> ShardTarget:
    return ShardTarget(OutputLayout(str(root)), ShardLimits(max_samples, max_bytes), "v000001")


def _drive(fn, elements) -> list:
    fn.setup()
    fn.start_bundle()
    out = []
    for element in elements:
        out += list(fn.process(element))
    out += [w.value for w in fn.finish_bundle()]
    return out


def _files(out: list) -> list[WrittenFile]:
    return [o for o in out if isinstance(o, WrittenFile)]


def test_members_are_images_then_the_json_then_each_region_with_its_replay_arrays():
    sample = _with_features(_sample(0, second_image=True), region=0)
    key = sample.sample_id
    assert [name for name, _ in members(sample)] == [
        f"{key}.image.png",
        f"{key}.image1.jpg",
        f"{key}.json",
        f"{key}.r000.png",
        f"{key}.r000.replay_idx.npy",
        f"{key}.r000.replay.npy",
        f"{key}.r000.replay_feat.npy",
        f"{key}.r001.png",
        f"{key}.r001.replay_idx.npy",
        f"{key}.r001.replay.npy",
    ]


def test_a_sample_without_regions_has_its_image_and_json_only():
    sample = _sample(0, boxes=())
    assert [name for name, _ in members(sample)] == [f"{sample.sample_id}.image.png", f"{sample.sample_id}.json"]


def test_without_replay_pixels_or_replay_there_are_no_replay_members():
    no_pixels = _sample(0, pixels=False)
    names = [name.split(".", 1)[1] for name, _ in members(no_pixels)]
    assert names == ["image.png", "json", "r000.png", "r000.replay_idx.npy", "r001.png", "r001.replay_idx.npy"]
    no_replay = _sample(0, with_replay=False)
    assert [name.split(".", 1)[1] for name, _ in members(no_replay)] == ["image.png", "json", "r000.png", "r001.png"]


def test_member_bytes_are_the_stored_images_crops_and_arrays():
    sample = _with_features(_sample(0), region=1)
    data = {name.split(".", 1)[1]: blob for name, blob in members(sample)}
    assert data["image.png"] == sample.images[0].encoded.data
    assert data["r000.png"] == sample.regions[0].crop.data and data["r001.png"] == sample.regions[1].crop.data
    indices = np.load(io.BytesIO(data["r000.replay_idx.npy"]))
    assert np.array_equal(indices, sample.regions[0].replay["replay_token_indices"])
    pixels = np.load(io.BytesIO(data["r000.replay.npy"]))
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert list(pixels.shape) == sample.regions[0].replay["replay_pixels_shape"]
    features = np.load(io.BytesIO(data["r001.replay_feat.npy"]))
    assert features.dtype == np.float16 and features.shape == (3, 4)


def test_the_json_member_is_the_record_with_crop_names_and_replay_geometry():
    sample = _sample(0)
    names = dict(members(sample))
    doc = json.loads(names[f"{sample.sample_id}.json"])
    expected = record_fields(sample)
    assert {k: v for k, v in doc.items() if k != "regions"} == {k: v for k, v in expected.items() if k != "regions"}
    assert [r["crop"] for r in doc["regions"]] == ["r000.png", "r001.png"]
    first = sample.regions[0].replay
    assert {k: doc["regions"][0][k] for k in REPLAY_JSON_FIELDS} == {k: first[k] for k in REPLAY_JSON_FIELDS}
    assert "replay_token_indices" not in doc["regions"][0] and "replay_pixels" not in doc["regions"][0]


def test_members_does_not_change_the_sample():
    sample = _sample(0)
    before = record_fields(sample)
    members(sample)
    members(sample)
    assert record_fields(sample) == before


def test_the_writer_publishes_one_tar_per_chunk_with_its_sample_count(tmp_path):
    target = _target(tmp_path / "out")
    samples = [_sample(0), _sample(1, boxes=()), _sample(0, "c1")]
    out = _drive(WebDatasetShardWriterFn(target), samples)
    files = _files(out)
    assert [(f.kind, f.path, f.rows, f.unit) for f in files] == [
        ("webdataset", "webdataset/v000001-c0-000000.tar", 2, "v000001-c0"),
        ("webdataset", "webdataset/v000001-c1-000000.tar", 1, "v000001-c1"),
    ]
    assert isinstance(out[-1], StageTimes) and "write_webdataset" in dict(out[-1].us)
    for info in files:
        data = (tmp_path / "out" / info.path).read_bytes()
        assert (info.bytes, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    with tarfile.open(tmp_path / "out" / files[0].path) as tar:
        names = tar.getnames()
    assert names == [name for s in samples[:2] for name, _ in members(s)]


def test_the_invariants_header_reader_lists_the_tars_as_tarfile_does(tmp_path):
    samples = [_with_features(_sample(0, second_image=True), 1), _sample(1), _sample(2, boxes=())]
    (info,) = _files(_drive(WebDatasetShardWriterFn(_target(tmp_path / "out")), samples))
    path = tmp_path / "out" / info.path
    with tarfile.open(path) as tar, open(path, "rb") as f:
        assert list(member_names(f)) == tar.getnames() == [name for s in samples for name, _ in members(s)]


def test_tar_headers_are_fixed(tmp_path):
    target = _target(tmp_path / "out")
    (info,) = _files(_drive(WebDatasetShardWriterFn(target), [_sample(0)]))
    with tarfile.open(tmp_path / "out" / info.path) as tar:
        headers = {(m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname, m.type) for m in tar.getmembers()}
    assert headers == {(0, 0o644, 0, 0, "", "", tarfile.REGTYPE)}


def test_two_writes_of_the_same_samples_give_byte_identical_tars(tmp_path):
    samples = [_with_features(_sample(0, second_image=True), 1), _sample(1), _sample(2, boxes=())]
    one = _files(_drive(WebDatasetShardWriterFn(_target(tmp_path / "a")), samples))
    two = _files(_drive(WebDatasetShardWriterFn(_target(tmp_path / "b")), samples))
    assert [f.path for f in one] == [f.path for f in two] == ["webdataset/v000001-c0-000000.tar"]
    assert (tmp_path / "a" / one[0].path).read_bytes() == (tmp_path / "b" / two[0].path).read_bytes()
    assert one[0].sha256 == two[0].sha256


def test_the_webdataset_library_reads_the_samples_back(tmp_path):
    samples = [_with_features(_sample(0, second_image=True), 0), _sample(1, pixels=False), _sample(2, boxes=())]
    (info,) = _files(_drive(WebDatasetShardWriterFn(_target(tmp_path / "out")), samples))
    read = list(wds.WebDataset(str(tmp_path / "out" / info.path), shardshuffle=False).decode())
    assert [r["__key__"] for r in read] == [s.sample_id for s in samples]
    first = read[0]
    assert sorted(k for k in first if not k.startswith("__")) == sorted(
        [
            "image.png",
            "image1.jpg",
            "json",
            "r000.png",
            "r000.replay_idx.npy",
            "r000.replay.npy",
            "r000.replay_feat.npy",
            "r001.png",
            "r001.replay_idx.npy",
            "r001.replay.npy",
        ]
    )
    assert first["json"]["sample_id"] == samples[0].sample_id and first["json"]["num_regions"] == 2
    assert first["image.png"] == samples[0].images[0].encoded.data
    assert np.array_equal(first["r001.replay_idx.npy"], samples[0].regions[1].replay["replay_token_indices"])
    assert first["r000.replay_feat.npy"].shape == (3, 4)
    assert sorted(k for k in read[1] if not k.startswith("__")) == [
        "image.png",
        "json",
        "r000.png",
        "r000.replay_idx.npy",
        "r001.png",
        "r001.replay_idx.npy",
    ]
    assert sorted(k for k in read[2] if not k.startswith("__")) == ["image.png", "json"]
    pixels = list(wds.WebDataset(str(tmp_path / "out" / info.path), shardshuffle=False).decode("rgb8"))
    assert pixels[0]["image.png"].shape == (40, 60, 3)
    assert pixels[0]["r000.png"].shape == (16, 24, 3), "the crop of [0.1, 0.2, 0.5, 0.6] on 60x40: 24x16 pixels"


def test_tar_parts_line_up_with_parquet_parts(tmp_path):
    """Both writers roll parts on the same payload size, so a sample's tar and Parquet part share a name."""
    samples = [_sample(row) for row in range(5)]
    target = _target(tmp_path / "out", max_bytes=2 * payload_bytes(samples[0]) + 1)
    tars = _files(_drive(WebDatasetShardWriterFn(target), samples))
    parquet = [f for f in _files(_drive(ParquetShardWriterFn(target), samples)) if f.kind == "parquet_samples"]
    stems = [f.path.rsplit("/", 1)[1].split(".")[0] for f in tars]
    assert stems == ["v000001-c0-000000", "v000001-c0-000002", "v000001-c0-000004"]
    assert stems == [f.path.rsplit("/", 1)[1].split(".")[0] for f in parquet]
    assert [f.rows for f in tars] == [f.rows for f in parquet] == [2, 2, 1]
