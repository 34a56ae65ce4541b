"""Every flag of `vgr-etl run` and `refresh`, declared once in `OPTIONS`, without importing Beam.

Each `Option` says what a flag is (type, default, choices, help), whether a run needs it, whether it shapes the rows
a run writes (a refresh must use the values its dataset was built with), whether it only concerns the local runner,
and how it is checked. The command line's own parser and help, the Beam options class (`options.VgrEtlOptions`), the
options recorded in reports and manifests (`config_of`), the refresh comparison (`content_options`), the launch
checks (`check_options`) and the Flex Template's parameters (`templates`) are all derived from it. This module
imports nothing heavy, so help and launch errors answer at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from beam_pipelines import progress
from beam_pipelines.geometry import UNITS
from beam_pipelines.materialisation.replay import DEFAULT_PRESET, FRAMES, PRESETS
from beam_pipelines.sources import registry

FORMATS = ("parquet", "webdataset")
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold
LOCAL_WORKER_STARTS = ("fork", "spawn")
DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16")
SEVERITIES = ("error", "warning")
FILTERS = ("none", "consensus")
DEFAULT_EXPECTATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "expectations")


def split_formats(text: str | None) -> tuple[str, ...]:
    """The names in a `--formats` value, as written (unchecked)."""
    return tuple(f.strip() for f in (text or "").split(",") if f.strip())


def _check_formats(value: str) -> str | None:
    names = split_formats(value)
    if not names or any(f not in FORMATS for f in names):
        return f"--formats {value!r}: expected a comma-separated subset of {', '.join(FORMATS)}"
    return None


def _check_output(value: str) -> str | None:
    if any(c in value for c in "*?["):
        return "--output must not contain *, ? or [ (Beam's filesystems read them as globs when deleting)"
    return None


def _formats_as_compared(value: Any, _config: dict[str, Any]) -> Any:
    return sorted(set(split_formats(value)))


def _frame_as_compared(value: Any, config: dict[str, Any]) -> Any:
    """The replay frame a run used: an unset frame is its preset's."""
    if value is None and config.get("replay_preset") in PRESETS:
        return PRESETS[config["replay_preset"]].frame
    return value


@dataclass(frozen=True)
class Option:
    """One flag of `vgr-etl run|refresh`, and everything derived from it."""

    name: str
    help: str
    type: type = str  # str, int, float; bool: a bare flag
    default: Any = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    repeatable: bool = False
    required: bool = False
    shapes_rows: bool = False
    """Changes what a sample's rows hold: a refresh must use the value the current version was built with."""
    local_only: bool = False
    """Concerns the local runner only: neither recorded nor a template parameter."""
    minimum: float | None = None
    maximum: float | None = None
    why: str = ""  # said when a value is out of range
    needs: str | None = None  # another option this one is meaningless without
    check: Callable[[Any], str | None] | None = None  # a value's problem, or None
    as_compared: Callable[[Any, dict[str, Any]], Any] | None = None  # the value as a refresh compares it
    aliases: tuple[str, ...] = ()  # older names, still accepted with a note on stderr
    describe_choices: Callable[[str], str] | None = None  # one line per choice, added to the help

    def choice_list(self) -> tuple[str, ...] | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def full_help(self) -> str:
        if self.describe_choices is None:
            return self.help
        described = "; ".join(f"{c}: {self.describe_choices(c)}" for c in self.choice_list() or ())
        return f"{self.help} {described}."

    def add_to(self, parser: Any) -> None:
        names = [f"--{self.name}", *(f"--{a}" for a in self.aliases)]
        if self.type is bool:
            parser.add_argument(*names, dest=self.name, action="store_true", default=False, help=self.full_help())
            return
        parser.add_argument(
            *names,
            dest=self.name,
            type=self.type if self.type is not str else None,
            default=self.default,
            choices=self.choice_list(),
            action="append" if self.repeatable else "store",
            help=self.full_help(),
        )


OPTIONS: tuple[Option, ...] = (
    Option(
        "source",
        "Upstream layout of the input records.",
        choices=registry.names,
        required=True,
        shapes_rows=True,
        describe_choices=lambda name: registry.dataset_named(name).description,
    ),
    Option(
        "input",
        "Input file, glob, directory or gs:// pattern (.parquet, .jsonl, .json, .arrow, or an annotations .zip), "
        "a datasets save_to_disk directory, or a Hugging Face dataset (hf:OWNER/NAME[:CONFIG][@SPLIT] or "
        "hf://datasets/OWNER/NAME/PATH). Repeat for several.",
        repeatable=True,
        required=True,
    ),
    Option("image_root", "Directory, gs:// prefix or .zip archive under which image paths resolve.", required=True),
    Option("output", "Output directory (local or gs://).", required=True, check=_check_output),
    Option(
        "formats",
        "Comma-separated output formats: parquet, webdataset.",
        default="parquet,webdataset",
        shapes_rows=True,
        check=_check_formats,
        as_compared=_formats_as_compared,
    ),
    Option(
        "on_removed",
        "refresh: samples whose record disappeared upstream stay in the dataset (keep) or are dropped from the new "
        "version by rewriting only the shards that hold them (drop).",
        default="keep",
        choices=("keep", "drop"),
    ),
    Option(
        "max_reject_fraction",
        "Fail the run when rejected/input_records exceeds this: its files and report are written, its version is "
        "not published.",
        type=float,
        default=0.1,
        minimum=0,
        maximum=1,
    ),
    Option(
        "box_units",
        "Units of the boxes in the assistant text: [0,1]-normalised (VGR as released) or pixels.",
        default="normalized",
        choices=UNITS,
        shapes_rows=True,
    ),
    Option(
        "max_image_pixels",
        "Reject images with more pixels than this, checked from the header before decoding.",
        type=int,
        default=DEFAULT_MAX_IMAGE_PIXELS,
        minimum=1,
    ),
    Option(
        "max_image_bytes",
        "Reject image files larger than this many bytes (a zip member: its declared size), before reading them.",
        type=int,
        default=256 * 1024 * 1024,
        minimum=1,
    ),
    Option(
        "max_sample_image_bytes",
        "Reject a sample whose images add up to more bytes than this, before reading the one that passes it.",
        type=int,
        default=1024 * 1024 * 1024,
        minimum=1,
    ),
    Option(
        "chunk_rows",
        "Input rows per chunk, the unit of parallelism: a shard holds the samples of one chunk, so at most this many.",
        type=int,
        default=1000,
        minimum=1,
        aliases=("shard_max_samples",),
    ),
    Option(
        "shard_max_bytes",
        "Start a new shard part when a shard's image payload would exceed this many bytes.",
        type=int,
        default=512 * 1024 * 1024,
        minimum=1,
    ),
    Option(
        "replay_preset",
        "AnyRes/replay geometry preset (tile, patch, max tiles, pooling, frame).",
        default=DEFAULT_PRESET,
        choices=sorted(PRESETS),
        shapes_rows=True,
    ),
    Option(
        "replay_frame",
        "Feature grid the replay boxes index: the unpadded grid (preset default) or the whole canvas.",
        choices=FRAMES,
        shapes_rows=True,
        as_compared=_frame_as_compared,
    ),
    Option("replay_pixels", "Also store each region's replay pixel tensor (large).", type=bool, shapes_rows=True),
    Option(
        "expectations",
        "Directory (local or gs://) of the Great Expectations suites, one <table>.json per validated table.",
        default=DEFAULT_EXPECTATIONS,
    ),
    Option(
        "label_reference",
        "Files of the records' reference form (pattern, repeatable), for a --source that has one (the VisualPRM400K "
        "conversation form: its Raw form), to check each label against the official rule (+ iff score > 0) where "
        "both forms hold the record.",
        repeatable=True,
    ),
    Option(
        "validation_batch_size",
        "Samples per Great Expectations call (a call has a fixed cost of tenths of a second).",
        type=int,
        default=2000,
        minimum=1,
    ),
    Option(
        "validation_batch_bytes",
        "A batch under image validation is also cut when its image bytes reach this (bounds memory).",
        type=int,
        default=64 * 1024 * 1024,
        minimum=1,
    ),
    Option(
        "jpeg_quality",
        "JPEG quality of crops of JPEG images.",
        type=int,
        default=95,
        minimum=90,
        maximum=100,
        why="crops must stay faithful",
        shapes_rows=True,
    ),
    Option(
        "png_compress_level",
        "zlib level (0-9) of PNG crops of lossless images.",
        type=int,
        default=1,
        minimum=0,
        maximum=9,
        shapes_rows=True,
    ),
    Option(
        "score_model",
        "Turns on scoring: a Hugging Face CLIP model directory (local or gs://), e.g. CLIP ViT-L/14@336.",
        shapes_rows=True,
    ),
    Option("score_device", "Device the scoring model runs on.", default="cpu", choices=DEVICES),
    Option("score_dtype", "Compute dtype (default float32 on cpu, float16 on cuda).", choices=DTYPES),
    Option("score_batch_size", "Crops (and tiles) per forward pass.", type=int, default=32, minimum=1),
    Option(
        "score_model_copies",
        "Model copies per machine, shared by its SDK processes (default: 1 on cuda, one per process on cpu).",
        type=int,
        minimum=1,
        needs="score_model",
    ),
    Option(
        "score_accelerator",
        "Resource hint of the scoring step, e.g. 'type:nvidia-l4;count:1;install-nvidia-driver'.",
        needs="score_model",
    ),
    Option(
        "min_grounding_score",
        "Samples whose lowest region grounding score is below this are rejected or flagged.",
        type=float,
        needs="score_model",
    ),
    Option(
        "grounding_severity",
        "error: below-minimum samples go to rejected/; warning: kept with a warning.",
        default="error",
        choices=SEVERITIES,
    ),
    Option(
        "replay_features",
        "With --score_model: store each region's pooled vision features (float16 [tokens, dim]).",
        type=bool,
        shapes_rows=True,
        needs="score_model",
    ),
    Option(
        "annotation_model",
        "Turns on annotation: a vision-language model directory in Hugging Face format (local or gs://) whose "
        "process-reward scores PRM steps and whose verification scores VGR regions.",
        shapes_rows=True,
    ),
    Option("annotation_device", "Device the annotation model runs on.", default="cpu", choices=DEVICES),
    Option("annotation_dtype", "Compute dtype (default float32 on cpu, bfloat16 on cuda).", choices=DTYPES),
    Option(
        "annotation_batch_size",
        "Sequences per forward pass (a PRM sample is one, a VGR region one).",
        type=int,
        default=8,
        minimum=1,
    ),
    Option(
        "annotation_model_copies",
        "Annotation model copies per machine, shared by its SDK processes (default: 1 on cuda, one per process on "
        "cpu).",
        type=int,
        minimum=1,
        needs="annotation_model",
    ),
    Option(
        "annotation_accelerator",
        "Resource hint of the annotation step, e.g. 'type:nvidia-h100-80gb;count:1;install-nvidia-driver'.",
        needs="annotation_model",
    ),
    Option(
        "prm_template",
        "JSON file (local or gs://) of the process-reward conversation layout (system, first_turn, step_turn, "
        "positive, negative); default: the layout of the VisualPRM400K records.",
        shapes_rows=True,
        needs="annotation_model",
    ),
    Option(
        "prm_threshold",
        "A step whose prm_score is below this is the model's error: prm_first_error and the agreement's labels.",
        type=float,
        default=0.5,
        minimum=0,
        maximum=1,
        shapes_rows=True,
    ),
    Option(
        "prm_filter",
        "consensus: keep a PRM sample only when the model's first error step equals the labels' (none: keep all).",
        default="none",
        choices=FILTERS,
        needs="annotation_model",
    ),
    Option(
        "prm_filter_severity",
        "error: samples the filter drops go to rejected/; warning: kept with the check in their warnings.",
        default="error",
        choices=SEVERITIES,
    ),
    Option(
        "verify_template",
        "JSON file (local or gs://) of the region-verification prompt (prompt with {context}, yes, no).",
        shapes_rows=True,
        needs="annotation_model",
    ),
    Option(
        "min_verify_score",
        "Samples whose lowest region verification score is below this are rejected or flagged.",
        type=float,
        minimum=0,
        maximum=1,
        needs="annotation_model",
    ),
    Option(
        "verify_severity",
        "error: below-minimum samples go to rejected/; warning: kept with a warning.",
        default="error",
        choices=SEVERITIES,
    ),
    Option(
        "local_worker_start",
        "Local runner with --direct_running_mode=multi_processing only: fork (each worker a fork of a copy of the "
        "launching process that has the imports done; Linux) or spawn (Beam's own: a fresh interpreter per worker).",
        default="fork",
        choices=LOCAL_WORKER_STARTS,
        local_only=True,
    ),
    Option(
        "progress",
        "Progress while the launcher waits: bar (tqdm's, on stderr), log (a line every 30 s), off; auto is bar on a "
        "terminal and log elsewhere.",
        default="auto",
        choices=progress.MODES,
        local_only=True,
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}


def deprecated_names(argv: list[str]) -> list[str]:
    """`--old (now --new)` for each renamed option the arguments use."""
    return [
        f"--{alias} (now --{o.name})"
        for o in OPTIONS
        for alias in o.aliases
        if any(a == f"--{alias}" or a.startswith(f"--{alias}=") for a in argv)
    ]


def formats_of(options: Any) -> tuple[str, ...]:
    return split_formats(options.formats)


def _range_problem(option: Option, value: Any) -> str | None:
    low, high = option.minimum, option.maximum
    if value is None or ((low is None or value >= low) and (high is None or value <= high)):
        return None
    why = f" ({option.why})" if option.why else ""
    if high is None:
        return f"--{option.name} must be at least {low:g}{why}"
    return f"--{option.name} must be between {low:g} and {high:g}{why}"


def _is_set(value: Any, default: Any) -> bool:
    """Given on the command line: not the None, False or default of an option left out (0 is a value)."""
    return value is not None and value is not False and value != default


def check_options(options: Any) -> None:
    """What the declarations say a launch must satisfy; the first problem as a ValueError of one line."""
    missing = [f"--{o.name}" for o in OPTIONS if o.required and not getattr(options, o.name)]
    if missing:
        raise ValueError(f"missing required option(s): {', '.join(missing)}")
    for option in OPTIONS:
        value = getattr(options, option.name)
        problem = _range_problem(option, value) or (option.check(value) if option.check and value is not None else None)
        if problem:
            raise ValueError(problem)
    unmet = [
        o for o in OPTIONS if o.needs and _is_set(getattr(options, o.name), o.default) and not getattr(options, o.needs)
    ]
    if unmet:
        raise ValueError(f"{', '.join('--' + o.name for o in unmet)} need --{unmet[0].needs}")
    if options.label_reference and registry.dataset_named(options.source).reference is None:
        takes = ", ".join(name for name in registry.names() if registry.dataset_named(name).reference is not None)
        raise ValueError(f"--label_reference applies to --source {takes} only")


def warn_deprecated(argv: list[str]) -> None:
    for name in deprecated_names(argv):
        print(f"vgr-etl: note: {name}", file=sys.stderr)


def config_of(options: Any) -> dict[str, Any]:
    """Every option but the local runner's, as this run has it: recorded in the report and the manifest."""
    return {o.name: getattr(options, o.name) for o in OPTIONS if not o.local_only}


def content_options() -> tuple[Option, ...]:
    """The options a refresh compares with the current version's."""
    return tuple(o for o in OPTIONS if o.shapes_rows)


def as_compared(option: Option, config: dict[str, Any]) -> Any:
    value = config.get(option.name)
    return option.as_compared(value, config) if option.as_compared else value
