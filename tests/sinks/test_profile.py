"""The data's distributions: what one sample measures, fixed bins, a fold that does not depend on bundling, and
only informative histograms drawn."""

from __future__ import annotations

import dataclasses

from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Region, Sample, Step
from beam_pipelines.sinks.profile import BY_NAME, add, drawn, measure, merge, ordered
from beam_pipelines.sinks.showcase import Showcase
from beam_pipelines.sources.registry import dataset_named
from tests.sinks.test_showcase import _fold


def _vgr(i: int = 0, subset: str = "chartqa") -> Sample:
    image = LoadedImage("a.png", "/r/a.png", "as_written", EncodedImage(b"", "png", 1000, 500), "PNG")
    regions = (
        Region(0, (0.1, 0.1, 0.3, 0.5), (0.1, 0.1, 0.3, 0.5), True, None, "", box_px=(100, 50, 300, 250)),
        Region(1, (0, 0, 1, 1), (0, 0, 1, 1), True, None, "", box_px=(0, 0, 1000, 500), verify_score=0.97),
    )
    return Sample(
        f"vgr-{i}", "vgr", subset, Provenance("f", i, "c"), ("a.png",), "q", "a",
        regions=regions, images=(image,), visual_tokens=(288, 20),
    )  # fmt: skip


def _prm(labels: tuple[str | None, ...], mc: float | None = None) -> Sample:
    steps = tuple(Step(i, "s", label, 0, mc_score=mc) for i, label in enumerate(labels))
    return Sample("p", "visualprocessbench", "geo", Provenance("f", 0, "c"), (), "q", "a", steps=steps)


def test_a_grounded_sample_measures_its_boxes_image_and_tokens():
    got = list(measure(_vgr()))
    assert ("regions_per_sample", 2) in got and ("replay_tokens", 20) in got
    assert ("box_width_px", 200) in got and ("box_height_px", 200) in got and ("box_aspect", 1.0) in got
    assert ("box_area", 200 * 200 / (1000 * 500)) in got and ("box_area", 1.0) in got
    assert ("image_width_px", 1000) in got and ("verify_score", 0.97) in got
    assert not [name for name, _ in got if name in ("step_labels", "mc_score", "first_error_step")]


def test_process_labels_measure_balance_and_the_first_error():
    got = list(measure(_prm(("+", None, "-", "-"), mc=0.5)))
    assert [v for n, v in got if n == "step_labels"] == ["+", "neutral", "-", "-"]
    assert ("first_error_step", "2") in got and ("steps_per_sample", 4) in got
    assert [v for n, v in got if n == "mc_score"] == [0.5] * 4
    assert ("first_error_step", "none") in list(measure(_prm(("+",))))
    assert ("first_error_step", "10+") in list(measure(_prm(("+",) * 12 + ("-",))))


def test_bins_are_fixed_and_the_edges_go_where_they_say():
    width, unit = BY_NAME["box_width_px"], BY_NAME["box_area"]
    assert [width.bin_of(v) for v in (0, 15, 16, 5000)] == [0, 0, 1, width.bins - 1]
    assert unit.bin_of(1.0) == unit.bins - 1 and unit.bin_of(-0.1) is None and unit.bin_of(float("nan")) is None
    assert BY_NAME["regions_per_sample"].labels()[:3] == ["0", "1", "2"] and width.labels()[-1] == "4096+"
    assert BY_NAME["steps_per_sample"].labels()[8] == "8–9"


def test_the_fold_does_not_depend_on_bundling():
    samples = [_vgr(i, subset) for i in range(30) for subset in ("chartqa", "ai2d")]
    fn = Showcase(dataset_named("vgr"))
    whole = fn.extract_output(_fold(fn, samples))["profile"]
    parts = [fn.compact(_fold(fn, samples[i::4])) for i in range(4)]
    assert fn.extract_output(fn.merge_accumulators(parts))["profile"] == whole
    assert sum(whole["chartqa"]["regions_per_sample"]) == 30
    assert sum(whole["ai2d"]["box_width_px"]) == 60
    assert merge([{}, whole]) == whole and ordered(whole) == whole and list(whole) == ["ai2d", "chartqa"]


def test_only_histograms_that_say_something_are_drawn():
    profile = add({}, _prm(("+", "-")))
    names = [m.name for m, _ in drawn(profile)]
    assert "regions_per_sample" not in names, "a PRM sample's zero regions say nothing"
    assert names == ["steps_per_sample", "step_labels", "first_error_step"]
    no_regions = add({}, dataclasses.replace(_vgr(), regions=()))
    assert "regions_per_sample" not in [m.name for m, _ in drawn(no_regions)]
    two = add(add({}, _vgr(0, "chartqa")), _vgr(1, "ai2d"))
    regions = dict(drawn(two))[BY_NAME["regions_per_sample"]]
    assert list(regions) == ["ai2d", "chartqa"] and regions["ai2d"][2] == 1, "per subset, in name order"
