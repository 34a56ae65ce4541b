"""`VgrEtlOptions`: the single source of configuration.

Every setting is a `PipelineOptions` flag, so the same class drives the command line, tests, and
(later) the Dataflow template's parameters; Beam's own flags (`--runner`, worker counts, Google Cloud
options) pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from beam_pipelines.materialisation.replay import DEFAULT_PRESET, FRAMES, PRESETS
from beam_pipelines.records import SOURCES
from beam_pipelines.validation.boxes import UNITS

FORMATS = ("parquet", "webdataset")
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold


class VgrEtlOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: _BeamArgumentParser) -> None:
        parser.add_argument("--source", choices=SOURCES, help="Upstream layout of the input records.")
        parser.add_argument(
            "--input",
            action="append",
            help="Input file, glob, directory or gs:// pattern (.parquet, .jsonl, .json, .arrow, or an annotations "
            ".zip for VisualPRM400K), a datasets save_to_disk directory, or a Hugging Face dataset "
            "(hf:OWNER/NAME[:CONFIG][@SPLIT] or hf://datasets/OWNER/NAME/PATH). Repeat for several.",
        )
        parser.add_argument(
            "--image_root", help="Directory, gs:// prefix or .zip archive under which image paths resolve."
        )
        parser.add_argument("--output", help="Output directory (local or gs://).")
        parser.add_argument(
            "--formats", default="parquet,webdataset", help="Comma-separated output formats: parquet, webdataset."
        )
        parser.add_argument(
            "--max_reject_fraction",
            type=float,
            default=0.1,
            help="Fail the run (after writing outputs) when rejected/input_records exceeds this.",
        )
        parser.add_argument(
            "--box_units",
            choices=UNITS,
            default="normalized",
            help="Units of the boxes in the assistant text: [0,1]-normalised (VGR as released) or pixels.",
        )
        parser.add_argument(
            "--max_image_pixels",
            type=int,
            default=DEFAULT_MAX_IMAGE_PIXELS,
            help="Reject images with more pixels than this, checked from the header before decoding.",
        )
        parser.add_argument(
            "--shard_max_samples",
            type=int,
            default=1000,
            help="Input rows per chunk, hence at most this many samples per output shard.",
        )
        parser.add_argument(
            "--shard_max_bytes",
            type=int,
            default=512 * 1024 * 1024,
            help="Start a new shard part when a shard's image payload would exceed this many bytes.",
        )
        parser.add_argument(
            "--replay_preset",
            default=DEFAULT_PRESET,
            choices=sorted(PRESETS),
            help="AnyRes/replay geometry preset (tile, patch, max tiles, pooling, frame).",
        )
        parser.add_argument(
            "--replay_frame",
            choices=FRAMES,
            default=None,
            help="Feature grid the replay boxes index: the unpadded grid (preset default) or the whole canvas.",
        )
        parser.add_argument(
            "--replay_pixels",
            action="store_true",
            default=False,
            help="Also store each region's replay pixel tensor (large).",
        )
        parser.add_argument("--jpeg_quality", type=int, default=95, help="JPEG quality of crops of JPEG images.")
        parser.add_argument(
            "--png_compress_level", type=int, default=1, help="zlib level (0-9) of PNG crops of lossless images."
        )


def unknown_flags(argv: list[str]) -> list[str]:
    """Flags no PipelineOptions subclass knows: a typo should fail loudly, not be dropped with a log line."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen: set[type] = set()
    stack: list[type] = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(argv)
    return [a.split("=", 1)[0] for a in unknown if a.startswith("--")]


def formats_of(options: VgrEtlOptions) -> tuple[str, ...]:
    names = tuple(f.strip() for f in (options.formats or "").split(",") if f.strip())
    bad = [f for f in names if f not in FORMATS]
    if bad or not names:
        raise ValueError(f"--formats {options.formats!r}: expected a comma-separated subset of {', '.join(FORMATS)}")
    return names


def check_required(options: VgrEtlOptions) -> None:
    missing = [f"--{k}" for k in ("source", "input", "image_root", "output") if not getattr(options, k)]
    if missing:
        raise ValueError(f"missing required option(s): {', '.join(missing)}")
    if any(c in options.output for c in "*?["):
        raise ValueError("--output must not contain *, ? or [ (Beam's filesystems read them as globs when deleting)")
    if not 0 <= options.max_reject_fraction <= 1:
        raise ValueError("--max_reject_fraction must be between 0 and 1")
    if options.shard_max_samples < 1 or options.shard_max_bytes < 1:
        raise ValueError("--shard_max_samples and --shard_max_bytes must be positive")
    if not 90 <= options.jpeg_quality <= 100:
        raise ValueError("--jpeg_quality must be between 90 and 100 (crops must stay faithful)")
    formats_of(options)


def config_of(options: VgrEtlOptions) -> dict[str, Any]:
    """The options that shape the outputs, recorded in the report."""
    keys = (
        "source",
        "input",
        "image_root",
        "output",
        "formats",
        "box_units",
        "max_image_pixels",
        "max_reject_fraction",
        "shard_max_samples",
        "shard_max_bytes",
        "jpeg_quality",
        "png_compress_level",
        "replay_preset",
        "replay_frame",
        "replay_pixels",
    )
    return {k: getattr(options, k) for k in keys}
