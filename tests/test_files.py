"""AtomicFile on a local directory and on gs:// (real emulator): nothing under the final name until commit."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.files import AtomicFile, join, relative, write_text
from beam_pipelines.layout import OutputLayout


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
    layout = OutputLayout(output)
    final = join(output, "webdataset", "c-000.tar")
    first = AtomicFile(final, layout.scratch)
    first.write(b"old")
    first.commit()
    second = AtomicFile(final, layout.scratch)
    with tarfile.open(fileobj=second, mode="w") as tar:  # the WebDataset writer's pattern
        for i in range(50):
            info = tarfile.TarInfo(f"k{i}.bin")
            info.size = 100_000
            tar.addfile(info, io.BytesIO(bytes([i]) * 100_000))
    assert not second.closed and second.temp.startswith(layout.scratch)
    assert read(final) == b"old", "the half-written shard must not replace the published one"
    second.commit()
    with tarfile.open(fileobj=io.BytesIO(read(final))) as tar:
        assert len(tar.getmembers()) == 50
    assert second.size == len(read(final))
    assert not FileSystems.exists(second.temp)
    assert second.written(output, "webdataset", 50).path == "webdataset/c-000.tar"


@pytest.mark.parametrize("scratch", [True, False])
def test_abort_leaves_nothing(output, scratch):
    f = AtomicFile(join(output, "rejected", "c-000.jsonl"), OutputLayout(output).scratch if scratch else None)
    f.write(b"{}\n")
    f.abort()
    assert not FileSystems.exists(f.final) and not FileSystems.exists(f.temp)


def test_gcs_upload_is_invisible_until_committed(gcs):
    output = f"{gcs.bucket('atomic-file')}/invisible"
    for name, scratch in (("scratch", OutputLayout(output).scratch), ("direct", None)):
        f = AtomicFile(join(output, "parquet", "samples", f"{name}.parquet"), scratch)
        f.write(b"x" * 9_000_000)
        f.flush()
        assert not FileSystems.exists(f.temp) and not FileSystems.exists(f.final)
        f.commit()
        assert len(read(f.final)) == 9_000_000


def test_without_scratch_a_local_file_is_written_beside_its_final_name_hidden(tmp_path):
    final = str(tmp_path / "images" / "a.png")
    f = AtomicFile(final, digest=False)
    f.write(b"png")
    assert os.path.dirname(f.temp) == os.path.dirname(final) and os.path.basename(f.temp).startswith(".a.png.")
    assert not os.path.exists(final)
    f.commit()
    assert read(final) == b"png" and os.listdir(tmp_path / "images") == ["a.png"] and f.sha256 == ""


def test_small_text_files_and_relative_paths(tmp_path):
    path = str(tmp_path / "versions" / "v000001" / "notes.json")
    write_text(path, "{}\n", str(tmp_path / "_tmp"))
    assert read(path) == b"{}\n"
    assert relative(str(tmp_path), path) == "versions/v000001/notes.json"
    with pytest.raises(ValueError):
        relative("/elsewhere", path)
