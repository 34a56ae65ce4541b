"""AtomicFile on a local directory and on gs:// (real emulator): nothing under the final name until commit."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.records import ErrorInfo, Provenance, Rejection
from beam_pipelines.sinks.shards import TMP_DIR, AtomicFile, DeadLetterWriterFn, ShardLimits, ShardTarget, join


@pytest.fixture(params=["local", "gcs"])
def output(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out")
    emulator = request.getfixturevalue("gcs")
    return f"{emulator.bucket('atomic-file')}/{request.node.originalname}"


def read(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def test_a_shard_appears_whole_at_commit_and_replaces_the_old_one(output):
    final = join(output, "webdataset", "c-000.tar")
    first = AtomicFile(output, final)
    first.write(b"old")
    first.commit()
    second = AtomicFile(output, final)
    with tarfile.open(fileobj=second, mode="w") as tar:  # the WebDataset writer's pattern
        for i in range(50):
            info = tarfile.TarInfo(f"k{i}.bin")
            info.size = 100_000
            tar.addfile(info, io.BytesIO(bytes([i]) * 100_000))
    assert not second.closed and second.temp.startswith(join(output, TMP_DIR))
    assert read(final) == b"old", "the half-written shard must not replace the published one"
    second.commit()
    with tarfile.open(fileobj=io.BytesIO(read(final))) as tar:
        assert len(tar.getmembers()) == 50
    assert second.size == len(read(final))
    assert not FileSystems.exists(second.temp)


def test_abort_leaves_nothing(output):
    f = AtomicFile(output, join(output, "rejected", "c-000.jsonl"))
    f.write(b"{}\n")
    f.abort()
    assert not FileSystems.exists(f.final) and not FileSystems.exists(f.temp)


def test_gcs_upload_is_invisible_until_committed(gcs):
    output = f"{gcs.bucket('atomic-file')}/invisible"
    f = AtomicFile(output, join(output, "parquet", "samples", "c-000.parquet"))
    f.write(b"x" * 9_000_000)
    f.flush()
    assert not FileSystems.exists(f.temp) and not FileSystems.exists(f.final)
    f.commit()
    assert len(read(f.final)) == 9_000_000


def test_a_chunk_that_comes_back_in_a_bundle_continues_its_parts(tmp_path):
    """Records of a chunk normally arrive together; if another chunk's records interleave, nothing is overwritten."""
    output = str(tmp_path / "out")
    writer = DeadLetterWriterFn(ShardTarget(output, ShardLimits(max_samples=2, max_bytes=1 << 30), "v1"))
    writer.setup()
    writer.start_bundle()
    order = ["a", "a", "a", "b", "a"]
    infos = []
    for row, chunk in enumerate(order):
        error = ErrorInfo("parse", "bad", f"row {row}")
        infos += writer.process(Rejection("vgr", Provenance("in.jsonl", row, chunk), (error,), record={}))
    infos += [w.value for w in writer.finish_bundle()]
    names = sorted(info.path.rsplit("/", 1)[1] for info in infos)
    assert names == ["v1-a-000.jsonl", "v1-a-001.jsonl", "v1-a-002.jsonl", "v1-b-000.jsonl"]
    rows = []
    for info in infos:
        with FileSystems.open(info.path) as f:
            rows += [json.loads(line)["provenance"]["row"] for line in f.read().splitlines()]
    assert sorted(rows) == list(range(len(order))), "every rejection is in exactly one file"
