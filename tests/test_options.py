"""Options are declared once: the checks, the recorded config, the refresh comparison and the old names follow."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.flags import (
    BY_NAME,
    OPTIONS,
    as_compared,
    check_options,
    config_of,
    content_options,
    deprecated_names,
)
from beam_pipelines.options import LaunchOptions, VgrEtlOptions

REQUIRED = ["--source=vgr", "--input=in.jsonl", "--image_root=images", "--output=out"]


def options(*extra: str) -> VgrEtlOptions:
    return PipelineOptions([*REQUIRED, *extra]).view_as(VgrEtlOptions)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--jpeg_quality=80"], "--jpeg_quality must be between 90 and 100 (crops must stay faithful)"),
        (["--max_reject_fraction=1.5"], "--max_reject_fraction must be between 0 and 1"),
        (["--chunk_rows=0"], "--chunk_rows must be at least 1"),
        (["--png_compress_level=10"], "--png_compress_level must be between 0 and 9"),
        (["--formats="], "--formats '': expected a comma-separated subset of parquet, webdataset"),
        (["--formats=parquet,tfrecord"], "expected a comma-separated subset"),
        (["--min_grounding_score=0"], "--min_grounding_score need --score_model"),
        (["--replay_features", "--score_accelerator=x"], "--score_accelerator, --replay_features need --score_model"),
        (["--source=vgr", "--label_reference=raw.jsonl"], "--label_reference applies to --source visualprm only"),
    ],
)
def test_a_bad_value_fails_the_launch_with_one_line(extra, message):
    with pytest.raises(ValueError) as err:
        check_options(options(*extra))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_required_options_are_named_together():
    with pytest.raises(ValueError, match=r"missing required option\(s\): --image_root, --output"):
        check_options(PipelineOptions(REQUIRED[:2]).view_as(VgrEtlOptions))
    check_options(options())


def test_the_old_chunk_option_name_still_works_and_is_noted():
    assert options("--shard_max_samples=7").chunk_rows == 7
    assert deprecated_names(["--shard_max_samples=7"]) == ["--shard_max_samples (now --chunk_rows)"]
    assert deprecated_names(["--chunk_rows=7"]) == []


def test_every_option_but_the_launchers_own_is_recorded():
    config = config_of(options())
    assert set(config) == {o.name for o in OPTIONS} - {"local_worker_start", "progress"}
    assert config["validation_batch_bytes"] == BY_NAME["validation_batch_bytes"].default


def test_a_refresh_compares_the_options_that_shape_the_rows_as_they_shape_them():
    shaping = {o.name for o in content_options()}
    assert {"source", "formats", "box_units", "replay_frame", "score_model"} <= shaping
    assert not shaping & {"chunk_rows", "max_reject_fraction", "score_batch_size", "on_removed"}
    formats, frame = BY_NAME["formats"], BY_NAME["replay_frame"]
    assert as_compared(formats, {"formats": "webdataset, parquet"}) == as_compared(
        formats, {"formats": "parquet,webdataset"}
    )
    preset = {"replay_preset": "vgr_llava_next_clip336"}
    assert as_compared(frame, {**preset, "replay_frame": None}) == as_compared(
        frame, {**preset, "replay_frame": "unpadded"}
    )
    assert as_compared(frame, {**preset, "replay_frame": "canvas"}) == "canvas"


def test_the_source_help_describes_every_registered_dataset():
    text = BY_NAME["source"].full_help()
    assert all(f"{name}: " in text for name in BY_NAME["source"].choice_list())


def test_a_launch_has_one_view_per_options_class_and_views_share_their_values():
    from apache_beam.options.pipeline_options import StandardOptions

    options = LaunchOptions(["--source", "vgr", "--runner=FnApiRunner"])
    assert options.view_as(StandardOptions) is options.view_as(StandardOptions)
    options.view_as(VgrEtlOptions).chunk_rows = 7
    assert VgrEtlOptions(["--chunk_rows=3"]).chunk_rows == 3 and options.view_as(VgrEtlOptions).chunk_rows == 7
    assert options.get_all_options()["chunk_rows"] == 7 and options.view_as(StandardOptions).runner == "FnApiRunner"


def test_the_command_freezes_the_heap_on_its_way_out(monkeypatch, capsys):
    import gc
    import sys

    from beam_pipelines.cli import entry

    monkeypatch.setattr(sys, "argv", ["vgr-etl", "--help"])
    before = gc.get_freeze_count()
    try:
        assert entry() == 0 and "run" in capsys.readouterr().out
        assert gc.get_freeze_count() > before, "the interpreter's last collection skips what the run left"
    finally:
        gc.unfreeze()
