"""Source stages: plan chunks from input patterns, read raw records, find duplicates, parse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.records import Duplicate, Provenance, RawRecord, RejectedError, Rejection, Sample
from beam_pipelines.sources.dataset import Dataset, LabelReference
from beam_pipelines.sources.inputs import expand_pattern, record_files
from beam_pipelines.sources.parsing import parse_raw, raw_rejection
from beam_pipelines.sources.readers.formats import plan_chunks, read_chunk
from beam_pipelines.stages import StageClock, apply_stage


def _record_files(path: str, dataset: Dataset):
    return record_files(dataset.name, path, dataset.archive_members)


class PlanChunks(beam.PTransform):
    """Input patterns → files → record files (files or zip members) → chunks, each step spread over workers."""

    def __init__(self, dataset: Dataset, patterns: list[str], rows_per_chunk: int, option: str = "--input"):
        super().__init__()
        self.dataset = dataset
        self.patterns = list(patterns)
        self.rows_per_chunk = rows_per_chunk
        self.option = option  # named when a pattern matches nothing

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> beam.FlatMap(expand_pattern, self.option)
            | "DistinctFiles" >> beam.Distinct()
            | "ListRecordFiles" >> beam.FlatMap(_record_files, self.dataset)
            | "SpreadRecordFiles" >> beam.Reshuffle()
            | "PlanChunks" >> beam.FlatMap(plan_chunks, self.rows_per_chunk)
            | "SpreadChunks" >> beam.Reshuffle()
        )


class ReadRecords(beam.PTransform):
    """Chunks → raw records in input order (a chunk is read by one worker, sequentially)."""

    def expand(self, chunks):
        return chunks | "ReadChunk" >> beam.FlatMap(read_chunk)


def _duplicate_key(raw: RawRecord, sample: Sample) -> tuple[str, IdState]:
    return sample.sample_id, (1, raw.provenance.sort_key(), None)


class _ParsedKeyFn(beam.DoFn):
    """`key_of(raw, sample)` for every raw record that parses; the others are the main pass's to reject."""

    def __init__(self, dataset: Dataset, key_of: Callable[[RawRecord, Sample], tuple[str, Any]]):
        self.dataset = dataset
        self.key_of = key_of

    def process(self, raw: RawRecord):
        try:
            sample = parse_raw(raw, self.dataset)
        except RejectedError:
            return
        yield self.key_of(raw, sample)


IdState = tuple[int, tuple[str, str, int] | None, tuple[str, str, str, int] | None]
"""Per sample_id: (copies in this run's input, the smallest provenance among them, where the current version
holds it: (unit, input_file, member, row) or None)."""


class _MergeIdStates(beam.CombineFn):
    """Copies counted, the smallest (file, member, row) kept (the copy a run keeps), the published copy noted."""

    def create_accumulator(self) -> IdState:
        return 0, None, None

    def add_input(self, acc: IdState, value: IdState) -> IdState:
        return self.merge_accumulators([acc, value])

    def merge_accumulators(self, accs) -> IdState:
        count, first, known = 0, None, None
        for n, prov, published in accs:
            count += n
            if prov is not None and (first is None or prov < first):
                first = prov
            if published is not None and (known is None or published < known):
                known = published
        return count, first, known

    def extract_output(self, acc: IdState) -> IdState:
        return acc


def _kept_copy(kv: tuple[str, IdState]):
    """Side-input entries: ids this run must not process again ((file, member, row, unit) of the copy kept)."""
    sample_id, (count, first, known) = kv
    if count and known is not None:
        unit, file, member, row = known
        yield sample_id, (file, member, row, unit)
    elif count > 1 and first is not None:
        yield sample_id, (*first, "")


def _removed(kv: tuple[str, IdState], stale_files: frozenset[str]):
    """(unit, sample_id) of published samples whose input file changed or went away and that no input holds now."""
    sample_id, (count, _, known) = kv
    if not count and known is not None and known[1] in stale_files:
        yield known[0], sample_id


class FindDuplicates(beam.PTransform):
    """Classify the sample ids of this run's input: `kept` (sample_id → (file, member, row, unit) of the copy to
    keep, for ids seen more than once or already in the current version, whose unit then names where),
    `removed` ((unit, sample_id) of published samples no longer in their changed or deleted input file), and
    `keys` ((sample_id, state) of every record of this run that parses, copies included).

    Applied to a second read of the raw records (text is cheap to re-read; images are never read here) and,
    on a refresh, to the current version's id index (`known`: (sample_id, IdState) pairs). Only ids and
    provenances are shuffled (tens of bytes per record), never record text or images; records that fail to
    parse are ignored here and rejected by the main pass.
    """

    def __init__(self, dataset: Dataset, known=None, stale_files: frozenset[str] = frozenset()):
        super().__init__()
        self.dataset = dataset
        self.known = known
        self.stale_files = stale_files

    def expand(self, raws):
        keys = raws | "SampleKeys" >> beam.ParDo(_ParsedKeyFn(self.dataset, _duplicate_key)).with_exception_handling()
        ids = keys["good"]
        if self.known is not None:
            ids = (ids, self.known) | "WithPublished" >> beam.Flatten()
        states = ids | "StatePerId" >> beam.CombinePerKey(_MergeIdStates())
        return {
            "kept": states | "KeptCopy" >> beam.FlatMap(_kept_copy),
            "removed": states | "Removed" >> beam.FlatMap(_removed, self.stale_files),
            "keys": keys["good"],
        }


def _matched(kv: tuple[str, dict[str, list]]):
    """Each conversation record with the label lists of every Raw record of its prompt and steps: rollouts of one
    question can repeat a short solution with other scores, so there may be several (sorted: order-independent)."""
    _, grouped = kv
    candidates = sorted({tuple(labels) for labels in grouped["reference"]})
    if candidates:
        for sample_id in grouped["conversation"]:
            yield sample_id, [list(labels) for labels in candidates]


class _SampleKey:
    """(reference key, sample_id) of a record of the run's dataset."""

    def __init__(self, reference: LabelReference):
        self.reference = reference

    def __call__(self, _: RawRecord, sample: Sample) -> tuple[str, str]:
        return self.reference.key(sample), sample.sample_id


class _ReferenceLabels:
    """(reference key, official labels) of a record of the reference files."""

    def __init__(self, reference: LabelReference):
        self.reference = reference

    def __call__(self, _: RawRecord, sample: Sample) -> tuple[str, list[str]]:
        return self.reference.labels(sample)


class ReferenceLabels(beam.PTransform):
    """sample_id → official label lists of the matching reference records, for the records that have any.

    Applied to a read of the run's records (like FindDuplicates) and of the `--label_reference` files, read as the
    dataset's reference form; only keys, ids and labels are grouped, never record text or images.
    """

    def __init__(self, dataset: Dataset, patterns: list[str], rows_per_chunk: int):
        super().__init__()
        assert dataset.reference is not None
        self.dataset = dataset
        self.reference = dataset.reference
        self.patterns = list(patterns)
        self.rows_per_chunk = rows_per_chunk

    def expand(self, conversations):
        source = self.reference.source
        reference = (
            conversations.pipeline
            | "PlanReference" >> PlanChunks(source, self.patterns, self.rows_per_chunk, "--label_reference")
            | "ReadReference" >> ReadRecords()
            | "ReferenceKeys" >> beam.ParDo(_ParsedKeyFn(source, _ReferenceLabels(self.reference)))
        )
        keys = conversations | "ConversationKeys" >> beam.ParDo(_ParsedKeyFn(self.dataset, _SampleKey(self.reference)))
        return (
            {"conversation": keys, "reference": reference}
            | "MatchForms" >> beam.CoGroupByKey()
            | "Matched" >> beam.FlatMap(_matched)
        )


class _ParseFn(beam.DoFn):
    stage = "parse"

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def setup(self) -> None:
        self.clock = StageClock(self.stage)

    def process(self, raw: RawRecord, duplicates: dict[str, Any]):
        with self.clock:
            try:
                sample = parse_raw(raw, self.dataset)
            except RejectedError as exc:
                sample = raw_rejection(raw, exc)
        if isinstance(sample, Rejection):
            yield sample
            return
        kept = duplicates.get(sample.sample_id)
        if kept is not None and (kept[3] or tuple(kept[:3]) != raw.provenance.sort_key()):
            file, member, row, unit = kept
            kept_at = Provenance(file, row, "", member or None)
            yield Duplicate(sample.source, raw.provenance, sample.sample_id, kept_at, unit)
            return
        yield sample


class ParseSamples(beam.PTransform):
    """Raw records → Sample | Rejection | Duplicate."""

    def __init__(self, dataset: Dataset, duplicates, errors: ErrorHandler):
        super().__init__()
        self.dataset = dataset
        self.duplicates = duplicates
        self.errors = errors

    def expand(self, raws):
        return apply_stage(raws, "Parse", _ParseFn(self.dataset), self.errors, beam.pvalue.AsDict(self.duplicates))
