"""The validation and preview pages: what they show of a report and a showcase, every upstream string escaped, and
nothing fetched from elsewhere (inline CSS, data-URI images)."""

from __future__ import annotations

import dataclasses
import io
import re

from PIL import Image

from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import release_pixels
from beam_pipelines.records import EncodedImage, ErrorInfo, LoadedImage, Provenance, Rejection, Sample
from beam_pipelines.sinks.pages import highlight_regions, preview_page, validation_page
from beam_pipelines.sinks.showcase import Showcase
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.validation.boxes import normalise_boxes

HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def _sample(question: str = "How tall?", context: str = "The bar") -> Sample:
    gpt = (
        f"<think> {context} <SOT>[0.1, 0.2, 0.5, 0.6]<EOT><image> is tall. "
        '<SOT>{"bbox_2d": [0.5, 0.5, 1.0, 1.0], "label": "lbl"}<EOT> </think> Final answer: 3'
    )
    record = {
        "image": "coco/a.png",
        "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": gpt}],
    }
    sample = dataset_named("vgr").parse(record, Provenance("in.jsonl", 7, "c0", offset=7))
    image = Image.new("RGB", (60, 40), (200, 10, 10))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    loaded = LoadedImage(
        "coco/a.png", "/r/a.png", "as_written", EncodedImage(buf.getvalue(), "png", 60, 40), "PNG", 1, image
    )
    sample = crop_regions(normalise_boxes(dataclasses.replace(sample, images=(loaded,)), "normalized"), CropSettings())
    sample = replay.compute_replay(sample, replay.preset(replay.DEFAULT_PRESET, None), with_pixels=False)
    return release_pixels(sample)


def _rejection(row: int = 3, message: str = "box has 3 values", line: str = '{"image": "a.png"}') -> Rejection:
    error = ErrorInfo("parse", "box_arity", message)
    return Rejection("vgr", Provenance("in.jsonl", row, "c0", "m.jsonl", offset=row), (error,), raw_line=line)


def _showcase(outcomes) -> dict:
    fn = Showcase(dataset_named("vgr"))
    acc = fn.create_accumulator()
    for outcome in outcomes:
        acc = fn.add_input(acc, outcome)
    return fn.extract_output(acc)


def _report(source: str = "vgr", **extra) -> dict:
    expectation = {
        "suite": "vgr_regions",
        "column": "x1",
        "severity": "error",
        "type": "expect_column_values_to_be_between",
        "description": "x1 in [0, 1]",
        "evaluated": 8,
        "failed": 2,
        "pass_rate": 0.75,
    }
    return {
        "config": {"source": source, "expectations": "expectations/"},
        "input_records": 10,
        "accepted": 7,
        "rejected": 2,
        "duplicates": 1,
        "regions": 14,
        "steps": 0,
        "expectations": {
            "x1_in_unit_range": expectation,
            "think_balanced": {
                **expectation,
                "suite": "vgr_samples",
                "severity": "warning",
                "column": "think_balanced",
                "evaluated": 0,
                "failed": 0,
                "pass_rate": None,
            },
        },
        "rejected_by_check": {"x1_in_unit_range": 2, "box_arity": 1},
        "token_economy": {
            "mean_base_tokens": 288.0,
            "mean_replay_tokens": 12.5,
            "mean_total_tokens": 300.5,
            "baseline_tokens": 2880,
        },
        **extra,
    }


def _counts(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr><th>([a-z ]+)</th><td class="num">(\d+)</td></tr>', page))


def _external_references(page: str) -> list[str]:
    """Everything in a page that a browser would fetch from elsewhere."""
    found = re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<script|<link|<iframe|@import|url\(", page, re.IGNORECASE)
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    return found + [s for s in sources if not s.startswith("data:image/")]


def test_highlight_regions_marks_the_referenced_segments_and_escapes_the_text():
    segments = [
        ["a < b ", None],
        ["<SOT>[0.1, 0.2, 0.3, 0.4]<EOT><image>", 0],
        [" & ", None],
        ["<SOT>[1,2,3,4]<EOT>", 1],
    ]
    assert highlight_regions(segments) == (
        "a &lt; b <mark>[0] &lt;SOT&gt;[0.1, 0.2, 0.3, 0.4]&lt;EOT&gt;&lt;image&gt;</mark> &amp; "
        "<mark>[1] &lt;SOT&gt;[1,2,3,4]&lt;EOT&gt;</mark>"
    )
    assert highlight_regions([["plain", None]]) == "plain"
    assert highlight_regions([]) == ""


def test_the_validation_page_shows_counts_suites_and_pass_rates():
    page = validation_page(_report(), {})
    assert page.startswith("<!doctype html>") and "<title>vgr-etl validation: vgr</title>" in page
    assert _counts(page) == {
        "input records": "10",
        "accepted": "7",
        "rejected": "2",
        "duplicates": "1",
        "regions": "14",
        "steps": "0",
    }
    suites = re.findall(r"<h2>Suite <code>([^<]+)</code></h2>", page)
    assert suites == ["vgr_regions", "vgr_samples"], "suites in name order"
    assert '<span class="bar"><span style="width:90px"></span></span> 75.00%' in page
    assert "not evaluated" in page and page.count('class="bar"') == 1
    assert '<td class="warning">warning</td>' in page and '<td class="error">error</td>' in page


def test_other_rejections_are_listed_apart_from_the_expectations():
    page = validation_page(_report(), {})
    other = page.split("<h2>Other rejections", 1)[1]
    assert '<a href="#box_arity">box_arity</a></td><td class="num">1</td>' in other
    assert "x1_in_unit_range" not in other
    no_other = validation_page(_report(rejected_by_check={"x1_in_unit_range": 2}), {})
    assert "Other rejections" not in no_other


def test_examples_are_cards_that_the_check_links_point_to():
    showcase = _showcase([_rejection(3), _rejection(1)])
    page = validation_page(_report(), showcase["examples"])
    assert list(showcase["examples"]) == ["box_arity"]
    card = page.split('<div class="card" id="box_arity">', 1)[1]
    assert card.index("row 1") < card.index("row 3"), "examples in input order"
    assert "in.jsonl m.jsonl row 1" in card and "box_arity: box has 3 values" in card
    assert "<pre>{&quot;image&quot;: &quot;a.png&quot;}</pre>" in card
    assert 'href="#box_arity"' in page


def test_the_validation_page_escapes_every_upstream_string():
    report = _report(source=HOSTILE)
    report["expectations"] = {
        HOSTILE: {**report["expectations"]["x1_in_unit_range"], "suite": HOSTILE, "description": HOSTILE}
    }
    report["rejected_by_check"] = {HOSTILE + "2": 1}
    rejection = Rejection(
        "vgr",
        Provenance(HOSTILE, 0, "c0", HOSTILE),
        (ErrorInfo("parse", HOSTILE, HOSTILE),),
        raw_line=HOSTILE,
    )
    page = validation_page(report, _showcase([rejection])["examples"])
    assert "<script" not in page
    assert page.count(ESCAPED) >= 8
    assert f'id="{ESCAPED}"' in page and f'href="#{ESCAPED}"' in page


def test_the_preview_shows_each_accepted_sample_with_its_regions_and_tokens():
    sample = _sample()
    page = preview_page(_report(), _showcase([sample, _rejection()]))
    assert "<title>vgr-etl preview: vgr</title>" in page
    assert "<h2>Accepted (1 shown)</h2>" in page and "<h2>Rejected (1 shown)</h2>" in page
    assert f"<code>{sample.sample_id}</code>" in page
    assert "Mean visual tokens per sample: base 288.0 + replay 12.5 = 300.5 (baseline 2880)." in page
    base, replayed = sample.visual_tokens
    assert f"base <b>{base}</b>" in page and f"= <b>{base + replayed}</b> vs 2880 un-pooled" in page
    assert page.count('alt="crop ') == 2 and 'alt="image with boxes"' in page
    assert "<mark>[0]</mark> box [0.1, 0.2, 0.5, 0.6] px [6, 8, 30, 24]" in page
    assert " label lbl (no replay marker)" in page, "the second region has a label and no <image> marker"
    assert "<b>Answer:</b> 3" in page
    assert page.count("<mark>[0] &lt;SOT&gt;") == 1 and page.count("<mark>[1] &lt;SOT&gt;") == 1


def test_a_preview_without_token_economy_or_samples_still_renders():
    report = _report(token_economy={})
    page = preview_page(report, {"accepted": [], "rejected": [], "examples": {}})
    assert "Mean visual tokens" not in page
    assert "<h2>Accepted (0 shown)</h2>" in page and "<h2>Rejected (0 shown)</h2>" in page


def test_the_preview_escapes_every_upstream_string():
    sample = dataclasses.replace(
        _sample(question=HOSTILE, context=HOSTILE), subset=HOSTILE, warnings=(HOSTILE,), answer=HOSTILE
    )
    page = preview_page(_report(source=HOSTILE), _showcase([sample, _rejection(message=HOSTILE, line=HOSTILE)]))
    assert "<script" not in page
    assert "<b>Q:</b> " + ESCAPED in page and "<b>Answer:</b> " + ESCAPED in page
    assert f"warnings: {ESCAPED}" in page and f"/ {ESCAPED}: <code>" in page
    assert f"<pre>{ESCAPED}</pre>" in page, "the rejected record's excerpt"


def test_the_pages_fetch_nothing_from_elsewhere():
    showcase = _showcase([_sample(), _rejection()])
    pages = [validation_page(_report(), showcase["examples"]), preview_page(_report(), showcase)]
    assert [_external_references(page) for page in pages] == [[], []]
    assert all("<style>" in page for page in pages)
    assert re.findall(r'src="(data:image/jpeg;base64,)', pages[1]) == ["data:image/jpeg;base64,"] * 3


def test_the_validation_page_shows_the_annotation_models_agreement_and_histograms():
    from beam_pipelines.annotation.agreement import section
    from beam_pipelines.sinks.pages import annotation_section

    stats = {
        "annotation/source:visualprm/cm/pp": 3,
        "annotation/source:visualprm/cm/nn": 1,
        "annotation/source:visualprm/hist/p/900": 3,
        "annotation/source:visualprm/hist/n/100": 1,
        "annotation/subset:visualprm:<b>geo</b>/cm/pp": 3,
        "verify/source:vgr/regions": 2,
        "verify/source:vgr/hist/19": 2,
        "check/inference_failed": 1,
    }
    html = annotation_section(section(stats, 0.5))
    assert "<h2>Annotation model</h2>" in html and "source visualprm" in html
    assert "&lt;b&gt;geo&lt;/b&gt;" in html and "<b>geo" not in html
    assert html.count('title="0.90-0.95: 3"') == 1 and "verification scores of regions (2)" in html
    assert "1 samples rejected: the annotation model failed" in html
    assert annotation_section({}) == ""
