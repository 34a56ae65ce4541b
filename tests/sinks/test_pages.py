"""The validation and preview pages: what they show of a report and a showcase, every upstream string escaped, and
nothing fetched from elsewhere (inline CSS, data-URI images)."""

from __future__ import annotations

import base64
import dataclasses
import io
import pickle
import re

from PIL import Image

from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import decode_images, release_pixels
from beam_pipelines.records import EncodedImage, ErrorInfo, LoadedImage, Provenance, Rejection, Sample, Step
from beam_pipelines.sinks.pages import anchor, highlight_regions, preview_page, validation_page
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
    loaded = LoadedImage("coco/a.png", "/r/a.png", "as_written", EncodedImage(buf.getvalue(), "png", 60, 40), "PNG")
    sample = decode_images(normalise_boxes(dataclasses.replace(sample, images=(loaded,)), "normalized"), preview=True)
    sample = crop_regions(sample, CropSettings())
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


def test_the_rejection_reasons_are_ranked_with_their_share_of_the_input():
    page = validation_page(_report(), {})
    reasons = page.split('<h2 id="reasons">', 1)[1].split("</table>", 1)[0]
    assert reasons.index("x1_in_unit_range") < reasons.index("box_arity"), "the most frequent first"
    assert '<td class="num">2</td><td class="num">20.0%</td><td>x1 in [0, 1]</td>' in reasons
    assert '<td class="num">1</td><td class="num">10.0%</td>' in reasons
    assert "No record was rejected" in validation_page(_report(rejected_by_check={}), {})


def test_the_verdict_comes_first_and_says_why_a_version_was_not_published():
    failure = "rejected 80 of 80 input records (100.0%), above --max_reject_fraction=0.1; v000001 not published"
    report = _report(
        version={"version": "v000001", "published": False},
        input_records=80,
        accepted=0,
        rejected=80,
        rejected_by_check={"image_missing": 80},
    )
    page = validation_page(report, {}, failure=failure)
    body = page.split("<body>", 1)[1]
    assert body.index('id="verdict"') < body.index("<table>") < body.index('id="reasons"') < body.index("<h2>Suite")
    assert f'<div class="verdict error" id="verdict"><b>Not published</b> (v000001): {failure}.' in page
    first_reason = page.split('<h2 id="reasons">', 1)[1].split("<tr>")[2]
    assert "image_missing" in first_reason and '<td class="num">100.0%</td>' in first_reason
    published = validation_page(_report(version={"version": "v000002", "published": True}), {})
    assert '<div class="verdict ok" id="verdict"><b>Published v000002</b>: 7 of 10 input records accepted' in published


def test_only_the_suites_that_apply_are_shown():
    page = validation_page(_report(), {}, suites=("vgr_regions",))
    assert re.findall(r"<h2>Suite <code>([^<]+)</code></h2>", page) == ["vgr_regions"]
    assert "not evaluated" not in page


def _targets(page: str) -> tuple[list[str], set[str]]:
    return re.findall(r'href="#([^"]*)"', page), set(re.findall(r'\bid="([^"]*)"', page))


def test_every_in_page_link_has_its_target_and_each_record_is_shown_once():
    twice = Rejection(
        "vgr",
        Provenance("in.jsonl", 5, "c0", "m.jsonl", offset=5),
        (ErrorInfo("validate", "x1_in_unit_range", "x1 = 1.5"), ErrorInfo("parse", "box_arity", "3 values")),
        raw_line='{"row": 5}',
    )
    showcase = _showcase([_rejection(3), _rejection(1), twice])
    page = validation_page(_report(), showcase["examples"])
    links, ids = _targets(page)
    assert links and not [link for link in links if link not in ids], "every link resolves"
    assert page.count("<pre>{&quot;row&quot;: 5}</pre>") == 1, "a record failing two checks is shown once"
    arity = page.split('<div class="card" id="check-box_arity">', 1)[1].split("</div>", 1)[0]
    assert arity.index("row 1") < arity.index("row 3") < arity.index("row 5"), "examples in input order"
    assert 'href="#check-x1_in_unit_range"' in page and 'href="#check-box_arity"' in page
    assert "x1_in_unit_range: x1 = 1.5; box_arity: 3 values" in page
    assert page.count("<pre>{&quot;image&quot;: &quot;a.png&quot;}</pre>") == 2


def test_the_validation_page_escapes_every_upstream_string():
    report = _report(source=HOSTILE)
    report["expectations"] = {
        HOSTILE: {**report["expectations"]["x1_in_unit_range"], "suite": HOSTILE, "description": HOSTILE}
    }
    report["rejected_by_check"] = {HOSTILE: 1}
    rejection = Rejection(
        "vgr",
        Provenance(HOSTILE, 0, "c0", HOSTILE),
        (ErrorInfo("parse", HOSTILE, HOSTILE),),
        raw_line=HOSTILE,
    )
    page = validation_page(report, _showcase([rejection])["examples"])
    assert "<script" not in page
    assert page.count(ESCAPED) >= 8
    links, ids = _targets(page)
    assert anchor("check", HOSTILE) in links and not [link for link in links if link not in ids]
    assert re.fullmatch(r"check-[A-Za-z0-9_.-]+", anchor("check", HOSTILE))


def _svgs(page: str) -> dict[str, list[str]]:
    """Each plot title's SVGs, decoded."""
    found: dict[str, list[str]] = {}
    for alt, data in re.findall(r'<img class="plot" alt="([^"]*)" src="data:image/svg\+xml;base64,([^"]+)"', page):
        found.setdefault(alt, []).append(base64.b64decode(data).decode("utf-8"))
    return found


def test_the_distributions_are_plotted_per_subset_with_their_counts():
    samples = [_sample(), _sample(), dataclasses.replace(_sample(), subset="ai2d")]
    profile = _showcase(samples)["profile"]
    page = validation_page(_report(), {}, profile=profile)
    section = page.split('<h2 id="distributions">', 1)[1]
    assert f"Per subset, stacked: ai2d, {samples[0].subset or '(no subset)'}." in section
    plots = {title: svgs[0] for title, svgs in _svgs(page).items()}
    assert {
        "regions per sample",
        "box width (px)",
        "box area (fraction of the image)",
        "replay tokens per sample",
    } <= set(plots)
    assert "(n=3)" in plots["regions per sample"] and "(n=6)" in plots["box width (px)"], "3 samples, 6 boxes"
    assert ">ai2d</text>" in plots["regions per sample"], "a legend names the subsets"
    assert "steps per sample" not in plots, "no steps: not drawn"
    assert validation_page(_report(), {}, profile=profile) == page, "the same counts draw the same page"
    assert 'href="#distributions"' in page


def test_the_label_balance_is_one_bar_per_subset_in_the_labels_colours():
    steps = [Step(i, "s", label, 0) for i, label in enumerate(("+", "-", None))]
    sample = Sample("p", "visualprocessbench", "MathVerse", Provenance("f", 0, "c"), (), "q", "a", steps=tuple(steps))
    page = validation_page(_report(), {}, profile=_showcase([sample])["profile"])
    svg = _svgs(page)["step labels per subset"][0]
    assert "(n=3)" in svg and ">MathVerse</text>" in svg
    assert all(colour in svg for colour in ("#1a7f37", "#b00020", "#8c959f")), "+ green, − red, neutral grey"


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
    assert f'<span class="badge warning">{ESCAPED}</span>' in page and f"/ {ESCAPED}: <code>" in page
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
    assert '<h2 id="annotation">Annotation model</h2>' in html and "source visualprm" in html
    assert "&lt;b&gt;geo&lt;/b&gt;" in html and "<b>geo" not in html
    plots = _svgs(html)
    assert "(n=3)" in plots["scores of steps labelled +"][0] and "(n=2)" in plots["verification scores of regions"][0]
    assert "1 samples rejected: the annotation model failed" in html
    assert annotation_section({}) == ""


def _process_entry(labels: tuple[str | None, ...]) -> dict:
    steps = [{"index": i, "text": f"step {i}", "label": label, "mc_score": None} for i, label in enumerate(labels)]
    return {
        "sample_id": "vpb-1",
        "source": "visualprocessbench",
        "subset": "MathVerse",
        "provenance": {"input_file": "test.jsonl", "row": 0},
        "question": "q",
        "answer": "a",
        "text": None,
        "image": None,
        "image_size": [10, 10],
        "regions": [],
        "tokens": {"base": 288, "replay": 0, "best_resolution": None},
        "steps": steps,
        "warnings": [],
    }


def test_a_process_card_says_its_tokens_plainly_and_colours_every_label():
    page = preview_page(_report(), {"accepted": [_process_entry(("+", "-", None))], "rejected": [], "examples": {}})
    assert "visual tokens: base <b>288</b> + replay <b>0</b> = <b>288</b>" in page and "AnyRes" not in page
    labels = re.findall(r'<td class="(\w+)"><b>([^<]+)</b></td>', page)
    assert labels == [("ok", "+"), ("error", "−"), ("muted", "neutral")]


def test_samples_with_warnings_are_shown_with_their_warnings():
    warned = dataclasses.replace(_sample(), sample_id="vgr-warned", warnings=("think_balanced",))
    showcase = _showcase([_sample(), warned])
    assert [e["sample_id"] for e in showcase["warned"]] == ["vgr-warned"]
    page = preview_page(_report(), showcase)
    flagged = page.split("<h2>Accepted with warnings (1 shown)</h2>", 1)[1]
    assert '<span class="badge warning">think_balanced</span>' in flagged and "vgr-warned" in flagged


def test_a_rejected_sample_is_drawn_with_its_boxes():
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    loaded = LoadedImage("a.png", "/r/a.png", "as_written", EncodedImage(buf.getvalue(), "png", 200, 100), "PNG")
    sample = dataclasses.replace(_sample(), images=(loaded,))
    sample = dataclasses.replace(sample, regions=tuple(dataclasses.replace(r, box_px=None) for r in sample.regions))
    rejection = sample.reject(ErrorInfo("validate", "box_too_small", "the box is 2 px wide"))
    assert rejection.sample is sample
    again = pickle.loads(pickle.dumps(rejection))
    assert again == rejection and again.sample is None, "no image bytes travel with a rejection"
    showcase = _showcase([rejection])
    page = preview_page(_report(), showcase)
    uri = re.search(r'<img src="data:image/jpeg;base64,([^"]+)" alt="rejected image with boxes">', page).group(1)
    drawn = Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB")
    x1, y1 = round(0.1 * drawn.width), round(0.2 * drawn.height)  # the first box's corner, from its normalised box
    r, g, b = drawn.getpixel((x1 + 1, y1 + 6))
    assert r > 120 and g < 90 and b < 90, "the box's outline is drawn in red on the white image"
    assert min(drawn.getpixel((5, drawn.height - 5))) > 240, "and nothing outside the boxes"
    assert "box_too_small: the box is 2 px wide" in page


def test_a_rejected_image_that_does_not_decode_is_listed_without_a_picture():
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buf, format="PNG")
    data = buf.getvalue()[: len(buf.getvalue()) // 2]
    loaded = LoadedImage("t.png", "/r/t.png", "as_written", EncodedImage(data, "png", 300, 300), "PNG")
    rejection = dataclasses.replace(_sample(), images=(loaded,)).reject(ErrorInfo("images", "truncated", "cut"))
    showcase = _showcase([rejection])
    assert showcase["rejected"][0]["image"] is None
    assert "truncated: cut" in preview_page(_report(), showcase)


def test_every_category_of_a_plot_is_named():
    steps = [Step(i, "s", "+", 0) for i in range(3)]
    sample = Sample("p", "visualprocessbench", "Geo", Provenance("f", 0, "c"), (), "q", "a", steps=tuple(steps))
    svg = _svgs(validation_page(_report(), {}, profile=_showcase([sample])["profile"]))["first step labelled −"][0]
    assert ">none</text>" in svg and ">10+</text>" in svg and ">9</text>" in svg, "twelve categories, twelve names"
