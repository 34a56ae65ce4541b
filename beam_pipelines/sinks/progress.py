"""Progress reports from inside the job (see `beam_pipelines.progress`): what the plan holds, and each outcome.

Both are sinks that emit nothing, on chains that exist anyway (the planned chunks, the outcomes before the
writers), so they add no shuffle and no stage boundary; each element costs a counter increment.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pipelines import progress


class _PlannedFn(beam.DoFn):
    def __init__(self) -> None:
        self._records = Metrics.counter(progress.NAMESPACE, "records_planned")
        self._chunks = Metrics.counter(progress.NAMESPACE, "chunks_planned")

    def process(self, chunk: Any):
        self._records.inc(chunk.num_rows)
        self._chunks.inc()
        sender = progress.sender()
        sender.add("records_planned", chunk.num_rows)
        sender.add("chunks_planned")
        return ()

    def finish_bundle(self) -> None:
        progress.sender().flush()


class _DoneFn(beam.DoFn):
    """Counts outcomes, and a chunk as done when the outcomes move on to another chunk or the bundle ends (a chunk
    split across bundles counts more than once: the display caps chunks at the planned number)."""

    def __init__(self) -> None:
        self._records = Metrics.counter(progress.NAMESPACE, "records")
        self._chunks = Metrics.counter(progress.NAMESPACE, "chunks")

    def start_bundle(self) -> None:
        self._chunk: str | None = None

    def process(self, outcome: Any):
        self._records.inc()
        sender = progress.sender()
        sender.add("records")
        chunk = outcome.provenance.chunk_id
        if chunk != self._chunk:
            if self._chunk is not None:
                self._chunk_done(sender)
            self._chunk = chunk
        return ()

    def _chunk_done(self, sender: progress.Sender) -> None:
        self._chunks.inc()
        sender.add("chunks")

    def finish_bundle(self) -> None:
        sender = progress.sender()
        if self._chunk is not None:
            self._chunk_done(sender)
        sender.flush()


def count_done(records: int, chunks: int = 1) -> None:
    """From inside any step: `records` more done, in `chunks` more chunks (a compaction's merged units)."""
    Metrics.counter(progress.NAMESPACE, "records").inc(records)
    Metrics.counter(progress.NAMESPACE, "chunks").inc(chunks)
    sender = progress.sender()
    sender.add("records", records)
    sender.add("chunks", chunks)
    sender.flush()


class ReportPlanned(beam.PTransform):
    """Planned chunks → the records and chunks the job will read."""

    def expand(self, chunks):
        return chunks | "CountPlanned" >> beam.ParDo(_PlannedFn())


class ReportDone(beam.PTransform):
    """Outcomes → the records and chunks done so far."""

    def expand(self, outcomes):
        return outcomes | "CountDone" >> beam.ParDo(_DoneFn())
