"""What the human-readable pages show: a deterministic sample of outcomes, folded by one combiner.

The preview shows the accepted samples with the smallest hash of their sample_id (so the choice does not depend on
bundling, worker count or input order), likewise those with warnings, and the rejected records; the validation
page shows, per check, the failing records with the smallest provenance, and the accepted samples' distributions
(`profile`: fixed-bin counts). The combiner keeps at most a few entries per bundle. A payload (thumbnails with the
boxes drawn, crops, text) is built only when the accumulator leaves the bundle (`compact`), for the few outcomes
still in the top-k then, not for every one that entered it on the way. The thumbnails were made when the images
were decoded (`materialisation.thumbnails`); only an image validation rejected is decoded here, once. Only those
few small payloads cross the shuffle.
"""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any

import apache_beam as beam
from PIL import Image, ImageDraw

from beam_pipelines.geometry import pixel_box
from beam_pipelines.materialisation import images, thumbnails
from beam_pipelines.materialisation.thumbnails import PREVIEW_ACCEPTED, PREVIEW_WARNED, THUMB_SIDE, preview_key
from beam_pipelines.records import Duplicate, Region, RejectedError, Rejection, Sample
from beam_pipelines.sinks import profile
from beam_pipelines.sources.dataset import Dataset, Segments
from beam_pipelines.validation.checker import STAGE as VALIDATE_STAGE

PREVIEW_REJECTED = 12
LIMITS = {"accepted": PREVIEW_ACCEPTED, "warned": PREVIEW_WARNED, "rejected": PREVIEW_REJECTED}
EXAMPLES_PER_CHECK = 3
CROP_SIDE = 160
THUMB_MAX_PIXELS = 89_478_485
_TEXT = 4000


def data_uri(image: Image.Image, max_side: int) -> str:
    im = image.convert("RGB")
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "…"


def _short_segments(segments: Segments | None, limit: int) -> list[list[Any]] | None:
    """The first `limit` characters of a segmented text, as [text, region] pairs."""
    if segments is None:
        return None
    out: list[list[Any]] = []
    left = limit
    for piece, region in segments:
        if left <= 0:
            out.append(["…", None])
            break
        out.append([_short(piece, left), region])
        if len(piece) > left:
            break
        left -= len(piece)
    return out


def _box_px(region: Region, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The region's pixel box, also when it was rejected before its crop was cut (from its normalised box)."""
    if region.box_px is not None:
        return region.box_px
    if region.box_norm is not None and all(math.isfinite(v) for v in region.box_norm):
        return pixel_box(region.box_norm, width, height)
    return None


def _picture(sample: Sample, may_decode: bool) -> Image.Image | None:
    """The first image at thumbnail size: the one made when it was decoded, or from its pixels; decoded here only
    with `may_decode` (an image validation rejected before it was ever decoded, and only up to the pixel cap)."""
    first = sample.images[0]
    if first.thumbnail is not None:
        return first.thumbnail.copy()
    if first.pixels is not None:
        return thumbnails.thumbnail(first.pixels)
    if not may_decode or first.encoded.width * first.encoded.height > THUMB_MAX_PIXELS:
        return None
    try:
        return thumbnails.thumbnail(images.decode(first.encoded.data, first.path, rgb=True, draft_side=THUMB_SIDE))
    except (OSError, ValueError, RejectedError, Image.DecompressionBombError):  # a rejected image may not decode
        return None


def _boxed_thumbnail(sample: Sample, colour: str = "red", may_decode: bool = False) -> str | None:
    image = _picture(sample, may_decode) if sample.images else None
    if image is None:
        return None
    first = sample.images[0]
    width, height = first.encoded.width, first.encoded.height
    sx, sy = image.width / max(1, width), image.height / max(1, height)
    draw = ImageDraw.Draw(image)
    for region in sample.regions:
        box = _box_px(region, width, height)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        corners = (x1 * sx, y1 * sy, max(x1 * sx, x2 * sx - 1), max(y1 * sy, y2 * sy - 1))
        draw.rectangle(corners, outline=colour, width=2)
        draw.text((x1 * sx + 3, y1 * sy + 1), str(region.region_index), fill=colour)
    return data_uri(image, THUMB_SIDE)


def accepted_entry(sample: Sample, dataset: Dataset) -> dict[str, Any]:
    """What the preview shows of an accepted sample (thumbnails are JPEG data URIs: the page is self-contained)."""
    regions = []
    for r in sample.regions:
        crop = Image.open(io.BytesIO(r.crop.data)) if r.crop is not None else None
        replay = r.replay or {}
        regions.append(
            {
                "index": r.region_index,
                "box": [round(v, 4) for v in r.box_norm] if r.box_norm else list(r.box_raw),
                "box_px": list(r.box_px) if r.box_px else None,
                "label": r.label,
                "replay_marker": r.replay_marker,
                "context": _short(r.context, 400),
                "crop": data_uri(crop, CROP_SIDE) if crop is not None else None,
                "replay_grid_box": replay.get("replay_grid_box"),
                "replay_token_count": replay.get("replay_token_count"),
            }
        )
    tokens = None
    if sample.visual_tokens is not None:
        first = sample.regions[0].replay if sample.regions and sample.regions[0].replay else {}
        tokens = {
            "base": sample.visual_tokens[0],
            "replay": sample.visual_tokens[1],
            "best_resolution": first.get("anyres_best_resolution"),
        }
    return {
        "sample_id": sample.sample_id,
        "source": sample.source,
        "subset": sample.subset,
        "provenance": sample.provenance.to_json(),
        "question": _short(sample.question, 800),
        "answer": _short(sample.answer, 300),
        "text": _short_segments(dataset.card_text(sample), _TEXT),
        "image": _boxed_thumbnail(sample),
        "image_size": [sample.images[0].encoded.width, sample.images[0].encoded.height] if sample.images else None,
        "regions": regions,
        "tokens": tokens,
        "steps": [
            {"index": s.index, "text": _short(s.text, 300), "label": s.label, "mc_score": s.mc_score}
            for s in sample.steps
        ],
        "warnings": list(sample.warnings),
    }


def rejected_entry(rejection: Rejection, image: bool = False) -> dict[str, Any]:
    """What the pages show of a rejected record; with `image`, its image with its boxes drawn, where the sample
    got as far as loading it."""
    record = rejection.raw_line if rejection.raw_line is not None else json.dumps(rejection.record, default=str)
    entry = {
        "sample_id": rejection.sample_id,
        "source": rejection.source,
        "provenance": rejection.provenance.to_json(),
        "errors": [e.to_json() for e in rejection.errors],
        "excerpt": _short(record, 800),
    }
    if image:
        before_decoding = all(e.stage == VALIDATE_STAGE for e in rejection.errors)
        entry["image"] = (
            _boxed_thumbnail(rejection.sample, "#b00020", before_decoding) if rejection.sample is not None else None
        )
    return entry


def _keep(entries: list[tuple[Any, Any]], limit: int) -> list[tuple[Any, Any]]:
    return sorted(entries, key=lambda e: e[0])[:limit]


def _enters(entries: list[tuple[Any, Any]], key: Any, limit: int) -> bool:
    return len(entries) < limit or key < max(e[0] for e in entries)


class Showcase(beam.CombineFn):
    """Outcomes → {"accepted", "warned", "rejected": [...], "examples": {check: [...]}, "profile": the accepted
    samples' histograms} (bounded, deterministic)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def create_accumulator(self) -> dict[str, Any]:
        return {"accepted": [], "warned": [], "rejected": [], "examples": {}, "profile": {}}

    def add_input(self, acc: dict[str, Any], outcome: Sample | Rejection | Duplicate) -> dict[str, Any]:
        if isinstance(outcome, Sample):
            profile.add(acc["profile"], outcome)
            key = preview_key(outcome.sample_id)
            self._offer(acc, "accepted", key, outcome)
            if outcome.warnings:
                self._offer(acc, "warned", key, outcome)
            for name in outcome.warnings:
                self._example(acc, name, outcome.provenance.sort_key(), self._warned, outcome, name)
        elif isinstance(outcome, Rejection):
            self._offer(acc, "rejected", preview_key(json.dumps(outcome.provenance.sort_key())), outcome)
            for check in dict.fromkeys(e.check for e in outcome.errors):
                self._example(acc, check, outcome.provenance.sort_key(), rejected_entry, outcome)
        return acc

    @staticmethod
    def _offer(acc: dict[str, Any], kind: str, key: str, outcome: Sample | Rejection) -> None:
        if _enters(acc[kind], key, LIMITS[kind]):
            acc[kind] = _keep([*acc[kind], (key, outcome)], LIMITS[kind])

    @staticmethod
    def _warned(sample: Sample, name: str) -> dict[str, Any]:
        return {
            "sample_id": sample.sample_id,
            "source": sample.source,
            "provenance": sample.provenance.to_json(),
            "errors": [{"stage": "validate", "check": name, "message": "kept, flagged in the warnings column"}],
            "excerpt": _short(json.dumps(sample.record, default=str), 800),
        }

    @staticmethod
    def _example(acc: dict[str, Any], check: str, key: Any, build, *args: Any) -> None:
        entries = acc["examples"].setdefault(check, [])
        if _enters(entries, key, EXAMPLES_PER_CHECK):
            acc["examples"][check] = _keep([*entries, (key, build(*args))], EXAMPLES_PER_CHECK)

    def compact(self, acc: dict[str, Any]) -> dict[str, Any]:
        """The outcomes still in the preview, as entries (add_input keeps the outcomes themselves)."""
        for kind in ("accepted", "warned"):
            acc[kind] = [(k, accepted_entry(v, self.dataset) if isinstance(v, Sample) else v) for k, v in acc[kind]]
        acc["rejected"] = [(k, rejected_entry(v, True) if isinstance(v, Rejection) else v) for k, v in acc["rejected"]]
        return acc

    def merge_accumulators(self, accs) -> dict[str, Any]:
        out = self.create_accumulator()
        for acc in map(self.compact, accs):
            for kind, limit in LIMITS.items():
                out[kind] = _keep(out[kind] + acc[kind], limit)
            out["profile"] = profile.merge([out["profile"], acc["profile"]])
            for check, entries in acc["examples"].items():
                out["examples"][check] = _keep(out["examples"].get(check, []) + entries, EXAMPLES_PER_CHECK)
        return out

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        acc = self.compact(acc)
        return {
            **{kind: [e for _, e in acc[kind]] for kind in LIMITS},
            "profile": profile.ordered(acc["profile"]),
            "examples": {check: [e for _, e in entries] for check, entries in sorted(acc["examples"].items())},
        }
