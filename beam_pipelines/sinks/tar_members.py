"""Member names of a tar file read from its headers alone, the data skipped by seeking: what the invariant counts
the samples of a WebDataset shard by.

`tarfile` turns every header into a `TarInfo` in Python (checksum, every field decoded), and a shard holds eight or
more members per sample (figures in CHANGELOG.md). This reads only the fields a name depends on: the
ustar name and prefix, pax `path` and `size` records, GNU long names. It ends where `tarfile` ends a listing: at
the first zero block, at a short read, or at a header whose checksum is wrong (so a damaged shard counts short and
the invariant reports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 512
NAME = slice(0, 100)
SIZE = slice(124, 136)
CHECKSUM = slice(148, 156)
"""The ustar header fields the lister and the shard writer (`sinks.tar_writer`) read or fill."""
_EXTENDED = (b"x", b"L")  # pax extended header (for the next member), GNU long name (for the next member)
_SKIPPED = (b"g", b"K")  # pax global header, GNU long link name: no member of their own


def _number(field: bytes) -> int:
    """A numeric header field: octal digits, or GNU's base-256 (first byte 0x80, or 0xff if negative)."""
    if field[0] in (0x80, 0xFF):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0xFF else value
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _checksum_holds(header: bytes) -> bool:
    """The header's checksum field against the sum of its bytes (the field itself counted as spaces), unsigned or,
    as some old writers made it, signed."""
    try:
        stored = _number(header[CHECKSUM])
    except ValueError:
        return False
    unsigned = sum(header) - sum(header[CHECKSUM]) + 8 * 0x20
    if stored == unsigned:
        return True
    signed = unsigned - 256 * sum(1 for b in header if b > 127) + 256 * sum(1 for b in header[CHECKSUM] if b > 127)
    return stored == signed


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """The `<length> <key>=<value>\\n` records of a pax extended header."""
    records, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key] = value
        pos += length
    return records


def member_names(f: BinaryIO) -> Iterator[str]:
    """The name of every member of the tar file `f` (seekable, positioned anywhere), in order."""
    offset, extended = 0, {}
    while True:
        f.seek(offset)
        header = f.read(BLOCK)
        if len(header) < BLOCK or not header.strip(b"\0") or not _checksum_holds(header):
            return
        kind = header[156:157]
        try:
            size = _number(header[SIZE])
            if kind not in _EXTENDED and b"size" in extended:
                size = int(extended[b"size"])
        except ValueError:  # a size that is not a number: `tarfile` stops there too
            return
        data_at = offset + BLOCK
        offset = data_at + -(-size // BLOCK) * BLOCK
        if kind in _EXTENDED:
            f.seek(data_at)
            data = f.read(size)
            if kind == b"x":
                extended.update(_pax_records(data))
                if b"path" in extended:
                    extended[b"path"] = extended[b"path"].rstrip(b"/")
            else:
                extended[b"path"] = data.split(b"\0", 1)[0]
            continue
        if kind in _SKIPPED:
            continue
        name = header[NAME].split(b"\0", 1)[0]
        if kind == b"5" or (kind == b"\0" and name.endswith(b"/")):  # a directory, named without its slash
            name = name.rstrip(b"/")
        if header[257:262] == b"ustar" and header[345] != 0:
            name = header[345:500].split(b"\0", 1)[0] + b"/" + name
        yield extended.get(b"path", name).decode("utf-8", "surrogateescape")
        extended = {}
