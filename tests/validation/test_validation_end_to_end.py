"""The suites inside the pipeline: pages, the warnings column, JSON edits and batch sizes, on the demo data."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from beam_pipelines.validation.suites import DEFAULT_DIR
from tests.conftest import assert_invariant, parquet_rows, rejected_lines, report_of, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`


@pytest.fixture(scope="module")
def vgr_run(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("vgr") / "out"
    assert run_cli(*demo["vgr"].argv(str(out)), "--max_reject_fraction=0.5") == 0
    return out


def test_validation_page_is_self_contained_and_shows_every_expectation_that_applies(vgr_run):
    page = (vgr_run / "validation" / "index.html").read_text()
    report = report_of(vgr_run)
    assert not re.search(r"(src|href)=\"https?:", page)
    applies = {"vgr_regions", "vgr_samples", "images"}
    assert set(re.findall(r"<h2>Suite <code>([^<]+)</code></h2>", page)) == applies
    for name, exp in report["expectations"].items():
        if exp["suite"] in applies:
            assert name in page
            assert f'<td class="num">{exp["evaluated"]}</td><td class="num">{exp["failed"]}</td>' in page
    failing = [n for n, e in report["expectations"].items() if e["failed"] and e["severity"] == "error"]
    failing += list(report["warnings"])  # warnings on samples that were kept
    assert failing and all(f'id="check-{n}"' in page for n in failing)  # examples of failing rows
    assert f'<td class="num">{report["rejected"]}</td>' in page


def test_preview_draws_accepted_samples_and_lists_rejected_ones(vgr_run):
    page = (vgr_run / "preview" / "index.html").read_text()
    assert not re.search(r"(src|href)=\"https?:", page)
    accepted = {r["sample_id"] for r in parquet_rows(vgr_run, "samples")}
    shown = set(re.findall(r"<code>(vgr-[0-9a-f]{32})</code>", page))
    assert shown and shown <= accepted
    assert page.count('src="data:image/jpeg;base64,') > len(shown)  # the image plus its crops
    assert "<mark>[0]" in page and "visual tokens: base" in page
    rejected = rejected_lines(vgr_run)
    assert any(line["errors"][0]["message"][:40] in page.replace("&#x27;", "'") for line in rejected)


def test_warnings_column_marks_kept_rows_and_matches_the_report(vgr_run):
    report = report_of(vgr_run)
    counts: dict[str, int] = {}
    for row in parquet_rows(vgr_run, "samples"):
        for name in row["warnings"]:
            counts[name] = counts.get(name, 0) + 1
    assert counts == report["warnings"] and "no_orphan_tags" in counts
    assert all(report["expectations"][name]["severity"] == "warning" for name in counts)


def test_editing_suite_json_changes_the_outcome_without_code(demo, vgr_run, tmp_path):
    suites = tmp_path / "suites"
    shutil.copytree(DEFAULT_DIR, suites)
    path = suites / "vgr_samples.json"
    suite = json.loads(path.read_text())
    for exp in suite["expectations"]:
        if exp["meta"]["name"] == "no_orphan_tags":
            exp["severity"] = "critical"
        if exp["meta"]["name"] == "regions_per_sample":
            exp["kwargs"]["max_value"] = 1
    path.write_text(json.dumps(suite))
    out = tmp_path / "out"
    assert run_cli(*demo["vgr"].argv(str(out)), f"--expectations={suites}", "--max_reject_fraction=1") == 0
    report, before = assert_invariant(out), report_of(vgr_run)
    checks = {e["check"] for line in rejected_lines(out) for e in line["errors"]}
    assert {"no_orphan_tags", "regions_per_sample"} <= checks
    assert report["rejected"] > before["rejected"] and "no_orphan_tags" not in report["warnings"]
    assert report["expectations"]["no_orphan_tags"]["severity"] == "error"


def test_batch_size_does_not_change_outcomes(demo, vgr_run, tmp_path):
    out = tmp_path / "out"
    args = (*demo["vgr"].argv(str(out)), "--max_reject_fraction=0.5", "--validation_batch_size=1")
    assert run_cli(*args, "--validation_batch_bytes=1") == 0
    assert rejected_lines(out) == rejected_lines(vgr_run)
    assert report_of(out)["expectations"] == report_of(vgr_run)["expectations"]
    assert parquet_rows(out, "samples") == parquet_rows(vgr_run, "samples")


def test_a_typo_in_a_suite_fails_the_run_before_reading(demo, tmp_path, capsys):
    suites = tmp_path / "suites"
    shutil.copytree(DEFAULT_DIR, suites)
    path = suites / "images.json"
    path.write_text(path.read_text().replace('"min_side"', '"min_sides"'))
    assert run_cli(*demo["vgr"].argv(str(tmp_path / "out")), f"--expectations={suites}") == 2
    assert "min_sides" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.json").exists()


def _conversation_of(raw: dict, flip: int | None = None) -> dict:
    """The conversation form of a Raw record, as InternVL's item2conv_prm builds it (optionally one label flipped)."""
    turns = [{"from": "system", "value": "You are a PRM."}]
    for i, step in enumerate(raw["steps_with_score"]):
        text = f"### Question:\n{raw['question']}\n\n### Solution Process:\n{step['step']}" if i == 0 else step["step"]
        label = "+" if step["score"] > 0 else "-"
        if i == flip:
            label = "-" if label == "+" else "+"
        turns += [{"from": "human", "value": text}, {"from": "gpt", "value": label}]
    return {"id": -1, "image": raw["image"], "conversations": turns}


def test_label_reference_checks_conversation_labels_against_raw_scores(tmp_path):
    from PIL import Image

    (tmp_path / "images" / "Geo").mkdir(parents=True)
    Image.new("RGB", (64, 48), (10, 200, 30)).save(tmp_path / "images" / "Geo" / "a.png")
    raws = [
        {
            "image": "Geo/a.png",
            "question": f"<image>\nProblem {n}?",
            "question_orig": f"Problem {n}?",
            "answer": "1",
            "response": "r",
            "num_mc_sequences": 16,
            "steps_with_score": [
                {"step": f"Step A{n}.", "score": 0.5, "num_mc_correct": 8, "num_mc_total": 16},
                {"step": f"Step B{n}.", "score": 0.0, "num_mc_correct": 0, "num_mc_total": 16},
            ],
        }
        for n in range(3)
    ]
    # another rollout of question 0 with the same text but other scores: both conversations are right
    rerun = {
        **raws[0],
        "steps_with_score": [{**s, "score": 0.0, "num_mc_correct": 0} for s in raws[0]["steps_with_score"]],
    }
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [rerun, *raws]))
    conversations = [_conversation_of(raws[0]), _conversation_of(raws[1], flip=1), _conversation_of(raws[2])]
    conversations.append(_conversation_of({**raws[0], "question": "<image>\nNot in the Raw files?"}, flip=0))
    conversations.append(_conversation_of(rerun))
    (tmp_path / "conv.jsonl").write_text("".join(json.dumps(c) + "\n" for c in conversations))
    out = tmp_path / "out"
    args = ["--source=visualprm", f"--input={tmp_path / 'conv.jsonl'}", f"--image_root={tmp_path / 'images'}"]
    assert (
        run_cli(*args, f"--output={out}", f"--label_reference={tmp_path / 'raw.jsonl'}", "--max_reject_fraction=1") == 0
    )
    report = assert_invariant(out)
    [line] = rejected_lines(out)
    assert line["provenance"]["row"] == 1 and line["errors"][0]["check"] == "label_matches_score_rule"
    assert line["errors"][0]["value"] == {"label": "+", "official_label": "-"}
    assert report["accepted"] == 4
    assert report["expectations"]["label_matches_score_rule"]["failed"] == 1
    # row 3 has no Raw counterpart: its labels could not be compared, which the sample and the report say
    found = report["expectations"]["label_reference_found"]
    assert (found["evaluated"], found["failed"]) == (5, 1)
    flagged = [r for r in parquet_rows(out, "samples") if "label_reference_found" in r["warnings"]]
    assert [r["input_row"] for r in flagged] == [3]
