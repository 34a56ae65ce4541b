"""Chunk-aligned writers: parts named after their first record's row offset, never one name twice."""

from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems

from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.records import ErrorInfo, Provenance, Rejection
from beam_pipelines.sinks.dead_letters import DeadLetterWriterFn
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget


def test_a_chunk_that_comes_back_in_a_bundle_continues_its_parts(tmp_path):
    """Records of a chunk normally arrive together; if another chunk's records interleave, nothing is overwritten."""
    output = str(tmp_path / "out")
    target = ShardTarget(OutputLayout(output), ShardLimits(max_samples=2, max_bytes=1 << 30), "v1")
    writer = DeadLetterWriterFn(target)
    writer.setup()
    writer.start_bundle()
    order = ["a", "a", "a", "b", "a"]
    infos = []
    for row, chunk in enumerate(order):
        error = ErrorInfo("parse", "bad", f"row {row}")
        infos += writer.process(Rejection("vgr", Provenance("in.jsonl", row, chunk, offset=row), (error,), record={}))
    infos += [w.value for w in writer.finish_bundle() if isinstance(w.value, WrittenFile)]
    names = sorted(info.path.rsplit("/", 1)[1] for info in infos)
    assert names == ["v1-a-000000.jsonl", "v1-a-000002.jsonl", "v1-a-000004.jsonl", "v1-b-000003.jsonl"]
    rows = []
    for info in infos:
        with FileSystems.open(OutputLayout(output).path(info.path)) as f:
            rows += [json.loads(line)["provenance"]["row"] for line in f.read().splitlines()]
    assert sorted(rows) == list(range(len(order))), "every rejection is in exactly one file"
