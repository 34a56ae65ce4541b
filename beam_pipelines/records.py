"""Typed, frozen records that flow through the pipeline.

Every element carries its provenance (input file, zip member, row, chunk) so that any output row or
rejection can be traced back to the exact input line. Rejections and duplicates are values, not log
lines: each input record ends as exactly one `Sample` (accepted), `Rejection` or `Duplicate`; the job checks that
this adds up, against records counted where they are read and rows counted in the files (`sinks.invariant`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """Where a record came from. `row` is 0-based within the file (or zip member); `offset` is its row offset within
    its chunk, which names the output part it starts."""

    input_file: str
    row: int
    chunk_id: str
    member: str | None = None
    offset: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input_file": self.input_file, "row": self.row}
        if self.member is not None:
            out["member"] = self.member
        return out

    def sort_key(self) -> tuple[str, str, int]:
        return (self.input_file, self.member or "", self.row)


@dataclass(frozen=True)
class RawRecord:
    """One input row before parsing: a decoded mapping (Parquet/JSON) or the raw bytes of a JSONL line.
    `unreadable` says why a Parquet/Arrow row could not be decoded as written; `record` then has its strings escaped."""

    source: str
    provenance: Provenance
    record: dict[str, Any] | None = None
    line: bytes | None = None
    unreadable: str | None = None


@dataclass(frozen=True)
class ErrorInfo:
    """Why a record was rejected: the stage that found it, a stable check name, a human message.

    Rejections by a validation suite also name the suite, the Great Expectations type, the column(s)
    and the offending value, so a reader can find the expectation to edit.
    """

    stage: str
    check: str
    message: str
    suite: str | None = None
    expectation: str | None = None
    column: str | None = None
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "check": self.check, "message": self.message}
        if self.suite is not None:
            out.update(suite=self.suite, expectation=self.expectation, column=self.column, value=self.value)
        return out


class RejectedError(Exception):
    """Raised by pure per-record functions; the stage turns it into a `Rejection` value."""

    def __init__(self, stage: str, check: str, message: str):
        super().__init__(f"{stage}/{check}: {message}")
        self.info = ErrorInfo(stage, check, message)


class Outcome:
    """What each input record ends as, and what every per-record stage takes and emits: a `Sample`, a `Rejection`
    or a `Duplicate`. A common base class (rather than a union) gives these streams one Beam type, hence one coder
    (`beam_pipelines.coders`)."""


@dataclass(frozen=True)
class Rejection(Outcome):
    """A rejected input record: the original record (or raw line) plus the reasons."""

    source: str
    provenance: Provenance
    errors: tuple[ErrorInfo, ...]
    record: Any = None
    raw_line: str | None = None
    sample_id: str | None = None
    sample: Sample | None = field(default=None, repr=False, compare=False)
    """The sample it was, when rejected after parsing: the preview draws its boxes on its image. Never pickled, so
    no image bytes travel with a rejection between stages or workers."""

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "sample"}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "provenance": self.provenance.to_json(),
            "errors": [e.to_json() for e in self.errors],
        }
        if self.sample_id is not None:
            out["sample_id"] = self.sample_id
        if self.raw_line is not None:
            out["raw_line"] = self.raw_line
        else:
            out["record"] = self.record
        return out


@dataclass(frozen=True)
class Duplicate(Outcome):
    """An exact duplicate of another record (same sample_id); kept once, counted here.

    `kept_in` names the unit of the current dataset version that already holds the kept copy (a refresh
    meeting a record it published before); empty for a duplicate within this run's input.
    """

    source: str
    provenance: Provenance
    sample_id: str
    kept: Provenance
    kept_in: str = ""


@dataclass(frozen=True)
class EncodedImage:
    """Image bytes as stored in the outputs, with the format they are encoded in."""

    data: bytes = field(repr=False)
    ext: str  # file extension without the dot: jpg, png, ...
    width: int
    height: int


@dataclass(frozen=True)
class Region:
    """A grounded region parsed from the assistant text, later materialised with its pixel box and crop."""

    region_index: int
    box_raw: tuple[float, ...]  # the four numbers as written
    box_norm: tuple[float, float, float, float] | None
    replay_marker: bool
    label: str | None
    context: str
    box_px: tuple[int, int, int, int] | None = None
    crop: EncodedImage | None = None
    replay: dict[str, Any] | None = None
    grounding_score: float | None = None  # crop-context cosine similarity, with --score_model
    verify_score: float | None = None  # P(yes) of the annotation model's verification, with --annotation_model


@dataclass(frozen=True)
class Step:
    """One solution step of a process-supervision record, in the union of the three PRM layouts."""

    index: int
    text: str
    label: str | None  # "+", "-", or None (VisualProcessBench neutral)
    correctness: int  # 1 correct, -1 incorrect, 0 neutral
    mc_score: float | None = None
    num_mc_correct: int | None = None
    num_mc_total: int | None = None
    measured: bool | None = None  # Raw version only: False for the early-stop tail (0/0: not rolled out)
    prm_score: float | None = None  # P(+) of the annotation model, with --annotation_model


@dataclass(frozen=True)
class LoadedImage:
    """An input image: its path as written and as resolved, the original bytes, and its decoded pixels."""

    path: str
    resolved: str
    rule: str
    encoded: EncodedImage
    format: str  # Pillow format name: JPEG, PNG, ...
    orientation: int = 1  # EXIF orientation tag; boxes and crops always refer to the pixels as stored
    # the decoded RGB pixels (a PIL.Image, or the faster decoder's H×W×3 uint8 array), dropped before writing
    pixels: Any = field(default=None, repr=False, compare=False)
    thumbnail: Any = field(default=None, repr=False, compare=False)  # PIL.Image for the preview, few samples


@dataclass(frozen=True)
class Sample(Outcome):
    """The canonical sample model shared by all four sources."""

    sample_id: str
    source: str
    subset: str
    provenance: Provenance
    image_paths: tuple[str, ...]
    question: str
    answer: str | None
    reasoning: str | None = None
    response: str | None = None
    prompt: str | None = None
    regions: tuple[Region, ...] = ()
    steps: tuple[Step, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    warnings: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict, compare=False)  # parser observations the suites check
    visual_tokens: tuple[int, int] | None = None  # (base, replay) under the replay preset
    prm_first_error: int | None = None  # the annotation model's first step below --prm_threshold (-1: none)
    images: tuple[LoadedImage, ...] = ()
    record: Any = field(default=None, repr=False, compare=False)  # the original record, for rejections

    def reject(self, *errors: ErrorInfo) -> Rejection:
        return Rejection(
            source=self.source,
            provenance=self.provenance,
            errors=tuple(errors),
            record=self.record,
            sample_id=self.sample_id,
            sample=self,
        )
