"""Report arithmetic: every outcome counts once; shards are summed per kind."""

from beam_pipelines.records import Duplicate, ErrorInfo, Provenance, Rejection, Sample
from beam_pipelines.sinks.report import MergeCounts, build_report, outcome_stats
from beam_pipelines.sinks.shards import ShardInfo

P = Provenance("f", 0, "c")


def test_outcomes_fold_into_the_invariant():
    outcomes = [
        Sample("vgr-a", "vgr", "coco", P, ("a",), "q", "a", warnings=("orphan_sot", "orphan_sot")),
        Rejection("vgr", P, (ErrorInfo("validate", "box_inverted", "m"),)),
        Duplicate("vgr", P, "vgr-a", P),
    ]
    fn = MergeCounts()
    acc = fn.create_accumulator()
    for o in outcomes:
        acc = fn.add_input(acc, outcome_stats(o))
    report = build_report(fn.extract_output(acc), [ShardInfo("webdataset", "x.tar", 1, 10)], {})
    assert (report["input_records"], report["accepted"], report["rejected"], report["duplicates"]) == (3, 1, 1, 1)
    assert report["rejected_by_check"] == {"box_inverted": 1}
    assert report["warnings"] == {"orphan_sot": 2}
    assert report["per_source"]["vgr"]["input_records"] == 3
    assert report["shards"]["webdataset"] == {"files": 1, "rows": 1, "bytes": 10}
