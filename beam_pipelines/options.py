"""`VgrEtlOptions`: the single source of configuration.

Every setting is a `PipelineOptions` flag, so the same class drives the command line, tests, and
(later) the Dataflow template's parameters; Beam's own flags (`--runner`, worker counts, Google Cloud
options) pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from beam_pipelines.geometry import UNITS
from beam_pipelines.materialisation.replay import DEFAULT_PRESET, FRAMES, PRESETS
from beam_pipelines.scoring.spec import DEVICES, DTYPES, SEVERITIES
from beam_pipelines.sources import registry
from beam_pipelines.validation.suites import DEFAULT_DIR

FORMATS = ("parquet", "webdataset")
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold


LOCAL_WORKER_STARTS = ("fork", "spawn")


class VgrEtlOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: _BeamArgumentParser) -> None:
        parser.add_argument("--source", choices=registry.names(), help="Upstream layout of the input records.")
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
            "--on_removed",
            choices=("keep", "drop"),
            default="keep",
            help="refresh: samples whose record disappeared upstream stay in the dataset (keep) or are dropped from "
            "the new version by rewriting only the shards that hold them (drop).",
        )
        parser.add_argument(
            "--max_reject_fraction",
            type=float,
            default=0.1,
            help="Fail the run when rejected/input_records exceeds this: its files and report are written, its version "
            "is not published.",
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
        parser.add_argument(
            "--expectations",
            default=DEFAULT_DIR,
            help="Directory (local or gs://) of the Great Expectations suites, one <table>.json per validated table.",
        )
        parser.add_argument(
            "--label_reference",
            action="append",
            default=None,
            help="Files of the records' reference form (pattern, repeatable), for a --source that has one (the "
            "VisualPRM400K conversation form: its Raw form), to check each label against the official rule "
            "(+ iff score > 0) where both forms hold the record.",
        )
        parser.add_argument(
            "--validation_batch_size",
            type=int,
            default=2000,
            help="Samples per Great Expectations call (a call has a fixed cost of tenths of a second).",
        )
        parser.add_argument(
            "--validation_batch_bytes",
            type=int,
            default=64 * 1024 * 1024,
            help="A batch under image validation is also cut when its image bytes reach this (bounds memory).",
        )
        parser.add_argument("--jpeg_quality", type=int, default=95, help="JPEG quality of crops of JPEG images.")
        parser.add_argument(
            "--png_compress_level", type=int, default=1, help="zlib level (0-9) of PNG crops of lossless images."
        )
        parser.add_argument(
            "--score_model",
            default=None,
            help="Turns on scoring: a Hugging Face CLIP model directory (local or gs://), e.g. CLIP ViT-L/14@336.",
        )
        parser.add_argument("--score_device", choices=DEVICES, default="cpu", help="Device the scoring model runs on.")
        parser.add_argument(
            "--score_dtype",
            choices=DTYPES,
            default=None,
            help="Compute dtype (default float32 on cpu, float16 on cuda).",
        )
        parser.add_argument("--score_batch_size", type=int, default=32, help="Crops (and tiles) per forward pass.")
        parser.add_argument(
            "--score_model_copies",
            type=int,
            default=None,
            help="Model copies per machine, shared by its SDK processes (default: 1 on cuda, one per process on cpu).",
        )
        parser.add_argument(
            "--score_accelerator",
            default=None,
            help="Resource hint of the scoring step, e.g. 'type:nvidia-l4;count:1;install-nvidia-driver'.",
        )
        parser.add_argument(
            "--min_grounding_score",
            type=float,
            default=None,
            help="Samples whose lowest region grounding score is below this are rejected or flagged.",
        )
        parser.add_argument(
            "--grounding_severity",
            choices=SEVERITIES,
            default="error",
            help="error: below-minimum samples go to rejected/; warning: kept with a warning.",
        )
        parser.add_argument(
            "--replay_features",
            action="store_true",
            default=False,
            help="With --score_model: store each region's pooled vision features (float16 [tokens, dim]).",
        )
        parser.add_argument(
            "--local_worker_start",
            choices=LOCAL_WORKER_STARTS,
            default="fork",
            help="Local runner with --direct_running_mode=multi_processing only: fork (each worker a fork of a copy of "
            "the launching process that has the imports done; Linux) or spawn (Beam's own: a fresh interpreter per "
            "worker).",
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


def split_formats(text: str | None) -> tuple[str, ...]:
    """The names in a `--formats` value, as written (unchecked)."""
    return tuple(f.strip() for f in (text or "").split(",") if f.strip())


def formats_of(options: VgrEtlOptions) -> tuple[str, ...]:
    names = split_formats(options.formats)
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
    if options.label_reference and registry.dataset_named(options.source).reference is None:
        takes = ", ".join(name for name in registry.names() if registry.dataset_named(name).reference is not None)
        raise ValueError(f"--label_reference applies to --source {takes} only")
    if options.validation_batch_size < 1 or options.validation_batch_bytes < 1:
        raise ValueError("--validation_batch_size and --validation_batch_bytes must be positive")
    if not 90 <= options.jpeg_quality <= 100:
        raise ValueError("--jpeg_quality must be between 90 and 100 (crops must stay faithful)")
    needs_model = ("min_grounding_score", "replay_features", "score_accelerator", "score_model_copies")
    if not options.score_model and any(getattr(options, k) not in (None, False) for k in needs_model):
        raise ValueError(f"{', '.join('--' + k for k in needs_model)} need --score_model")
    if options.score_batch_size < 1 or (options.score_model_copies is not None and options.score_model_copies < 1):
        raise ValueError("--score_batch_size and --score_model_copies must be positive")
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
        "on_removed",
        "shard_max_samples",
        "shard_max_bytes",
        "jpeg_quality",
        "png_compress_level",
        "replay_preset",
        "replay_frame",
        "replay_pixels",
        "expectations",
        "label_reference",
        "validation_batch_size",
        "score_model",
        "score_device",
        "score_dtype",
        "score_batch_size",
        "min_grounding_score",
        "grounding_severity",
        "replay_features",
    )
    return {k: getattr(options, k) for k in keys}
