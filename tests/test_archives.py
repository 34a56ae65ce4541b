"""`vgr-etl stage-images` on tiny archives built here: nested tar.gz folders, a zip split into `images.zip_a?`
parts, members that try to escape; locally and on a real GCS emulator; reruns skip what is there."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from beam_pipelines import progress
from beam_pipelines.archives import (
    Archive,
    ConcatenatedParts,
    group_archives,
    member_path,
    plan_tasks,
    stage_images,
)
from beam_pipelines.cli import main
from beam_pipelines.records import RejectedError
from tests.conftest import run_cli
from tests.helpers.outputs import snapshot

TAR_FILES = {
    "llava_next_raw_format/chartqa/train/png/a.png": b"A" * 3000,
    "llava_next_raw_format/coco/train2017/b.jpg": b"B" * 70_000,
    "llava_next_raw_format/docvqa/images/deep/er/c.png": b"C" * 10,
}
TAR2_FILES = {"llava_next_raw_format/ai2d/abc_images/d.png": b"D" * 123}
ZIP_FILES = {f"images/Geometry3K/{i}.png": bytes([i]) * (1000 + i) for i in range(12)}


def build_tar(path: Path, files: dict[str, bytes], hostile: bool) -> None:
    with tarfile.open(path, "w:gz") as tf:
        folder = tarfile.TarInfo("llava_next_raw_format")
        folder.type = tarfile.DIRTYPE
        tf.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if hostile:
            for name in ("../escaped.png", "/abs/escaped.png", "llava_next_raw_format/../../up.png"):
                info = tarfile.TarInfo(name)
                info.size = 1
                tf.addfile(info, io.BytesIO(b"x"))
            link = tarfile.TarInfo("llava_next_raw_format/link.png")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(link)
            hard = tarfile.TarInfo("llava_next_raw_format/hard.png")
            hard.type, hard.linkname = tarfile.LNKTYPE, "llava_next_raw_format/chartqa/train/png/a.png"
            tf.addfile(hard)


def build_split_zip(folder: Path, files: dict[str, bytes], parts: int = 3) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("../outside.png", b"x")
        link = zipfile.ZipInfo("images/link.png")
        link.external_attr = (0o120777 << 16) | 0
        zf.writestr(link, "/etc/passwd")
    data = buf.getvalue()
    step = -(-len(data) // parts)
    for i in range(parts):
        (folder / f"images.zip_a{'abcdefgh'[i]}").write_bytes(data[i * step : (i + 1) * step])
    return data


@pytest.fixture
def archives(tmp_path) -> Path:
    folder = tmp_path / "archives"
    folder.mkdir()
    build_tar(folder / "llava_next_raw_format_images_1.tar.gz", TAR_FILES, hostile=True)
    build_tar(folder / "llava_next_raw_format_images_2.tar.gz", TAR2_FILES, hostile=False)
    build_split_zip(folder, ZIP_FILES)
    return folder


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


EXPECTED = {**TAR_FILES, **TAR2_FILES, **ZIP_FILES}


def test_archives_are_grouped_and_parts_ordered():
    got = group_archives(["d/images.zip_ab", "d/x.tar.gz", "d/images.zip_aa", "d/y.tgz", "d/other.zip"])
    assert got == [
        Archive("d/images.zip", "zip", ("d/images.zip_aa", "d/images.zip_ab")),
        Archive("d/other.zip", "zip", ("d/other.zip",)),
        Archive("d/x.tar.gz", "tar", ("d/x.tar.gz",)),
        Archive("d/y.tgz", "tar", ("d/y.tgz",)),
    ]
    with pytest.raises(ValueError, match=r"not a \.tar"):
        group_archives(["d/readme.txt"])


@pytest.mark.parametrize("name", ["../a.png", "/abs/a.png", "a/../../b.png", "C:\\a.png", ""])
def test_escaping_member_names_are_refused(name):
    with pytest.raises(RejectedError):
        member_path(name)
    assert member_path("./a//b/c.png") == "a/b/c.png"


def test_concatenated_parts_read_and_seek_like_one_file(tmp_path):
    data = bytes(range(256)) * 40
    paths = []
    for i, cut in enumerate([(0, 1000), (1000, 1001), (1001, 7000), (7000, len(data))]):
        paths.append(str(tmp_path / f"p{i}"))
        Path(paths[-1]).write_bytes(data[cut[0] : cut[1]])
    stream = ConcatenatedParts(tuple(paths))
    assert stream.read() == data
    for pos, n in [(0, 10), (995, 10), (1000, 1), (999, 3000), (len(data) - 5, 100), (len(data) + 3, 4)]:
        stream.seek(pos)
        assert stream.read(n) == data[pos : pos + n]
    stream.seek(-7, io.SEEK_END)
    assert stream.read() == data[-7:]


def test_a_zip_is_split_into_member_ranges_for_the_workers(archives):
    zip_archive = next(a for a in group_archives([str(p) for p in archives.iterdir()]) if a.kind == "zip")
    tasks = plan_tasks(zip_archive, 4)
    assert len(tasks) >= 3 and tasks[0].start == 0 and tasks[-1].stop == len(ZIP_FILES) + 2
    assert all(a.stop == b.start for a, b in itertools.pairwise(tasks))


@pytest.mark.slow
def test_stage_locally_in_parallel_then_rerun_skips(archives, tmp_path):
    dest = tmp_path / "root"
    report = stage_images([str(archives / "*")], str(dest), workers=2)
    assert tree(dest) == EXPECTED
    assert (report["written"], report["skipped"], report["errors"]) == (len(EXPECTED), 0, 0)
    refused = {r["member"]: r["reason"] for a in report["archives"] for r in a["refused"]}
    assert set(refused) == {
        "../escaped.png",
        "/abs/escaped.png",
        "llava_next_raw_format/../../up.png",
        "llava_next_raw_format/link.png",
        "llava_next_raw_format/hard.png",
        "../outside.png",
        "images/link.png",
    }
    assert "symlink" in refused["images/link.png"] and "hard link" in refused["llava_next_raw_format/hard.png"]
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "outside.png").exists()
    assert report["bytes_written"] == sum(len(v) for v in EXPECTED.values())

    (dest / "images" / "Geometry3K" / "3.png").write_bytes(b"truncated")
    again = stage_images([str(archives / "*.tar.gz"), str(archives / "images.zip_*")], str(dest), workers=1)
    assert (again["written"], again["skipped"]) == (1, len(EXPECTED) - 1)
    assert tree(dest) == EXPECTED
    assert not [p for p in dest.rglob("*") if p.name.endswith(".partial")]


def test_a_symlink_in_the_destination_does_not_lead_out(archives, tmp_path):
    outside, dest = tmp_path / "outside", tmp_path / "root"
    outside.mkdir()
    dest.mkdir()
    os.symlink(outside, dest / "images")
    report = stage_images([str(archives / "images.zip_*")], str(dest), workers=1)
    assert report["written"] == 0 and not list(outside.iterdir())
    assert sum("through a symlink" in r["reason"] for a in report["archives"] for r in a["refused"]) == len(ZIP_FILES)


@pytest.mark.slow
def test_stage_from_and_onto_gcs(archives, gcs, tmp_path):
    url = gcs.upload_tree(archives, f"{gcs.bucket('stage-archives')}/upstream")
    dest = f"{gcs.bucket('stage-root')}/root"
    report = stage_images([f"{url}/*"], dest, workers=2)
    assert (report["written"], report["refused"], report["errors"]) == (len(EXPECTED), 7, 0)
    assert tree(gcs.download_tree(dest, tmp_path / "down")) == EXPECTED
    again = stage_images([f"{url}/*"], dest, workers=1)
    assert (again["written"], again["skipped"]) == (0, len(EXPECTED))


@pytest.mark.slow
def test_command_line_report_and_exit_codes(archives, tmp_path, capsys):
    dest, report_path = tmp_path / "root", tmp_path / "report.json"
    argv = ["stage-images", "--archive", str(archives / "*.tar.gz"), "--dest", str(dest), "--workers", "1"]
    assert main([*argv, "--report", str(report_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(report_path.read_text()) and printed["written"] == len(TAR_FILES) + len(TAR2_FILES)
    assert main(["stage-images", "--archive", str(tmp_path / "none*.tgz"), "--dest", str(dest)]) == 2
    assert "matched no files" in capsys.readouterr().err
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    assert main(["stage-images", "--archive", str(tmp_path / "broken.tar.gz"), "--dest", str(dest)]) == 1


def test_progress_counts_every_member_of_every_task(archives, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    zip_data = b"".join(p.read_bytes() for p in sorted(archives.glob("images.zip_*")))
    members = len(zipfile.ZipFile(io.BytesIO(zip_data)).infolist())
    tasks = len(plan_tasks(group_archives([str(p) for p in archives.glob("images.zip_*")])[0], 2))
    argv = ["stage-images", "--archive", str(archives / "images.zip_*"), "--dest", str(tmp_path / "root")]
    assert main([*argv, "--workers", "2", "--progress=log"]) == 0
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vgr-etl: stage-images: ")][-1]
    assert last.startswith(f"vgr-etl: stage-images: {members}/{members} members (100%), {tasks}/{tasks} tasks, ")
    assert tasks == 2


@pytest.mark.slow
def test_a_staged_split_zip_is_an_image_root_for_the_pipeline(demo, tmp_path):
    run = demo["visualprm_raw"]
    data = Path(run.image_root).read_bytes()
    parts = tmp_path / "parts"
    parts.mkdir()
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i, start in enumerate(range(0, len(data), 5000)):
        (parts / f"images.zip_{letters[i // 26]}{letters[i % 26]}").write_bytes(data[start : start + 5000])
    assert stage_images([str(parts / "images.zip_*")], str(tmp_path / "root"), workers=1)["errors"] == 0
    staged = ["--source", run.source, "--input", run.inputs[0], "--image_root", str(tmp_path / "root")]
    assert run_cli(*staged, "--output", str(tmp_path / "a"), "--max_reject_fraction=0.5") == 0
    assert run_cli(*run.argv(str(tmp_path / "b")), "--max_reject_fraction=0.5") == 0
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def plain_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


DAMAGE_FILES = {f"images/{i}.png": random.Random(i).randbytes(700) for i in range(4)}  # incompressible


def corrupt_header(tar: bytes) -> bytes:
    """The third member's header damaged (its checksum no longer matches): `tarfile` would stop there quietly."""
    header = 2 * (512 + 1024)  # each member: one header block and 700 bytes of data padded to 1024
    return tar[:header] + b"\xff" * 8 + tar[header + 8 :]


def bad_gzip_checksum(data: bytes) -> bytes:
    """A well-formed tar whose gzip trailer has the wrong CRC: what a flipped bit in the data looks like."""
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("images_1.tar.gz", lambda: gzipped(corrupt_header(plain_tar(DAMAGE_FILES)))),
        ("images_1.tar", lambda: corrupt_header(plain_tar(DAMAGE_FILES))),
        ("images_1.tar.gz", lambda: bad_gzip_checksum(gzipped(plain_tar(DAMAGE_FILES)))),
        ("images_1.tar", lambda: plain_tar(DAMAGE_FILES) + b"\x00" * 1024 + b"junk" + b"\x00" * 508),
    ],
)
def test_a_damaged_tar_is_an_error_and_leaves_nothing_it_wrote(tmp_path, name, damage):
    archive, dest = tmp_path / name, tmp_path / "root"
    archive.write_bytes(damage())
    report = stage_images([str(archive)], str(dest), workers=1)
    [entry] = report["archives"]
    assert report["errors"] == 1 and ("corrupt" in entry["errors"][0] or "CRC" in entry["errors"][0])
    assert (report["written"], report["bytes_written"]) == (0, 0)
    assert not [p for p in dest.rglob("*") if p.is_file()]  # a rerun with a good copy writes everything
    archive.write_bytes(plain_tar(DAMAGE_FILES) if name.endswith(".tar") else gzipped(plain_tar(DAMAGE_FILES)))
    again = stage_images([str(archive)], str(dest), workers=1)
    assert (again["written"], again["errors"]) == (len(DAMAGE_FILES), 0) and tree(dest) == DAMAGE_FILES


def test_a_truncated_tar_keeps_the_whole_files_before_the_cut(tmp_path):
    archive, dest = tmp_path / "images_1.tar.gz", tmp_path / "root"
    files = {f"images/{i}.png": random.Random(i).randbytes(3000) for i in range(40)}  # tarfile reads 10 KiB ahead
    data = gzipped(plain_tar(files))
    archive.write_bytes(data[: len(data) * 2 // 3])
    report = stage_images([str(archive)], str(dest), workers=1)
    assert report["errors"] == 1 and "EOFError" in report["archives"][0]["errors"][0]
    assert 10 < report["written"] < len(files)
    assert all(files[rel] == data for rel, data in tree(dest).items())


def zip_bytes(files: dict[str, bytes], method: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


ZIP_MEMBERS = {"images/a.png": b"a" * 4000, "images/b.png": bytes(range(256)) * 16, "images/c.png": b"c" * 4000}


def zip_with_damaged_member(path: Path, method: int) -> Path:
    """A zip whose member `images/b.png` has damaged data (its header and the others intact)."""
    data = bytearray(zip_bytes(ZIP_MEMBERS, method))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("images/b.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10 : start + 20] = b"\xff" * 10
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_damaged_zip_member_is_reported_and_the_next_ones_staged(tmp_path, method):
    archive = zip_with_damaged_member(tmp_path / "images.zip", method)
    report = stage_images([str(archive)], str(tmp_path / "root"), workers=1)
    [entry] = report["archives"]
    assert report["errors"] == 1 and entry["errors"][0].startswith("images/b.png: ")
    assert tree(tmp_path / "root") == {k: v for k, v in ZIP_MEMBERS.items() if k != "images/b.png"}


@pytest.mark.slow
def test_a_damaged_member_leaves_no_object_on_gcs(tmp_path, gcs):
    archive = zip_with_damaged_member(tmp_path / "images.zip", zipfile.ZIP_STORED)
    dest = f"{gcs.bucket('stage-damaged')}/root"
    report = stage_images([str(archive)], dest, workers=1)
    assert report["errors"] == 1 and gcs.names(dest) == ["images/a.png", "images/c.png"]


@pytest.mark.slow
def test_an_unreadable_zip_fails_alone_with_a_report(archives, tmp_path, capsys):
    missing = tmp_path / "missing"
    missing.mkdir()
    for part in sorted(archives.glob("images.zip_*"))[:-1]:  # the last part was not downloaded
        (missing / part.name).write_bytes(part.read_bytes())
    dest, report_path = tmp_path / "root", tmp_path / "report.json"
    argv = ["stage-images", "--archive", str(missing / "images.zip_*"), "--archive", str(archives / "*.tar.gz")]
    assert main([*argv, "--dest", str(dest), "--workers", "2", "--report", str(report_path)]) == 1
    report = json.loads(report_path.read_text())
    errors = {a["archive"]: a.get("errors", []) for a in report["archives"]}
    assert len(errors[str(missing / "images.zip")]) == 1 and "BadZipFile" in errors[str(missing / "images.zip")][0]
    assert report["written"] == len(TAR_FILES) + len(TAR2_FILES)
    assert "1 archive errors" in capsys.readouterr().err


def _tar(path: Path, entries: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_a_tar_member_conflicting_with_a_file_is_reported_and_the_rest_staged(tmp_path):
    archive = tmp_path / "a.tar.gz"
    entries = [("r/c", b"a file"), ("r/c/d.png", b"under the file"), ("r/dup.png", b"first"), ("r/e.png", b"E")]
    _tar(archive, [*entries, ("r/dup.png", b"lastt")])  # same size as the first copy: the last one still wins
    report = stage_images([str(archive)], str(tmp_path / "root"), workers=1)
    assert tree(tmp_path / "root") == {"r/c": b"a file", "r/dup.png": b"lastt", "r/e.png": b"E"}
    (entry,) = report["archives"]
    assert [r["member"] for r in entry["refused"]] == ["r/c/d.png"] and "conflicts" in entry["refused"][0]["reason"]
    assert "errors" not in entry and report["errors"] == 0 and report["written"] == 3


def test_zip_entries_that_are_devices_or_bombs_are_refused(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        device = zipfile.ZipInfo("images/dev.png")
        device.external_attr = (0o020644 << 16) | 0  # a character device
        zf.writestr(device, b"")
        zf.writestr("images/bomb.png", b"\0" * 2_000_000)
        zf.writestr("images/ok.png", os.urandom(100))
    report = stage_images([str(archive)], str(tmp_path / "root"), workers=1)
    reasons = {r["member"]: r["reason"] for a in report["archives"] for r in a["refused"]}
    assert "device, FIFO or socket" in reasons["images/dev.png"] and "zip bomb" in reasons["images/bomb.png"]
    assert list(tree(tmp_path / "root")) == ["images/ok.png"]
