"""Field access shared by the source parsers: typed lookups that reject with a clear reason, and sample ids."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from beam_pipelines.records import RejectedError

STAGE = "parse"
INT32 = (-(2**31), 2**31 - 1)
"""An integer field (`require(..., int)`) is stored as int32: a value outside is rejected here, not by the writer."""


def require(record: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """record[key], rejecting a missing key, a value of the wrong type (bool is never a number), a non-finite float
    or an integer (kind `int`) outside int32."""
    label = f"{where}{key}"
    if key not in record or record[key] is None:
        raise RejectedError(STAGE, "missing_field", f"field '{label}' is {'null' if key in record else 'missing'}")
    value = record[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RejectedError(STAGE, "wrong_type", f"field '{label}' is a bool, expected {_names(kind)}")
    if not isinstance(value, kind):
        raise RejectedError(STAGE, "wrong_type", f"field '{label}' is {type(value).__name__}, expected {_names(kind)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RejectedError(STAGE, "non_finite", f"field '{label}' is {value!r}, expected a finite number")
    if kind is int and not INT32[0] <= value <= INT32[1]:
        raise RejectedError(
            STAGE, "integer_out_of_range", f"field '{label}' is {value}, outside the 32-bit range the outputs store"
        )
    return value


def optional(record: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    if record.get(key) is None:
        return None
    return require(record, key, kind, where)


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def image_paths(record: dict[str, Any]) -> tuple[str, ...]:
    """The `image` field as a tuple of paths: upstream uses a string, a 1-element list, or a list."""
    value = require(record, "image", (str, list))
    paths = [value] if isinstance(value, str) else value
    if not paths:
        raise RejectedError(STAGE, "missing_field", "field 'image' is an empty list")
    for i, p in enumerate(paths):
        if not isinstance(p, str) or not p.strip():
            raise RejectedError(STAGE, "wrong_type", f"field 'image[{i}]' is not a non-empty string: {p!r:.60}")
    return tuple(paths)


def conversations(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The `conversations` list as (from, value) pairs, rejecting malformed turns."""
    turns = require(record, "conversations", list)
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RejectedError(STAGE, "wrong_type", f"conversations[{i}] is {type(turn).__name__}, not an object")
        role = require(turn, "from", str, f"conversations[{i}].")
        value = require(turn, "value", str, f"conversations[{i}].")
        out.append((role, value))
    return out


def make_sample_id(source: str, paths: tuple[str, ...], *texts: Any) -> str:
    """A content-derived id: stable across reruns and file order, no dots (WebDataset keys stop at dots)."""
    payload = json.dumps([source, list(paths), list(texts)], ensure_ascii=False, sort_keys=True)
    return f"{source}-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:32]}"


def path_parts(path: str) -> list[str]:
    """The folders and name of an image path as written upstream: `/` or `\\` separators, no empty or `.` parts."""
    return [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]


def metadata_of(record: dict[str, Any], consumed: tuple[str, ...]) -> dict[str, Any]:
    """Fields the canonical model has no column for, kept so nothing upstream is lost."""
    return {k: v for k, v in record.items() if k not in consumed}


def text_value(record: dict[str, Any], key: str, required: bool = True) -> str | None:
    """A text field that upstream sometimes stores as a number (answers like 58)."""
    value = require(record, key, (str, int, float)) if required else optional(record, key, (str, int, float))
    return None if value is None else str(value)
