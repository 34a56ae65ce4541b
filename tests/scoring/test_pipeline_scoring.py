"""The scoring stage end to end through the CLI on the demo data, with tiny CLIP models saved in HF format."""

import glob
import io
import json
import tarfile
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest

from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.pipeline import build_pipeline
from tests.conftest import RUNNER, assert_invariant, parquet_rows, rejected_lines, report_of, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

torch = pytest.importorskip("torch")


def _run(demo, out: Path, model: str, *extra: str, source: str = "vgr") -> Path:
    assert run_cli(*demo[source].argv(str(out)), "--score_model", model, "--max_reject_fraction=1", *extra) == 0
    return out


@pytest.fixture(scope="module")
def runs(demo, tiny_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("scored")
    return {
        "bs1": _run(demo, root / "bs1", tiny_clip, "--score_batch_size=1", "--formats=parquet"),
        "bs8": _run(demo, root / "bs8", tiny_clip, "--score_batch_size=8"),
        "bs8_again": _run(demo, root / "bs8_again", tiny_clip, "--score_batch_size=8"),
    }


def _scores(out: Path) -> dict[tuple[str, int], float]:
    return {(r["sample_id"], r["region_index"]): r["grounding_score"] for r in parquet_rows(out, "regions")}


def test_every_region_has_a_finite_score_and_samples_summarise_them(runs):
    report = assert_invariant(runs["bs8"])
    scores = _scores(runs["bs8"])
    assert len(scores) == report["regions"] > 0
    assert all(s is not None and np.isfinite(s) and -1 <= s <= 1 for s in scores.values())
    for sample in parquet_rows(runs["bs8"], "samples"):
        own = [scores[(sample["sample_id"], r["region_index"])] for r in sample["regions"]]
        assert [r["grounding_score"] for r in sample["regions"]] == own
        if own:
            assert sample["grounding_score_min"] == pytest.approx(min(own), abs=1e-6)
            assert sample["grounding_score_mean"] == pytest.approx(np.mean(own), abs=1e-6)
        else:
            assert sample["grounding_score_min"] is None and sample["grounding_score_mean"] is None
    grounding = report["grounding"]
    assert grounding["regions_scored"] == len(scores) and grounding["inference_failed"] == 0
    assert grounding["mean_region_score"] == pytest.approx(np.mean(list(scores.values())), abs=1e-5)


def test_scores_are_deterministic_and_agree_across_batch_sizes(runs):
    by8, again, by1 = _scores(runs["bs8"]), _scores(runs["bs8_again"]), _scores(runs["bs1"])
    assert by8 == again
    for path in glob.glob(str(runs["bs8"] / "parquet" / "regions" / "*.parquet")):
        assert Path(path).read_bytes() == (runs["bs8_again"] / "parquet" / "regions" / Path(path).name).read_bytes()
    assert by1.keys() == by8.keys()
    np.testing.assert_allclose([by1[k] for k in by8], list(by8.values()), atol=1e-5)


def test_webdataset_json_carries_the_scores(runs):
    scores = _scores(runs["bs8"])
    seen = 0
    for path in glob.glob(str(runs["bs8"] / "webdataset" / "*.tar")):
        with tarfile.open(path) as tf:
            for member in tf.getmembers():
                if member.name.endswith(".json"):
                    record = json.loads(tf.extractfile(member).read())
                    for region in record["regions"]:
                        assert region["grounding_score"] == scores[(record["sample_id"], region["region_index"])]
                        seen += 1
    assert seen == len(scores)


def _threshold(runs) -> tuple[float, set[str]]:
    mins = sorted(r["grounding_score_min"] for r in parquet_rows(runs["bs8"], "samples"))
    cut = (mins[len(mins) // 2] + mins[len(mins) // 2 + 1]) / 2
    below = {r["sample_id"] for r in parquet_rows(runs["bs8"], "samples") if r["grounding_score_min"] < cut}
    assert below
    return cut, below


def test_severity_error_sends_samples_below_the_minimum_to_rejected(demo, tiny_clip, runs, tmp_path):
    cut, below = _threshold(runs)
    out = _run(demo, tmp_path, tiny_clip, "--score_batch_size=8", f"--min_grounding_score={cut}", "--formats=parquet")
    report = assert_invariant(out)
    rejected = [r for r in rejected_lines(out) if r["errors"][0]["check"] == "grounding_score_below_min"]
    assert {r["sample_id"] for r in rejected} == below
    assert all(
        r["errors"][0]["stage"] == "score" and "below --min_grounding_score" in r["errors"][0]["message"]
        for r in rejected
    )
    assert {r["sample_id"] for r in parquet_rows(out, "samples")}.isdisjoint(below)
    assert report["grounding"]["below_min_rejected"] == len(below)
    assert report["accepted"] == report_of(runs["bs8"])["accepted"] - len(below)


def test_severity_warning_keeps_samples_below_the_minimum_flagged(demo, tiny_clip, runs, tmp_path):
    cut, below = _threshold(runs)
    out = _run(
        demo,
        tmp_path,
        tiny_clip,
        "--score_batch_size=8",
        f"--min_grounding_score={cut}",
        "--grounding_severity=warning",
        "--formats=parquet",
    )
    report = assert_invariant(out)
    flagged = {r["sample_id"] for r in parquet_rows(out, "samples") if "grounding_score_below_min" in r["warnings"]}
    assert flagged == below and report["accepted"] == report_of(runs["bs8"])["accepted"]
    assert report["grounding"]["below_min_flagged"] == len(below) and report["grounding"]["below_min_rejected"] == 0


def test_replay_features_have_the_shape_the_token_counts_say(demo, tiny_clip_336, tmp_path):
    out = _run(demo, tmp_path, tiny_clip_336, "--replay_features", "--score_batch_size=4")
    assert_invariant(out)
    regions = parquet_rows(out, "regions")
    with_grid = [r for r in regions if r["replay_token_count"]]
    assert with_grid
    members = {}
    for path in glob.glob(str(out / "webdataset" / "*.tar")):
        with tarfile.open(path) as tf:
            members.update({m.name: tf.extractfile(m).read() for m in tf.getmembers() if "replay_feat" in m.name})
    for r in with_grid:
        assert r["replay_features_shape"] == [r["replay_token_count"], 32]
        features = np.asarray(r["replay_features"], np.float16).reshape(r["replay_features_shape"])
        assert np.isfinite(features).all()
        stored = np.load(io.BytesIO(members[f"{r['sample_id']}.r{r['region_index']:03d}.replay_feat.npy"]))
        assert stored.dtype == np.float16 and np.array_equal(stored, features)
    assert len(members) == len(with_grid)


def test_failed_inferences_are_dead_lettered_not_fatal(demo, broken_clip, tmp_path):
    out = _run(demo, tmp_path, broken_clip, "--formats=parquet")
    report = assert_invariant(out)
    failed = [r for r in rejected_lines(out) if r["errors"][0]["check"] == "inference_failed"]
    assert failed and report["grounding"]["inference_failed"] == len(failed)
    assert all(r["errors"][0]["stage"] == "score" and "IndexError" in r["errors"][0]["message"] for r in failed)
    assert all(not row["regions"] for row in parquet_rows(out, "samples"))


def test_a_model_shared_across_processes_gives_the_same_scores(demo, tiny_clip, runs, tmp_path):
    out = _run(demo, tmp_path, tiny_clip, "--score_batch_size=8", "--score_model_copies=1", "--formats=parquet")
    assert _scores(out) == _scores(runs["bs8"])


def test_sources_without_regions_pass_through_with_null_scores(demo, tiny_clip, tmp_path):
    out = _run(demo, tmp_path, tiny_clip, "--formats=parquet", source="visualprm")
    report = assert_invariant(out)
    assert report["grounding"]["regions_scored"] == 0 and report["accepted"] > 0
    assert all(r["grounding_score_min"] is None for r in parquet_rows(out, "samples"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--min_grounding_score=0.2"], "need --score_model"),
        (["--replay_features"], "need --score_model"),
        (["--score_model", "{model}", "--replay_features"], "336px tiles"),
        (["--score_model", "{missing}"], "no config.json"),
        pytest.param(
            ["--score_model", "{model}", "--score_device=cuda"],
            "no CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
)
def test_bad_scoring_options_fail_the_launch(demo, tiny_clip, tmp_path, capsys, extra, message):
    args = [a.format(model=tiny_clip, missing=str(tmp_path / "nope")) for a in extra]
    assert run_cli(*demo["vgr"].argv(str(tmp_path / "out")), *args) == 2
    assert message in capsys.readouterr().err


def test_the_scoring_step_carries_the_accelerator_hint(demo, tiny_clip, tmp_path):
    hint = "type:nvidia-l4;count:1;install-nvidia-driver"
    argv = [*demo["vgr"].argv(str(tmp_path)), "--score_model", tiny_clip, f"--score_accelerator={hint}", RUNNER]
    p = beam.Pipeline(options=VgrEtlOptions(argv))
    build_pipeline(p, p.options)
    proto = p.to_runner_api()
    hinted = {
        t.unique_name
        for t in proto.components.transforms.values()
        if any(hint.encode() in v for v in proto.components.environments[t.environment_id].resource_hints.values())
    }
    assert hinted and all("ScoreRegions/RunInference" in name for name in hinted)
    assert any(name.endswith("BeamML_RunInference") for name in hinted)


def test_clip_and_the_annotation_model_score_the_regions_in_one_job(demo, tiny_clip, runs, tmp_path):
    from tests.annotation.models import save_tiny_llava

    vlm = save_tiny_llava(tmp_path / "vlm")
    out = _run(demo, tmp_path / "both", tiny_clip, "--score_batch_size=8", f"--annotation_model={vlm}")
    both = {(r["sample_id"], r["region_index"]): r for r in parquet_rows(out, "regions")}
    clip_only = {(r["sample_id"], r["region_index"]): r for r in parquet_rows(runs["bs8"], "regions")}
    assert both.keys() == clip_only.keys()
    for key, region in both.items():
        assert region["grounding_score"] == clip_only[key]["grounding_score"], "the CLIP score is as without the VLM"
        assert 0 < region["verify_score"] < 1
