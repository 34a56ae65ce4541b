"""A tar stream of regular files with fixed headers (mode 0644, owner 0, mtime 0): what a WebDataset shard is.

`tarfile` builds every header in Python through `TarInfo`, its pax checks and its field encoders, for each of the
eight or more members a sample has (figures in CHANGELOG.md). Here a member whose name is ASCII and fits the ustar
name field gets its header from one template, the same 512 bytes `tarfile` writes for it; any other name gets
`tarfile`'s own header (a pax record before it). The end is `tarfile`'s too: two zero blocks, then zeros up to a
whole record. A shard written here is byte for byte the one `tarfile` writes.
"""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from beam_pipelines.sinks.tar_members import BLOCK, CHECKSUM, NAME, SIZE

RECORD = tarfile.RECORDSIZE
_MAX_SIZE = 8**11  # the largest size the 12-byte octal field holds; past it tarfile adds a pax record


def _tarfile_header(name: str, size: int) -> bytes:
    """`tarfile`'s header for a regular file with the shards' fixed fields (a pax record first where needed)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _blank() -> bytearray:
    """The template: `tarfile`'s header with name and size emptied and the checksum field counted as spaces."""
    blank = bytearray(_tarfile_header("x", 0))
    blank[NAME] = bytes(NAME.stop)
    blank[SIZE] = bytes(SIZE.stop - SIZE.start)
    blank[CHECKSUM] = b" " * (CHECKSUM.stop - CHECKSUM.start)
    return blank


_BLANK = _blank()
_BLANK_SUM = sum(_BLANK)


def _header(name: str, size: int) -> bytearray:
    """The ustar header `tarfile` writes for a regular file of that name and size (a name that `fits`)."""
    raw = name.encode("ascii")
    digits = b"%011o\0" % size
    header = _BLANK.copy()
    header[0 : len(raw)] = raw
    header[SIZE] = digits
    header[CHECKSUM] = b"%06o\0 " % (_BLANK_SUM + sum(raw) + sum(digits))
    return header


def fits(name: str, size: int) -> bool:
    """Whether `tarfile` would write a plain ustar header for the member (no pax record before it)."""
    return name.isascii() and len(name) <= NAME.stop and size < _MAX_SIZE


class TarWriter:
    """Members appended to `f` in order; `close` ends the archive (and leaves `f` open)."""

    def __init__(self, f: BinaryIO):
        self.file = f
        self.offset = 0

    def add(self, name: str, data: bytes) -> None:
        size = len(data)
        header = _header(name, size) if fits(name, size) else _tarfile_header(name, size)
        self.file.write(header)
        self.file.write(data)
        padding = -size % BLOCK
        if padding:
            self.file.write(bytes(padding))
        self.offset += len(header) + size + padding

    def close(self) -> None:
        end = self.offset + 2 * BLOCK
        self.file.write(bytes(2 * BLOCK + (-end % RECORD)))
        self.offset = end + (-end % RECORD)
