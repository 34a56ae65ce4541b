"""Member names from tar headers alone: the same names as `tarfile` lists, in every format it writes, and the same
end of the listing on a damaged file."""

import io
import tarfile

import pytest

from beam_pipelines.sinks.tar_members import member_names

NAMES = [
    "k1.image.jpg",
    "k1.json",
    "d" * 120 + ".r000.png",  # past ustar's 100 bytes: a pax path (or a GNU long name), or a ustar prefix
    "dir/" + "e" * 99 + ".json",
    "ключ.json",  # not ASCII: a pax path in pax format
    "folder/",
]


def _tar(fmt: int, names: list[str] = NAMES, sizes: tuple[int, ...] = (0, 1, 511, 512, 513, 70_000)) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i, name in enumerate(names):
            info = tarfile.TarInfo(name)
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            data = bytes([i]) * sizes[i % len(sizes)]
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tarfiles_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [m.name for m in tar]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu"])
def test_the_names_are_tarfiles(fmt):
    data = _tar(fmt)
    assert list(member_names(io.BytesIO(data))) == _tarfiles_names(data) == [n.rstrip("/") for n in NAMES]


def test_ustar_names_joined_from_prefix_and_name():
    names = ["a" * 90 + "/" + "b" * 90 + ".json", "short.json"]
    data = _tar(tarfile.USTAR_FORMAT, names)
    assert list(member_names(io.BytesIO(data))) == _tarfiles_names(data) == names


def test_a_pax_global_header_is_not_a_member():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}) as tar:
        tar.addfile(tarfile.TarInfo("only.json"))
    assert list(member_names(io.BytesIO(buf.getvalue()))) == ["only.json"]


def test_an_empty_file_and_end_blocks_list_nothing():
    assert list(member_names(io.BytesIO(b""))) == []
    assert list(member_names(io.BytesIO(b"\0" * 10240))) == []


@pytest.mark.parametrize("cut", [700, 512 * 3 + 100])
def test_a_truncated_file_lists_what_tarfile_lists(cut):
    data = _tar(tarfile.PAX_FORMAT)[:cut]
    assert list(member_names(io.BytesIO(data))) == _tarfiles_names(data)


def test_a_damaged_header_ends_the_listing_there():
    data = bytearray(_tar(tarfile.PAX_FORMAT, ["a.json", "b.json", "c.json"], sizes=(10,)))
    data[1024 + 3] ^= 0x20  # the second member's name: its checksum no longer holds
    assert list(member_names(io.BytesIO(bytes(data)))) == _tarfiles_names(bytes(data)) == ["a.json"]
