"""The chunk planning Parquet and Arrow share: whole groups packed up to a chunk, a larger group cut in slices."""

from __future__ import annotations

from beam_pipelines.records import Provenance
from beam_pipelines.sources.readers.base import Chunk, RecordFile, Run, plan_runs


def test_small_groups_are_packed_and_a_large_one_is_sliced_on_its_own():
    groups = [("a", 2), ("b", 1), ("c", 7), ("empty", 0), ("d", 1), ("e", 3)]
    assert plan_runs(groups, 3) == [
        Run(0, 3, ("a", "b")),
        Run(3, 3, ("c",), 0),
        Run(6, 3, ("c",), 3),
        Run(9, 1, ("c",), 6),
        Run(10, 1, ("d",)),
        Run(11, 3, ("e",)),
    ]


def test_runs_cover_every_row_once_in_order():
    for sizes in ([5, 5, 5], [1] * 9, [12], [0, 0, 4, 0], [3, 9, 2, 2, 2, 8]):
        for limit in (1, 2, 3, 4, 10):
            rows = []
            for run in plan_runs([(i, n) for i, n in enumerate(sizes)], limit):
                assert 0 < run.num_rows <= limit
                rows.extend(range(run.first_row, run.first_row + run.num_rows))
            assert rows == list(range(sum(sizes))), (sizes, limit)


def test_a_chunk_names_its_rows_offsets_within_it():
    chunk = Chunk(RecordFile("vgr", "/in/a b.jsonl", "jsonl"), 3, 200, 100)
    assert chunk.chunk_id.startswith("a_b-") and chunk.chunk_id.endswith("-00003")
    assert chunk.provenance(215) == Provenance("/in/a b.jsonl", 215, chunk.chunk_id, None, 15)
