"""Report arithmetic: every outcome counts once; shards are summed per kind."""

from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.records import Duplicate, ErrorInfo, Provenance, Rejection, Sample
from beam_pipelines.sinks.counters import MergeCounts, count_sections, outcome_stats

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
    acc = fn.add_input(acc, {"expectation/vgr_regions/x1_before_x2/evaluated": 4})
    acc = fn.add_input(
        acc, {"expectation/vgr_regions/x1_before_x2/evaluated": 3, "expectation/vgr_regions/x1_before_x2/failed": 1}
    )
    info = {"suite": "vgr_regions", "type": "t", "column": "x2,x1", "severity": "error", "description": "d"}
    unused = {**info, "suite": "images"}
    stats = fn.extract_output(acc)
    report = count_sections(
        stats,
        [WrittenFile("webdataset", "x.tar", 1, 10)],
        OutputLayout("/o"),
        {},
        {"x1_before_x2": info, "fmt": unused},
    )
    assert report["expectations"]["x1_before_x2"] == {**info, "evaluated": 7, "failed": 1, "pass_rate": round(6 / 7, 6)}
    assert report["expectations"]["fmt"]["evaluated"] == 0 and report["expectations"]["fmt"]["pass_rate"] is None
    assert (report["input_records"], report["accepted"], report["rejected"], report["duplicates"]) == (3, 1, 1, 1)
    assert report["rejected_by_check"] == {"box_inverted": 1}
    assert report["warnings"] == {"orphan_sot": 2}
    assert report["per_source"]["vgr"]["input_records"] == 3
    assert report["shards"]["webdataset"] == {"files": 1, "rows": 1, "bytes": 10}
