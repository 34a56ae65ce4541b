"""Image roots, path resolution and safe decoding.

An image root is a local directory, a `gs://` prefix or a `.zip` archive read in place (some datasets ship their
images as one). A path resolves under it by the dataset's candidates (`Dataset.image_candidates`: as written, and
whatever the upstream archives' layouts call for). For a dataset whose records hold paths relative to a folder they
do not name (`Dataset.searches_source_folders`), the folders under the root (and under its `images/`) whose name
starts the annotation file's name are tried next, then all folders, where exactly one may hold the file. The first
candidate that exists wins and the rule is recorded. Paths that would escape the root
(`..`, absolute paths, symlinks pointing outside) are rejected before anything is opened. Loading reads the bytes
and the header only (the pixel cap is checked there); decoding is a later stage, after the suites, so a batch
under validation holds bytes, not pixels, and each image is decoded exactly once.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from PIL import Image, UnidentifiedImageError

from beam_pipelines.materialisation import decoders, thumbnails
from beam_pipelines.materialisation.pixels import rgb_image
from beam_pipelines.materialisation.thumbnails import THUMB_SIDE
from beam_pipelines.records import EncodedImage, LoadedImage, RejectedError, Sample
from beam_pipelines.sources.dataset import Dataset
from beam_pipelines.sources.fields import path_parts

STAGE = "load_image"
DECODE_STAGE = "decode_image"
MAX_ZIP_RATIO = 500
"""A zip member that inflates more than this many times its stored size is refused: images are compressed already."""
MAX_JPEG_SCANS = 100
"""JPEG scans counted from the markers before decoding (libjpeg-turbo's scan limit for untrusted input is the same
idea): a photo has one, a progressive JPEG about ten; thousands make the decoder work for minutes."""


@dataclass(frozen=True)
class ImageLimits:
    """What one image, and one sample's images together, may take: pixels from the header, bytes from the file's
    size (or a zip member's declared size) before anything is read."""

    max_pixels: int
    max_bytes: int
    max_sample_bytes: int

    @classmethod
    def of(cls, options: Any) -> ImageLimits:
        """The limits a run's options set (`--max_image_pixels`, `--max_image_bytes`, `--max_sample_image_bytes`)."""
        return cls(options.max_image_pixels, options.max_image_bytes, options.max_sample_image_bytes)


_EXT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "MPO": "jpg"}
_ORIENTATION = 0x0112
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def check_relative(path: str) -> str:
    """The path, normalised, or a rejection if it is absolute or climbs out of the root."""
    if path.startswith(("/", "\\")) or _DRIVE.match(path) or "://" in path:
        raise RejectedError(STAGE, "path_escapes_root", f"image path {path!r} is absolute; it must be relative")
    parts = path_parts(path)
    if ".." in parts:
        raise RejectedError(STAGE, "path_escapes_root", f"image path {path!r} climbs out of the image root ('..')")
    if not parts:
        raise RejectedError(STAGE, "path_escapes_root", f"image path {path!r} is empty")
    return "/".join(parts)


class ImageRoot:
    """Read-only access to the files under an image root of any of the three kinds."""

    def __init__(self, root: str):
        self.root = root.rstrip("/") or root
        self._zip: zipfile.ZipFile | None = None
        self._zip_names: set[str] = set()
        self._zip_prefix = ""
        self._local = "://" not in root and not root.lower().endswith(".zip")
        if root.lower().endswith(".zip"):
            self._file = FileSystems.open(root, compression_type=CompressionTypes.UNCOMPRESSED)
            self._zip = zipfile.ZipFile(self._file)
            self._zip_names = {n for n in self._zip.namelist() if not n.endswith("/")}
        elif self._local:
            self._real = os.path.realpath(root)
        self._folders: tuple[str, ...] | None = None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._file.close()

    def location(self, rel: str) -> str:
        if self._zip is not None:
            return f"{self.root}!/{rel}"
        return posixpath.join(self.root, rel) if "://" in self.root else os.path.join(self.root, rel)

    def exists(self, rel: str) -> bool:
        """A file there (a FIFO, device or socket counts, so that `size` can say what it is; a folder does not)."""
        if self._zip is not None:
            return rel in self._zip_names
        if self._local:
            path = os.path.join(self.root, rel)
            return os.path.isfile(path) or (os.path.exists(path) and not os.path.isdir(path))
        return FileSystems.exists(self.location(rel))

    def size(self, rel: str, path: str, limits: ImageLimits) -> int:
        """The file's size, from the file system or the zip directory, before anything is read; a file that is not
        a regular one, above `limits.max_bytes`, or a zip member inflating above `MAX_ZIP_RATIO`, is rejected."""
        if self._zip is not None:
            info = self._zip.getinfo(rel)
            size = info.file_size
            if size > MAX_ZIP_RATIO * max(1, info.compress_size):
                raise RejectedError(
                    STAGE,
                    "zip_member_ratio",
                    f"image {path!r} inflates from {info.compress_size} to {size} bytes in the zip, more than "
                    f"{MAX_ZIP_RATIO} times: refused as a zip bomb",
                )
        elif self._local:
            mode = os.stat(os.path.join(self.root, rel))
            if not stat.S_ISREG(mode.st_mode):
                kind = "FIFO" if stat.S_ISFIFO(mode.st_mode) else "device, socket or other special file"
                raise RejectedError(STAGE, "image_not_a_file", f"image {path!r} is a {kind}, not a regular file")
            size = mode.st_size
        else:
            size = FileSystems.match([self.location(rel)])[0].metadata_list[0].size_in_bytes
        if size > limits.max_bytes:
            raise RejectedError(
                STAGE,
                "image_file_too_large",
                f"image {path!r} is {size} bytes, above --max_image_bytes={limits.max_bytes}",
            )
        return size

    def check_inside(self, rel: str) -> None:
        """Symlinks may point anywhere; the resolved file must still lie under the root."""
        if not self._local:
            return
        real = os.path.realpath(os.path.join(self.root, rel))
        if os.path.commonpath([real, self._real]) != self._real:
            raise RejectedError(
                STAGE, "path_escapes_root", f"image path {rel!r} is a symlink to {real!r}, outside the image root"
            )

    def read(self, rel: str, size: int) -> bytes:
        """The file's bytes; a zip member is read to its declared `size` and no further (a lying header)."""
        if self._zip is not None:
            try:
                with self._zip.open(rel) as member:
                    data = member.read(size + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # zipfile stops at the declared size: CRC
                raise RejectedError(
                    STAGE,
                    "zip_member_damaged",
                    f"zip member {rel!r} does not inflate to what its header declares ({exc}): damaged, or larger "
                    f"than its declared {size} bytes",
                ) from None
            if len(data) > size:
                raise RejectedError(
                    STAGE, "zip_member_ratio", f"image {rel!r} inflates beyond its declared {size} bytes"
                )
            return data
        if self._local:
            with open(os.path.join(self.root, rel), "rb") as f:
                return f.read()
        with FileSystems.open(self.location(rel), compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return f.read()

    def folders(self) -> tuple[str, ...]:
        """The folders directly under the root and under its `images/`, listed once per root."""
        if self._folders is None:
            self._folders = tuple(sorted(self._list_folders() - {"images"}))
        return self._folders

    def _list_folders(self) -> set[str]:
        if self._zip is not None:
            found = set()
            for parts in (name.split("/") for name in self._zip_names):
                found.update(parts[:1] if len(parts) > 1 else [])
                found.update(["images/" + parts[1]] if len(parts) > 2 and parts[0] == "images" else [])
            return found
        if self._local:
            return {
                os.path.relpath(e.path, self.root).replace(os.sep, "/")
                for top in (self.root, os.path.join(self.root, "images"))
                if os.path.isdir(top)
                for e in os.scandir(top)
                if e.is_dir()
            }
        return {*_gcs_folders(self.root), *(f"images/{f}" for f in _gcs_folders(self.root + "/images"))}

    def resolve(self, path: str, dataset: Dataset, subset: str = "") -> tuple[str, str]:
        """(rule, relative path) of the first candidate that exists, or a rejection listing what was tried."""
        tried = []
        for rule, rel in dataset.image_candidates(check_relative(path)):
            if self.exists(rel):
                return self._found(rule, rel)
            tried.append(rel)
        if dataset.searches_source_folders:
            found = self._in_source_folder(tried[0], subset)
            if found is not None:
                return found
            tried.append(f"the {len(self.folders())} folders under the root and its images/")
        raise RejectedError(
            STAGE, "image_missing", f"image {path!r} not found under {self.root} (tried: {', '.join(tried)})"
        )

    def _in_source_folder(self, rel: str, subset: str) -> tuple[str, str] | None:
        """`<folder>/<rel>` for the folder named like the annotation file, else for the one folder that has it."""
        named = source_folders_for(subset, self.folders())
        for folder in named:
            if self.exists(f"{folder}/{rel}"):
                return self._found("source_folder", f"{folder}/{rel}")
        hits = [f"{f}/{rel}" for f in self.folders() if f not in named and self.exists(f"{f}/{rel}")]
        if len(hits) > 1:
            raise RejectedError(
                STAGE,
                "image_ambiguous",
                f"image {rel!r} is in {len(hits)} source folders ({', '.join(hits)}) and the annotation file's "
                f"name {subset!r} names none of them",
            )
        return self._found("search_source_folders", hits[0]) if hits else None

    def _found(self, rule: str, rel: str) -> tuple[str, str]:
        self.check_inside(rel)
        return rule, rel


def _comparable(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def source_folders_for(subset: str, folders: tuple[str, ...]) -> list[str]:
    """Folders whose name, compared in lower case without punctuation, starts the annotation file's name
    (`Geometry3K` for `geometry3k_en_20240402_extracted`, `CLEVR-Math` for `CLEVR_math_en_…`), longest first."""
    key = _comparable(subset)
    names = {f: _comparable(f.rsplit("/", 1)[-1]) for f in folders}
    return sorted((f for f, name in names.items() if name and key.startswith(name)), key=lambda f: (-len(names[f]), f))


def _gcs_folders(url: str) -> list[str]:
    """Names of the "folders" (common prefixes) directly under a `gs://` prefix, by one delimited listing."""
    from apache_beam.io.gcp import gcsio

    bucket, _, prefix = url[len("gs://") :].partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    blobs = gcsio.GcsIO().client.list_blobs(bucket, prefix=prefix, delimiter="/")
    for _ in blobs:  # the prefixes are filled in as the pages are read
        pass
    return [p[len(prefix) :].rstrip("/") for p in blobs.prefixes]


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _signature(data: bytes) -> str | None:
    """The format a file's first bytes announce, whatever Pillow makes of the rest."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)


def _open(data: bytes, path: str, max_pixels: int | None = None) -> Image.Image:
    """The image's header; a format Pillow does not know is `not_an_image`, a known one whose header is damaged
    (a PNG chunk's checksum) `image_unreadable`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own limit (twice ours): say ours
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"declares {int(declared.group(1))} pixels" if declared else "declares too many pixels"
        limit = f", above --max_image_pixels={max_pixels}" if max_pixels else ""
        raise RejectedError(STAGE, "image_too_large", f"image {path!r} {pixels} in its header{limit}") from None
    except UnidentifiedImageError:  # its message names the in-memory buffer's address, which differs per run
        known = _signature(data)
        if known:
            raise RejectedError(
                STAGE, "image_unreadable", f"image {path!r} is a {known} with a damaged header"
            ) from None
        raise RejectedError(STAGE, "not_an_image", f"image {path!r} is not in an image format Pillow knows") from None
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise RejectedError(STAGE, "image_unreadable", f"image {path!r} has a damaged header: {exc}") from None


def jpeg_scans(data: bytes) -> int:
    """The SOS markers (0xFF 0xDA) in a JPEG: one per scan, since the entropy-coded data never holds that byte pair.
    Found as the 0xFF bytes followed by 0xDA, vectorised: a third of the time of `bytes.count` on a photo."""
    octets = np.frombuffer(data, dtype=np.uint8)
    after_ff = np.flatnonzero(octets[:-1] == 0xFF) + 1
    return int(np.count_nonzero(octets[after_ff] == 0xDA))


def probe(data: bytes, path: str, max_pixels: int) -> tuple[str, int, int, int]:
    """(format, width, height, EXIF orientation) from the header alone; the pixel cap and the JPEG scan cap are
    checked here, before any decode."""
    im = _open(data, path, max_pixels)
    width, height = im.size
    if im.format in ("JPEG", "MPO"):
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise RejectedError(
                STAGE,
                "jpeg_too_many_scans",
                f"image {path!r} is a JPEG of {scans} scans, above {MAX_JPEG_SCANS}: decoding it would take minutes",
            )
    if width * height > max_pixels:
        raise RejectedError(
            STAGE,
            "image_too_large",
            f"image {path!r} is {width}x{height} = {width * height} pixels, above --max_image_pixels={max_pixels}",
        )
    return im.format or "", width, height, _orientation(im)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1 = as stored; 2..8 ask viewers to mirror or rotate). A PNG's eXIf chunk is
    read only if it precedes the pixel data: Pillow would decode the whole image to look further."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, struct.error):  # a damaged EXIF block: the pixels are still fine
        return 1
    return value if isinstance(value, int) else 1


def decode(
    data: bytes, path: str, rgb: bool, draft_side: int | None = None, fast: bool = True, array: bool = False
) -> Image.Image | np.ndarray | None:
    """Decode the whole image (so a truncated file is caught); the RGB pixels when `rgb`, else None.

    The full decode goes through `decoders` where a faster library gives Pillow's exact pixels (`fast=False`:
    Pillow always, for comparison); with `array` its pixels stay the H×W×3 array it made (`pixels` takes either
    form). Without `rgb` the pixels are not needed, so a JPEG is decoded in draft mode (libjpeg's DCT scaling to
    1/8): the whole entropy-coded stream is still read and Huffman-decoded, so a truncated or broken file is
    rejected exactly as by the full decode, but the IDCT and colour conversion run at 1/8 scale. With `draft_side`
    the RGB pixels of a JPEG are those of the smallest scale whose sides are still at least that (for a
    thumbnail)."""
    im = _open(data, path)
    if fast and draft_side is None:
        if rgb:
            pixels = decoders.rgb_array(data, im)
            if pixels is not None:
                return pixels if array else rgb_image(pixels)
        elif decoders.readable(data, im):
            return None
    try:
        if im.format == "JPEG" and (draft_side or not rgb):
            im.draft("RGB" if rgb else None, (draft_side, draft_side) if rgb and draft_side else (1, 1))
        im.load()
        return to_rgb(im, path) if rgb else None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise RejectedError(DECODE_STAGE, "image_unreadable", f"image {path!r} cannot be decoded: {exc}") from None


def to_rgb(im: Image.Image, path: str = "") -> Image.Image:
    """RGB pixels. Pillow converts 16-bit greyscale (`I;16*`, and `I` holding values above 255) by clipping
    to 0 or 255, which wipes the picture out: those are scaled to 8 bits (value >> 8) first; 32-bit float pixels
    in [0, 1] are scaled by 255; other float ranges, and integers past 16 bits, are rejected (they have no defined
    scale to 8 bits, and converted they came out all black or all white)."""
    if im.mode == "RGB":
        return im
    name = f"image {path!r}: " if path else ""
    if im.mode == "F":  # 32-bit float: [0, 1] is the one common convention; anything else has no defined scale
        values = np.asarray(im)
        if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
            raise RejectedError(
                DECODE_STAGE,
                "image_unsupported_mode",
                f"{name}32-bit float pixels from {float(np.nanmin(values))} to {float(np.nanmax(values))}: only "
                "[0, 1] has a defined scale to 8 bits",
            )
        return Image.fromarray(np.round(values * 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "I" and (im.getextrema()[0] < 0 or im.getextrema()[1] > 65535):
        low, high = im.getextrema()
        raise RejectedError(
            DECODE_STAGE,
            "image_unsupported_mode",
            f"{name}32-bit integer pixels from {low} to {high}: only 8- and 16-bit ranges have a defined scale",
        )
    if im.mode.startswith("I;16") or (im.mode == "I" and im.getextrema()[1] > 255):
        eight_bit = np.clip(np.asarray(im).astype(np.int64) >> 8, 0, 255).astype(np.uint8)
        return Image.fromarray(eight_bit, "L").convert("RGB")
    return im.convert("RGB")


def load_image(
    root: ImageRoot, path: str, dataset: Dataset, limits: ImageLimits, subset: str = "", budget: int | None = None
) -> LoadedImage:
    """The image's bytes and header facts; decoding waits until validation has passed. `budget`: the bytes the
    sample's images may still take (`limits.max_sample_bytes` less what its earlier images took)."""
    rule, rel = root.resolve(path, dataset, subset)
    size = root.size(rel, path, limits)
    if budget is not None and size > budget:
        raise RejectedError(
            STAGE,
            "sample_images_too_large",
            f"the sample's images add up to more than --max_sample_image_bytes={limits.max_sample_bytes} with "
            f"{path!r} ({size} bytes)",
        )
    data = root.read(rel, size)
    fmt, width, height, orientation = probe(data, path, limits.max_pixels)
    ext = _EXT.get(fmt) or posixpath.splitext(rel)[1].lstrip(".").lower() or "bin"
    return LoadedImage(
        path=path,
        resolved=root.location(rel),
        rule=rule,
        encoded=EncodedImage(data=data, ext=ext, width=width, height=height),
        format=fmt,
        orientation=orientation,
    )


def decode_images(sample: Sample, every_first_image: bool = False, preview: bool = False) -> Sample:
    """Every image decoded once; the first keeps its RGB pixels when the sample has regions to cut (or, with
    `every_first_image`, always: the annotation model sees it), and with `preview` its thumbnail for the pages."""
    keep = bool(sample.regions) or every_first_image
    decoded = []
    for i, img in enumerate(sample.images):
        if i == 0 and (keep or preview):
            pixels = decode(img.encoded.data, img.path, rgb=True, draft_side=None if keep else THUMB_SIDE, array=keep)
            small = thumbnails.thumbnail(pixels) if preview else None
            decoded.append(replace(img, pixels=pixels if keep else None, thumbnail=small))
        else:
            decode(img.encoded.data, img.path, rgb=False)
            decoded.append(img)
    return replace(sample, images=tuple(decoded))


def release_pixels(sample: Sample) -> Sample:
    """The sample without decoded pixels, once the last stage that reads them is done: writers need only bytes,
    and a sample that carries megabytes of pixels costs as much again whenever Beam encodes or sizes it."""
    if all(img.pixels is None for img in sample.images):
        return sample
    return replace(sample, images=tuple(replace(img, pixels=None) for img in sample.images))
