"""The annotation stage end to end through the CLI, on the demo data of every source, outputs read back for real."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import webdataset as wds

from tests.conftest import assert_invariant, parquet_rows, rejected_lines, report_of, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

SOURCES = ("vgr", "visualprm", "visualprm_raw", "visualprocessbench")


def annotate(demo, source: str, out: Path, model: str, *extra: str) -> int:
    return run_cli(*demo[source].argv(str(out)), f"--annotation_model={model}", "--max_reject_fraction=0.9", *extra)


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_gets_its_scores_in_both_formats_and_the_agreement_in_the_report(
    demo, tiny_llava, tmp_path, source
):
    out = tmp_path / source
    assert annotate(demo, source, out, tiny_llava) == 0
    report = assert_invariant(out)
    files = sorted(str(p) for p in (out / "parquet" / "samples").glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
    samples = list(wds.WebDataset(sorted(str(p) for p in (out / "webdataset").glob("*.tar")), shardshuffle=False))
    records = {s["__key__"]: json.loads(s["json"]) for s in samples}
    annotation = report["annotation"]
    if source == "vgr":
        scores = [r["verify_score"] for row in ds for r in row["regions"]]
        assert scores and all(0 < s < 1 for s in scores)
        assert all(
            row["verify_score_min"] == min(r["verify_score"] for r in row["regions"]) for row in ds if row["regions"]
        )
        assert annotation["regions"]["overall"]["regions"] == len(scores) == report["regions"]
        regions = parquet_rows(out, "regions")
        assert sorted(r["verify_score"] for r in regions) == sorted(scores)
        assert annotation["steps"] is None
    else:
        steps = [s for row in ds for s in row["steps"]]
        assert steps and all(0 < s["prm_score"] < 1 for s in steps)
        for row in ds:
            assert row["prm_score_min"] == pytest.approx(min(s["prm_score"] for s in row["steps"]))
            assert row["prm_first_error"] == next((s["index"] for s in row["steps"] if s["prm_score"] < 0.5), -1)
            assert [s["prm_score"] for s in records[row["sample_id"]]["steps"]] == pytest.approx(
                [s["prm_score"] for s in row["steps"]]
            )
        overall = annotation["steps"]["overall"]
        counted = [s for s in steps if s["label"] in ("+", "-") and s["measured"] is not False]
        assert overall["steps"] == len(counted) and sum(overall["confusion"].values()) == len(counted)
        assert set(annotation["steps"]["by_source"]) == {source}
        assert overall["samples"] == report["accepted"] and annotation["regions"] is None


def test_a_second_model_family_scores_through_its_image_processor_and_tokenizer(demo, tiny_internvl, tmp_path):
    out = tmp_path / "internvl"
    assert annotate(demo, "visualprocessbench", out, tiny_internvl) == 0
    rows = parquet_rows(out, "samples")
    assert rows and all(0 < s["prm_score"] < 1 for row in rows for s in row["steps"])
    assert report_of(out)["annotation"]["steps"]["by_subset"], "per data_source, as the benchmark reports it"


def test_consensus_filtering_rejects_the_samples_whose_first_errors_disagree(demo, tiny_llava, tmp_path):
    out, kept = tmp_path / "filtered", tmp_path / "all"
    assert annotate(demo, "visualprm_raw", kept, tiny_llava) == 0
    assert annotate(demo, "visualprm_raw", out, tiny_llava, "--prm_filter=consensus") == 0
    disagree = [
        r
        for r in parquet_rows(kept, "samples")
        if r["prm_first_error"] != next((s["index"] for s in r["steps"] if s["correctness"] == -1), -1)
    ]
    report = report_of(out)
    assert disagree and report["rejected_by_check"]["prm_first_error_disagrees"] == len(disagree)
    assert report["annotation"]["first_error_filter_rejected"] == len(disagree)
    lines = [line for line in rejected_lines(out) if line["errors"][0]["check"] == "prm_first_error_disagrees"]
    assert {line["sample_id"] for line in lines} == {r["sample_id"] for r in disagree}
    assert all(line["errors"][0]["stage"] == "annotate" for line in lines)


def test_a_model_that_fails_on_its_inputs_dead_letters_its_samples_and_the_job_goes_on(demo, tiny_llava, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(tiny_llava).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    # a word no PRM prompt holds: the image features no longer fit the image tokens, in every forward pass
    config["image_token_index"] = json.loads((broken / "tokenizer.json").read_text())["model"]["vocab"]["refers"]
    (broken / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    assert annotate(demo, "visualprocessbench", out, str(broken)) == 1, "every sample failed: over the fraction"
    report = report_of(out)
    assert report["rejected_by_check"]["inference_failed"] == report["annotation"]["inference_failed"]
    assert report["rejected_by_check"]["inference_failed"] == report["input_records"] - 1  # and one bad record
    assert all(line["errors"][0]["check"] != "unexpected_error" for line in rejected_lines(out))
    assert report["invariant"]["holds"]


def test_cuda_on_a_machine_without_it_fails_the_launch_in_one_line(demo, tiny_llava, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert annotate(demo, "vgr", tmp_path / "o", tiny_llava, "--annotation_device=cuda") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--annotation_device cuda with a local runner" in line


def test_a_rerun_gives_byte_identical_files(demo, tiny_llava, tmp_path):
    from tests.helpers.outputs import digest_tree

    first, again = tmp_path / "first", tmp_path / "again"
    assert annotate(demo, "vgr", first, tiny_llava, "--annotation_batch_size=2") == 0
    assert annotate(demo, "vgr", again, tiny_llava, "--annotation_batch_size=2") == 0
    assert digest_tree(first) == digest_tree(again)
