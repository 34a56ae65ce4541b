"""The data's distributions for the validation page: fixed-bin histograms per subset, folded by the preview's
combiner (`showcase.Showcase`).

Each accepted sample adds its measurements (`measure`, a pure function) to the histograms of its subset (a run
reads one source). Bins are fixed in `METRICS`, so a profile is a sum of counts: the same whatever the bundling,
worker count or input order, and small enough to cross the shuffle (a few hundred integers per group). A metric
that measured nothing, or only zeros, is not drawn.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from beam_pipelines.records import Sample

_INF = math.inf
_PIXELS = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, _INF)
_UNIT = tuple(i / 20 for i in range(21))
_COSINE = tuple(round(-1 + i / 10, 1) for i in range(21))


@dataclass(frozen=True)
class Metric:
    """A histogram: `edges` for numbers (bin i holds edges[i] <= value < edges[i + 1]; the last bin is closed when
    the last edge is finite), or `categories` for labels."""

    name: str
    title: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    integer: bool = False

    @property
    def bins(self) -> int:
        return len(self.categories) if self.categories else len(self.edges) - 1

    def bin_of(self, value: Any) -> int | None:
        if self.categories:
            return self.categories.index(value) if value in self.categories else None
        if value is None or not math.isfinite(value) or value < self.edges[0]:
            return None
        return min(bisect.bisect_right(self.edges, value) - 1, self.bins - 1)

    def labels(self) -> list[str]:
        if self.categories:
            return list(self.categories)
        if not self.integer and self.bins > 12:  # many narrow bins: each named by its lower edge
            return [f"{lo:g}" for lo in self.edges[:-1]]
        return [self._label(lo, hi) for lo, hi in zip(self.edges, self.edges[1:], strict=False)]

    def _label(self, lo: float, hi: float) -> str:
        if hi == _INF:
            return f"{lo:g}+"
        if self.integer:
            return f"{lo:g}" if hi - lo == 1 else f"{lo:g}–{hi - 1:g}"
        return f"{lo:g}–{hi:g}"


METRICS: tuple[Metric, ...] = (
    Metric("regions_per_sample", "regions per sample", (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, _INF), integer=True),
    Metric("box_width_px", "box width (px)", _PIXELS),
    Metric("box_height_px", "box height (px)", _PIXELS),
    Metric("box_area", "box area (fraction of the image)", _UNIT),
    Metric("box_aspect", "box aspect (width / height)", (0, 0.125, 0.25, 0.5, 1, 2, 4, 8, _INF)),
    Metric("crop_side_px", "crop, longer side (px)", _PIXELS),
    Metric("replay_tokens", "replay tokens per sample", (0, 1, 9, 17, 33, 65, 129, 257, 513, 1025, _INF), integer=True),
    Metric("image_width_px", "image width (px)", _PIXELS),
    Metric("image_height_px", "image height (px)", _PIXELS),
    Metric("steps_per_sample", "steps per sample", (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, _INF), integer=True),
    Metric("step_labels", "step labels", categories=("+", "-", "neutral")),
    Metric(
        "first_error_step",
        "first step labelled −",
        categories=(*(str(i) for i in range(10)), "10+", "none"),
    ),
    Metric("mc_score", "Monte Carlo score of a step", _UNIT),
    Metric("grounding_score", "grounding score of a region (CLIP)", _COSINE),
    Metric("verify_score", "verification score of a region", _UNIT),
    Metric("prm_score", "process-reward score of a step", _UNIT),
)
BY_NAME = {m.name: m for m in METRICS}


def _first_error(sample: Sample) -> str:
    index = next((s.index for s in sample.steps if s.label == "-"), None)
    if index is None:
        return "none"
    return str(index) if index < 10 else "10+"


def measure(sample: Sample) -> Iterator[tuple[str, Any]]:
    """(metric, value) for every measurement of one accepted sample."""
    yield "regions_per_sample", len(sample.regions)
    if sample.images:
        first = sample.images[0].encoded
        yield "image_width_px", first.width
        yield "image_height_px", first.height
        for region in sample.regions:
            if region.box_px is not None:
                x1, y1, x2, y2 = region.box_px
                w, h = x2 - x1, y2 - y1
                yield "box_width_px", w
                yield "box_height_px", h
                yield "box_area", w * h / max(1, first.width * first.height)
                if h > 0:
                    yield "box_aspect", w / h
    for region in sample.regions:
        if region.crop is not None:
            yield "crop_side_px", max(region.crop.width, region.crop.height)
        if region.grounding_score is not None:
            yield "grounding_score", region.grounding_score
        if region.verify_score is not None:
            yield "verify_score", region.verify_score
    if sample.visual_tokens is not None:
        yield "replay_tokens", sample.visual_tokens[1]
    yield "steps_per_sample", len(sample.steps)
    if sample.steps:
        yield "first_error_step", _first_error(sample)
    for step in sample.steps:
        yield "step_labels", step.label if step.label in ("+", "-") else "neutral"
        if step.mc_score is not None:
            yield "mc_score", step.mc_score
        if step.prm_score is not None:
            yield "prm_score", step.prm_score


def group_of(sample: Sample) -> str:
    """A sample's group: its subset (a run reads one source)."""
    return sample.subset or "(no subset)"


Profile = dict[str, dict[str, list[int]]]
"""group (subset) → metric → counts per bin."""


def add(profile: Profile, sample: Sample) -> Profile:
    histograms = profile.setdefault(group_of(sample), {})
    for name, value in measure(sample):
        metric = BY_NAME[name]
        index = metric.bin_of(value)
        if index is not None:
            histograms.setdefault(name, [0] * metric.bins)[index] += 1
    return profile


def merge(profiles: list[Profile]) -> Profile:
    out: Profile = {}
    for profile in profiles:
        for group, histograms in profile.items():
            into = out.setdefault(group, {})
            for name, counts in histograms.items():
                into[name] = [a + b for a, b in zip(into.get(name, [0] * len(counts)), counts, strict=True)]
    return out


def _informative(metric: Metric, counts: list[int]) -> bool:
    """Some count, and for a count per sample (first bin: exactly 0) some count above 0: a PRM sample's regions,
    all zero, say nothing."""
    if metric.integer and metric.edges[:2] == (0, 1):
        return sum(counts[1:]) > 0
    return sum(counts) > 0


def drawn(profile: Profile) -> list[tuple[Metric, dict[str, list[int]]]]:
    """The metrics worth a plot, in `METRICS` order, each with its counts per group (in name order) that have it."""
    out = []
    for metric in METRICS:
        groups = {g: profile[g][metric.name] for g in sorted(profile) if metric.name in profile[g]}
        if any(_informative(metric, counts) for counts in groups.values()):
            out.append((metric, groups))
    return out


def ordered(profile: Profile) -> Profile:
    """The profile with groups and metrics in name order (what the page is drawn from)."""
    return {group: dict(sorted(h.items())) for group, h in sorted(profile.items())}
