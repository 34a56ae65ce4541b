"""The VGR region grammar: `<SOT>[x1, y1, x2, y2]<EOT><image>` and its dirty variants.

Released VGR-SFT uses upper-case tags, a JSON list of four normalised floats and a trailing `<image>`
replay marker; the paper's figures use lower-case tags, integer pixels and the `{"bbox_2d": [...],
"label": ...}` object form. The parser accepts all of them, any whitespace, and boxes after `</think>`.
Orphan tags and stray `<image>` markers occur in the real files: they are counted as anomalies, which
the `vgr_samples` suite turns into warnings. A tag pair whose content is not box-like (not `[`, `{` or
bare numbers) is treated as two orphan tags. A box-like content that is malformed (bad syntax, wrong
arity, non-numbers) rejects the record: it is a box the author meant, and a training loader would choke
on it. Values are not range-checked here (non-finite ones included): that is the `vgr_regions` suite's job.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass

from beam_pipelines.records import Region, RejectedError

STAGE = "parse"

_TOKEN = re.compile(r"<\s*(?P<tag>sot|eot)\s*>|(?P<img><image>)", re.IGNORECASE)
_BARE_NUMBERS = re.compile(r"^[\s\d.,eE+\-naNifINF]+$")
_TAG_SPAN = re.compile(r"<\s*sot\s*>.*?<\s*eot\s*>(\s*<image>)?", re.IGNORECASE | re.DOTALL)
_ANY_TAG = re.compile(r"<\s*/?\s*(sot|eot|think)\s*>|<image>", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n|<\s*/?\s*think\s*>", re.IGNORECASE)
_WS = re.compile(r"\s+")
_REFERENCE = re.compile(r"<\s*sot\s*>(.*?)<\s*eot\s*>(\s*<image>)?", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ParsedRegions:
    regions: tuple[Region, ...]
    anomalies: tuple[str, ...]  # orphan_sot, orphan_eot, stray_image_marker, in text order


def reference_segments(text: str) -> tuple[tuple[str, int | None], ...]:
    """The text cut at every region reference (`<SOT>…<EOT>`, with its `<image>` marker), each reference paired
    with its region's index and the text between them with None."""
    out: list[tuple[str, int | None]] = []
    last, n = 0, 0
    for m in _REFERENCE.finditer(text):
        out.append((text[last : m.start()], None))
        body = m.group(1).strip()
        if body.startswith(("[", "{")) or "," in body:
            out.append((m.group(0), n))
            n += 1
        else:
            out.append((m.group(0), None))
        last = m.end()
    out.append((text[last:], None))
    return tuple((piece, index) for piece, index in out if piece)


def strip_tags(text: str) -> str:
    """Text with every region span, think tag and `<image>` marker removed, whitespace collapsed."""
    return _WS.sub(" ", _ANY_TAG.sub(" ", _TAG_SPAN.sub(" ", text))).strip()


def parse_box_content(content: str) -> tuple[tuple[float, ...], str | None]:
    """The four numbers (and optional label) inside one `<SOT>…<EOT>` pair.

    Raises `RejectedError` when the content is box-like but malformed.
    """
    body = content.strip()
    label = None
    if body.startswith("{"):
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise RejectedError(STAGE, "box_syntax", f"box object is not valid JSON: {body[:80]!r}") from exc
        if not isinstance(obj, dict):
            raise RejectedError(STAGE, "box_syntax", f"box object is not a JSON object: {body[:80]!r}")
        values = obj.get("bbox_2d", obj.get("bbox"))
        if values is None:
            raise RejectedError(STAGE, "box_syntax", f"box object has no 'bbox_2d': {body[:80]!r}")
        raw_label = obj.get("label")
        label = None if raw_label is None else str(raw_label)
    elif body.startswith("["):
        if not body.endswith("]"):
            raise RejectedError(STAGE, "box_syntax", f"unterminated box list: {body[:80]!r}")
        values = _parse_list(body[1:-1])
    else:
        values = _parse_list(body)
    if not isinstance(values, list):
        raise RejectedError(STAGE, "box_syntax", f"box is not a list of numbers: {values!r:.80}")
    if len(values) != 4:
        raise RejectedError(STAGE, "box_arity", f"box has {len(values)} values, expected 4: {body[:80]!r}")
    numbers = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise RejectedError(STAGE, "box_type", f"box value {v!r:.40} is not a number")
        numbers.append(float(v) if isinstance(v, float) else v)
    return tuple(numbers), label


def _parse_list(inner: str) -> list[object]:
    """Comma-separated numbers; JSON first (exact), then a tolerant float() split (`.5`, `NaN`, `1e-3`)."""
    try:
        values = json.loads(f"[{inner}]")
    except ValueError:
        values = None
    if isinstance(values, list):
        return values
    parts = [p.strip() for p in inner.split(",")]
    out: list[object] = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            raise RejectedError(STAGE, "box_type", f"box value {p!r:.40} is not a number") from None
    return out


def _is_box_like(content: str) -> bool:
    body = content.strip()
    return body.startswith(("[", "{")) or bool(body and _BARE_NUMBERS.match(body) and "," in body)


class _Sentences:
    """The sentence around any span of one text, stripped of tags and boxes. Sentence ends are found once and each
    sentence is stripped once, so a runaway turn with thousands of boxes parses in linear time, not quadratic."""

    def __init__(self, text: str):
        self.text = text
        matches = list(_SENTENCE_END.finditer(text))
        self.starts = [m.start() for m in matches]
        self.ends = [m.end() for m in matches]
        self.stripped: dict[tuple[int, int], str] = {}

    def around(self, start: int, end: int) -> str:
        before = bisect.bisect_right(self.ends, start)  # ends at or before `start`: the last one begins the sentence
        begin = self.ends[before - 1] if before else 0
        after = bisect.bisect_left(self.starts, end)  # the first end that starts at or after `end` closes it
        stop = self.ends[after] if after < len(self.starts) else len(self.text)
        if (begin, stop) not in self.stripped:
            self.stripped[begin, stop] = strip_tags(self.text[begin:stop])
        return self.stripped[begin, stop]


def parse_regions(text: str) -> ParsedRegions:
    """All regions of an assistant turn, in order, with the anomalies the dirt produced."""
    regions: list[Region] = []
    anomalies: list[str] = []
    tokens = list(_TOKEN.finditer(text))
    sentences = _Sentences(text)
    open_sot: re.Match[str] | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        tag = (tok.group("tag") or "").lower()
        if tag == "sot":
            if open_sot is not None:
                anomalies.append("orphan_sot")
            open_sot = tok
        elif tag == "eot":
            if open_sot is None:
                anomalies.append("orphan_eot")
            else:
                content = text[open_sot.end() : tok.start()]
                if not _is_box_like(content):
                    anomalies.extend(("orphan_sot", "orphan_eot"))
                else:
                    numbers, label = parse_box_content(content)
                    marker = (
                        i + 1 < len(tokens)
                        and tokens[i + 1].group("img") is not None
                        and not text[tok.end() : tokens[i + 1].start()].strip()
                    )
                    end = tokens[i + 1].end() if marker else tok.end()
                    regions.append(
                        Region(
                            region_index=len(regions),
                            box_raw=numbers,
                            box_norm=None,
                            replay_marker=marker,
                            label=label,
                            context=sentences.around(open_sot.start(), end),
                        )
                    )
                    if marker:
                        i += 1
                open_sot = None
        else:
            anomalies.append("stray_image_marker")
        i += 1
    if open_sot is not None:
        anomalies.append("orphan_sot")
    return ParsedRegions(tuple(regions), tuple(anomalies))
