"""Image roots (directory, zip), path resolution rules, escapes, and header-first decoding."""

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from beam_pipelines.materialisation.images import (
    MAX_JPEG_SCANS,
    ImageLimits,
    ImageRoot,
    check_relative,
    decode,
    jpeg_scans,
    load_image,
    probe,
    source_folders_for,
    to_rgb,
)
from beam_pipelines.records import RejectedError
from beam_pipelines.sources.registry import dataset_named

LIMITS = ImageLimits(10**6, 10**7, 10**8)


def png_bytes(size=(20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.png", "a/../../x.png", "C:\\x.png", "gs://b/x.png"])
def test_escaping_paths_are_rejected(path):
    with pytest.raises(RejectedError) as err:
        check_relative(path)
    assert err.value.info.check == "path_escapes_root"


def test_candidate_rules_for_visualprm():
    got = dataset_named("visualprm_raw").image_candidates(check_relative("VisualPRM400K-v1.1-Raw/Geometry3K/a.png"))
    assert got == [
        ("as_written", "VisualPRM400K-v1.1-Raw/Geometry3K/a.png"),
        ("strip_dataset_folder", "Geometry3K/a.png"),
        ("add_images_prefix", "images/Geometry3K/a.png"),
    ]
    assert dataset_named("vgr").image_candidates(check_relative("coco/x.jpg")) == [("as_written", "coco/x.jpg")]


def test_directory_root_resolution_and_symlink_escape(tmp_path):
    root = tmp_path / "root"
    (root / "images" / "Geo").mkdir(parents=True)
    (root / "images" / "Geo" / "a.png").write_bytes(png_bytes())
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    os.symlink(outside, root / "link.png")
    r = ImageRoot(str(root))
    assert r.resolve("VisualPRM400K/Geo/a.png", dataset_named("visualprm")) == ("add_images_prefix", "images/Geo/a.png")
    with pytest.raises(RejectedError) as err:
        r.resolve("link.png", dataset_named("vgr"))
    assert err.value.info.check == "path_escapes_root"
    with pytest.raises(RejectedError) as err:
        r.resolve("nope.png", dataset_named("vgr"))
    assert err.value.info.check == "image_missing" and "nope.png" in err.value.info.message


def test_zip_root_is_read_in_place(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("images/Geo/a.png", png_bytes((30, 40)))
    root = ImageRoot(str(archive))
    img = load_image(root, "VisualPRM400K-v1.1-Raw/Geo/a.png", dataset_named("visualprm_raw"), LIMITS)
    assert (img.rule, img.encoded.width, img.encoded.height, img.encoded.ext) == ("add_images_prefix", 30, 40, "png")
    assert img.pixels is None  # header only: decoding waits until validation has passed
    root.close()


def test_probe_and_decode_rejections():
    data = png_bytes((100, 100))
    with pytest.raises(RejectedError) as err:
        probe(data, "a.png", max_pixels=5000)
    assert err.value.info.check == "image_too_large"
    with pytest.raises(RejectedError) as err:
        probe(b"not an image", "a.png", 10**6)
    assert err.value.info.check == "not_an_image"
    truncated = data[: len(data) // 2]
    assert probe(truncated, "a.png", 10**6) == ("PNG", 100, 100, 1)  # the header is intact
    with pytest.raises(RejectedError) as err:
        decode(truncated, "a.png", rgb=False)
    assert (err.value.info.stage, err.value.info.check) == ("decode_image", "image_unreadable")


def test_decode_converts_to_rgb_without_exif_transpose():
    buf = io.BytesIO()
    Image.new("L", (7, 3), 128).save(buf, format="PNG")
    assert probe(buf.getvalue(), "g.png", 10**6) == ("PNG", 7, 3, 1)
    assert decode(buf.getvalue(), "g.png", rgb=True).mode == "RGB"
    assert decode(buf.getvalue(), "g.png", rgb=False) is None


def jpeg_bytes(mode: str, progressive: bool, size=(320, 240)) -> bytes:
    """A noisy, photo-like JPEG: its entropy-coded data fills most of the file."""
    w, h = size
    ramp = np.linspace(0, 200, w * h * 3).reshape(h, w, 3)
    noise = np.random.default_rng(0).normal(0, 25, (h, w, 3))
    im = Image.fromarray(np.clip(ramp + noise, 0, 255).astype(np.uint8), "RGB").convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90, progressive=progressive)
    return buf.getvalue()


def rejected(data: bytes, rgb: bool) -> bool:
    try:
        decode(data, "a.jpg", rgb=rgb)
    except RejectedError as err:
        assert (err.info.stage, err.info.check) == ("decode_image", "image_unreadable")
        return True
    return False


JPEG_KINDS = [("RGB", False), ("RGB", True), ("L", False), ("CMYK", True)]


@pytest.mark.parametrize(("mode", "progressive"), JPEG_KINDS)
def test_jpeg_verification_decode_rejects_truncated_and_corrupt_files(mode, progressive):
    data = jpeg_bytes(mode, progressive)
    assert not rejected(data, rgb=False)
    for cut in (0.2, 0.5, 0.8, 0.95, 0.999):
        truncated = data[: int(len(data) * cut)]
        assert rejected(truncated, rgb=False) and rejected(truncated, rgb=True), cut
    middle = len(data) // 2
    corrupt = data[:middle] + b"\xff\xc0" + data[middle + 2 :]  # a stray SOF marker inside the scan data
    assert rejected(corrupt, rgb=False) and rejected(corrupt, rgb=True)
    no_eoi = data[:-2]  # whatever libjpeg makes of a missing end marker, the verification agrees with the full decode
    assert rejected(no_eoi, rgb=False) == rejected(no_eoi, rgb=True)


@pytest.mark.parametrize(("mode", "progressive"), JPEG_KINDS)
def test_jpeg_rgb_decode_is_full_size_and_unchanged(mode, progressive):
    data = jpeg_bytes(mode, progressive)
    pixels = decode(data, "a.jpg", rgb=True)
    expected = Image.open(io.BytesIO(data)).convert("RGB")
    assert (pixels.mode, pixels.size) == ("RGB", (320, 240))
    assert pixels.tobytes() == expected.tobytes()
    assert decode(data, "a.jpg", rgb=False) is None


V1_LAYOUT = {
    "images/Geometry3K/train/1/img_diagram.png": (20, 10),
    "images/MAVIS-Geometry/depth3/7.png": (21, 10),
    "images/GeoQA+/c.png": (22, 10),
    "images/UniGeo/c.png": (23, 10),
}


def v1_roots(tmp_path, gcs=None):
    """The VisualPRM400K v1 image layout as a directory, as its `images/` folder, as a zip, and on GCS."""
    tree = tmp_path / "v1"
    for rel, size in V1_LAYOUT.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(png_bytes(size))
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel, size in V1_LAYOUT.items():
            zf.writestr(rel, png_bytes(size))
    roots = {"dir": (str(tree), "images/"), "images_dir": (str(tree / "images"), ""), "zip": (str(archive), "images/")}
    if gcs is not None:
        roots["gcs"] = (gcs.upload_tree(tree, f"{gcs.bucket('v1-images')}/VisualPRM400K"), "images/")
    return roots


def check_v1_resolution(root: str, prefix: str) -> None:
    r = ImageRoot(root)
    assert r.resolve("train/1/img_diagram.png", dataset_named("visualprm"), "geometry3k_en_20240402_extracted") == (
        "source_folder",
        f"{prefix}Geometry3K/train/1/img_diagram.png",
    )
    # the file's name does not start with the folder's: the one folder holding the path is taken
    assert r.resolve("depth3/7.png", dataset_named("visualprm"), "mavis_geo_depth3_text_dominant") == (
        "search_source_folders",
        f"{prefix}MAVIS-Geometry/depth3/7.png",
    )
    # two folders hold it: the one the file is named after wins, and without one it is ambiguous
    assert r.resolve("c.png", dataset_named("visualprm"), "geoqa+_extracted_en_version") == (
        "source_folder",
        f"{prefix}GeoQA+/c.png",
    )
    assert load_image(r, "c.png", dataset_named("visualprm"), LIMITS, "unigeo_calc_en").encoded.width == 23
    with pytest.raises(RejectedError) as err:
        r.resolve("c.png", dataset_named("visualprm"), "iconqa_train_extracted")
    assert err.value.info.check == "image_ambiguous" and "GeoQA+/c.png" in err.value.info.message
    with pytest.raises(RejectedError) as err:
        r.resolve("train/2/img_diagram.png", dataset_named("visualprm"), "geometry3k_en_20240402_extracted")
    assert err.value.info.check == "image_missing" and "folders under the root" in err.value.info.message
    with pytest.raises(RejectedError) as err:  # Raw paths name their folder: no search there
        r.resolve("train/1/img_diagram.png", dataset_named("visualprm_raw"), "geometry3k_en_20240402_extracted")
    assert err.value.info.check == "image_missing"
    r.close()


@pytest.mark.parametrize("kind", ["dir", "images_dir", "zip"])
def test_v1_paths_resolve_in_the_source_folder(tmp_path, kind):
    check_v1_resolution(*v1_roots(tmp_path)[kind])


def test_v1_paths_resolve_in_the_source_folder_on_gcs(tmp_path, gcs):
    check_v1_resolution(*v1_roots(tmp_path, gcs)["gcs"])


def test_source_folders_are_matched_by_name_longest_first():
    folders = ("images/Geo", "images/Geo170K", "images/CLEVR-Math", "annotations")
    assert source_folders_for("geo170k_extracted_full", folders) == ["images/Geo170K", "images/Geo"]
    assert source_folders_for("CLEVR_math_en_20240402_extracted", folders) == ["images/CLEVR-Math"]
    assert source_folders_for("", folders) == []


SIXTEEN_BIT = np.tile(np.linspace(0, 65535, 64), (8, 1)).astype(np.uint16)


def test_a_sixteen_bit_png_is_scaled_not_clipped():
    buf = io.BytesIO()
    Image.fromarray(SIXTEEN_BIT).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I;16"
    rgb = decode(buf.getvalue(), "g.png", rgb=True)
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb)[..., 0], (SIXTEEN_BIT >> 8).astype(np.uint8))


def test_32_bit_greyscale_with_16_bit_values_is_scaled_and_8_bit_values_kept():
    wide = to_rgb(Image.fromarray(SIXTEEN_BIT.astype(np.int32)))
    assert np.array_equal(np.asarray(wide)[..., 1], (SIXTEEN_BIT >> 8).astype(np.uint8))
    narrow = to_rgb(Image.fromarray((SIXTEEN_BIT >> 8).astype(np.int32)))
    assert np.array_equal(np.asarray(narrow)[..., 2], (SIXTEEN_BIT >> 8).astype(np.uint8))


@pytest.mark.parametrize(("fmt", "orientation"), [("JPEG", 6), ("PNG", 8), ("WEBP", 3), ("JPEG", 1)])
def test_exif_orientation_is_read_from_the_header(fmt, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(buf, format=fmt, exif=exif)
    assert probe(buf.getvalue(), "a", 10**6) == (fmt, 40, 30, orientation)


def _jpeg(progressive: bool) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 99, 199)).save(buf, format="JPEG", progressive=progressive)
    return buf.getvalue()


def test_a_jpeg_of_too_many_scans_is_refused_before_decoding():
    progressive = _jpeg(True)
    assert probe(progressive, "p.jpg", 10**6)[0] == "JPEG", "a progressive JPEG's few scans pass"
    last = progressive[progressive.rindex(b"\xff\xda") :]  # the final scan, with its header, up to EOI
    bomb = progressive[:-2] + last[:-2] * (MAX_JPEG_SCANS + 5) + b"\xff\xd9"
    with pytest.raises(RejectedError) as err:
        probe(bomb, "bomb.jpg", 10**6)
    assert err.value.info.check == "jpeg_too_many_scans" and f"above {MAX_JPEG_SCANS}" in err.value.info.message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"\xda",
        b"\xff\xda",
        b"\xff\xff\xda",
        b"\xda\xff",
        b"\xff\xda\xff\xda\xff",
        b"\x00\xff\xda\xda\xff",
    ],
)
def test_jpeg_scans_counts_the_sos_markers_as_bytes_count_does(data):
    assert jpeg_scans(data) == data.count(b"\xff\xda")


def test_jpeg_scans_on_real_jpegs():
    for progressive, scans in ((False, 1), (True, _jpeg(True).count(b"\xff\xda"))):
        assert jpeg_scans(_jpeg(progressive)) == scans
    assert scans > 1, "a progressive JPEG has several scans"


def test_files_are_sized_before_they_are_read(tmp_path):
    (tmp_path / "big.png").write_bytes(png_bytes((30, 30)) + b"\0" * 5000)
    (tmp_path / "a.png").write_bytes(png_bytes((30, 30)))
    os.mkfifo(tmp_path / "fifo.png")
    root = ImageRoot(str(tmp_path))
    small = ImageLimits(10**6, 4000, 10**8)
    with pytest.raises(RejectedError) as err:
        load_image(root, "big.png", dataset_named("vgr"), small)
    assert err.value.info.check == "image_file_too_large" and "--max_image_bytes=4000" in err.value.info.message
    with pytest.raises(RejectedError) as err:  # would block forever if it were opened
        load_image(root, "fifo.png", dataset_named("vgr"), LIMITS)
    assert (err.value.info.check, "is a FIFO, not a regular file" in err.value.info.message) == (
        "image_not_a_file",
        True,
    )
    size = (tmp_path / "a.png").stat().st_size
    with pytest.raises(RejectedError) as err:
        load_image(root, "a.png", dataset_named("vgr"), LIMITS, budget=size - 1)
    assert err.value.info.check == "sample_images_too_large"


def test_a_zip_member_is_capped_by_its_ratio_and_its_declared_size(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/Geo/bomb.png", png_bytes((8, 8)) + b"\0" * 3_000_000)
        zf.writestr("images/Geo/big.png", os.urandom(20_000))
    root = ImageRoot(str(archive))
    with pytest.raises(RejectedError) as err:
        load_image(root, "images/Geo/bomb.png", dataset_named("visualprm_raw"), ImageLimits(10**6, 10**8, 10**9))
    assert err.value.info.check == "zip_member_ratio" and "zip bomb" in err.value.info.message
    with pytest.raises(RejectedError) as err:
        load_image(root, "images/Geo/big.png", dataset_named("visualprm_raw"), ImageLimits(10**6, 10_000, 10**9))
    assert err.value.info.check == "image_file_too_large"


def test_a_zip_member_larger_than_its_header_says_is_rejected_with_its_reason(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", png_bytes((64, 64)) + os.urandom(40_000))
    data = bytearray(archive.read_bytes())
    entry = data.rindex(b"PK\x01\x02")  # the central directory's entry: its uncompressed size, a lie
    data[entry + 24 : entry + 28] = (2_000).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(RejectedError) as err:
        load_image(ImageRoot(str(archive)), "a.png", dataset_named("visualprm_raw"), ImageLimits(10**6, 10**8, 10**9))
    assert err.value.info.check == "zip_member_damaged" and "declared 2000 bytes" in err.value.info.message


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_reasons_say_what_happened():
    with pytest.raises(RejectedError) as err:  # Pillow refuses it itself (twice its limit): our limit is quoted
        probe(_png_header(20_000, 20_000), "h.png", 10**6)
    assert err.value.info.check == "image_too_large" and "--max_image_pixels=1000000" in err.value.info.message
    assert "declares 400000000 pixels in its header" in err.value.info.message
    broken = bytearray(png_bytes((10, 10)))
    broken[20] ^= 0xFF  # a byte of the IHDR chunk: its checksum no longer matches
    with pytest.raises(RejectedError) as err:
        probe(bytes(broken), "b.png", 10**6)
    assert err.value.info.check == "image_unreadable"


def test_float_pixels_are_scaled_from_the_unit_range_or_rejected():
    ramp = np.linspace(0, 1, 64 * 32, dtype=np.float32).reshape(32, 64)
    rgb = np.asarray(to_rgb(Image.fromarray(ramp, "F")))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and rgb.std() > 50, "a ramp, not black"
    with pytest.raises(RejectedError) as err:
        to_rgb(Image.fromarray(ramp * 1000, "F"))
    assert err.value.info.check == "image_unsupported_mode" and "0.0 to 1000.0" in err.value.info.message


def test_32_bit_integers_past_16_bits_are_rejected_not_whitened():
    wide = Image.fromarray(np.arange(64 * 32, dtype=np.int32).reshape(32, 64) * 100_000, "I")
    with pytest.raises(RejectedError) as err:
        to_rgb(wide, "t.tif")
    info = err.value.info
    assert info.check == "image_unsupported_mode" and "'t.tif'" in info.message and "204700000" in info.message
