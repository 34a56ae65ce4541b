"""Raw records to samples: JSON Lines decoded here (so bad bytes and bad JSON become rejection reasons), then the
dataset's parser; what fails is a `Rejection` that keeps the original record, or the raw line."""

from __future__ import annotations

import json
from typing import Any

from beam_pipelines.records import RawRecord, RejectedError, Rejection, Sample
from beam_pipelines.sources.dataset import Dataset


def decode_raw(raw: RawRecord) -> dict[str, Any]:
    """The record as a mapping: JSONL lines are decoded here so bad bytes become a rejection reason."""
    if raw.unreadable is not None:
        raise RejectedError("read", "non_utf8", raw.unreadable)
    if raw.record is not None:
        return raw.record
    assert raw.line is not None
    try:
        text = raw.line.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise RejectedError("read", "non_utf8", f"line is not valid UTF-8 (byte {exc.start})") from None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise RejectedError("read", "malformed_json", f"line is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise RejectedError("read", "not_an_object", f"line is a JSON {type(record).__name__}, not an object")
    if b"\\ud" in raw.line or b"\\uD" in raw.line:
        _check_surrogates(record)
    return record


def _check_surrogates(record: dict[str, Any]) -> None:
    """JSON may escape half of a surrogate pair (`\\ud83d` alone: text cut inside an emoji); such a string is not
    Unicode text, and no UTF-8 output (Parquet, tar, JSON lines) can hold it."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        lone = exc.object[exc.start : exc.end].encode("utf-8", "backslashreplace").decode("ascii")
        raise RejectedError(
            "read", "invalid_unicode", f"a string holds an unpaired surrogate {lone} (text cut inside a character?)"
        ) from None


def parse_raw(raw: RawRecord, dataset: Dataset) -> Sample:
    """RawRecord → Sample, raising `RejectedError` with the reason when it cannot be parsed."""
    return dataset.parse(decode_raw(raw), raw.provenance)


def raw_rejection(raw: RawRecord, error: RejectedError) -> Rejection:
    """A rejection that keeps the original record, or the raw line when it never parsed as a JSON object."""
    if raw.record is not None:
        return Rejection(raw.source, raw.provenance, (error.info,), record=raw.record)
    try:
        record = decode_raw(raw)
    except RejectedError:
        assert raw.line is not None
        line = raw.line.decode("utf-8", errors="backslashreplace")
        return Rejection(raw.source, raw.provenance, (error.info,), raw_line=line)
    return Rejection(raw.source, raw.provenance, (error.info,), record=record)
