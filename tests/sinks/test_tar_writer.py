"""The shard tar writer: byte for byte what `tarfile` writes for the same members, whatever the name and size, and
read back by `tarfile` and by the header-only lister."""

import io
import tarfile

import pytest

from beam_pipelines.sinks.tar_members import member_names
from beam_pipelines.sinks.tar_writer import TarWriter, fits

NAMES = [
    "k1.image.jpg",
    "k1.json",
    "n" * 100,  # exactly ustar's name field: no pax record
    "d" * 101 + ".r000.png",  # past it: tarfile puts the name in a pax record
    "ключ.json",  # not ASCII: a pax record too
    "dir/sub/k2.r001.replay_idx.npy",
]
SIZES = (0, 1, 511, 512, 513, 10_240, 70_001)


def _members(names=NAMES, sizes=SIZES) -> list[tuple[str, bytes]]:
    return [(name, bytes([i % 251]) * sizes[i % len(sizes)]) for i, name in enumerate(names)]


def _tarfiles(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ours(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    writer = TarWriter(buf)
    for name, data in members:
        writer.add(name, data)
    writer.close()
    assert writer.offset == len(buf.getvalue())
    return buf.getvalue()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_one_member_is_tarfiles_bytes(name, size):
    members = [(name, b"\xab" * size)]
    assert _ours(members) == _tarfiles(members)


def test_an_archive_of_many_members_is_tarfiles_bytes_and_reads_back():
    members = _members(NAMES * 7, SIZES[::-1])
    data = _ours(members)
    assert data == _tarfiles(members)
    assert len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == members
    assert list(member_names(io.BytesIO(data))) == [name for name, _ in members]


def test_an_empty_archive_is_tarfiles_bytes():
    assert _ours([]) == _tarfiles([]) == bytes(tarfile.RECORDSIZE)


def test_only_plain_ustar_members_take_the_template():
    assert fits("a" * 100, 10)
    assert not fits("a" * 101, 10)
    assert not fits("é", 10)
    assert not fits("a", 8**11)  # the octal size field is full: tarfile adds a pax size record
