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

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_NAME = 100
_MAX_SIZE = 8**11  # the largest size the 12-byte octal field holds; past it tarfile adds a pax record
_TEMPLATE = tarfile.TarInfo("x")
_TEMPLATE.mode, _TEMPLATE.mtime = 0o644, 0
_BLANK = bytearray(_TEMPLATE.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
_BLANK[0:_NAME] = bytes(_NAME)
_BLANK[124:136] = bytes(12)
_BLANK[148:156] = b" " * 8
_BLANK_SUM = sum(_BLANK)


def _header(name: str, size: int) -> bytes:
    """The ustar header `tarfile` writes for a regular file of that name and size (a name that `fits`)."""
    raw = name.encode("ascii")
    digits = b"%011o\0" % size
    header = bytearray(_BLANK)
    header[0 : len(raw)] = raw
    header[124:136] = digits
    checksum = _BLANK_SUM + sum(raw) + sum(digits)
    header[148:156] = b"%06o\0 " % checksum
    return bytes(header)


def fits(name: str, size: int) -> bool:
    """Whether `tarfile` would write a plain ustar header for the member (no pax record before it)."""
    return name.isascii() and len(name) <= _NAME and size < _MAX_SIZE


class TarWriter:
    """Members appended to `f` in order; `close` ends the archive (and leaves `f` open)."""

    def __init__(self, f: BinaryIO):
        self.file = f
        self.offset = 0

    def add(self, name: str, data: bytes) -> None:
        size = len(data)
        if fits(name, size):
            header = _header(name, size)
        else:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = size, 0o644, 0
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
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
