"""The floor: the pipeline's per-sample work as a plain Python loop, no Beam runner.

Same inputs, same code, same files: chunks planned and read by the pipeline's readers, duplicates kept once
(first copy), the preview's shortlist from a first read of the records (the pipeline's id pass gives it), then
the pipeline's own per-record DoFns (record suites, image loading, image suites, one decode, crops, replay) and
shard writers, each called directly on one stream, one bundle: the validation stages cut their batches as in the
pipeline, and nothing else is held. What the pipeline adds on top of this is the dataflow machinery: fusion,
coders and size sampling, exception-handling wrappers, the id pass's stages and shuffle, bundles, worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipelines.imports import freeze_imports
from beam_pipelines.layout import OutputLayout
from beam_pipelines.materialisation import images, replay, thumbnails
from beam_pipelines.materialisation.crops import CropSettings
from beam_pipelines.materialisation.images import ImageLimits
from beam_pipelines.materialisation.transforms import _CropFn, _DecodeFn, _LoadImagesFn, _ReplayFn
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.records import Duplicate, Outcome, Provenance, RejectedError, Sample
from beam_pipelines.sinks.dead_letters import DeadLetterWriterFn
from beam_pipelines.sinks.parquet import IndexShardWriterFn, ParquetShardWriterFn
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget
from beam_pipelines.sinks.webdataset import WebDatasetShardWriterFn
from beam_pipelines.sources.dataset import IMAGES, RECORDS, Dataset
from beam_pipelines.sources.inputs import expand_pattern, record_files
from beam_pipelines.sources.parsing import parse_raw, raw_rejection
from beam_pipelines.sources.readers.formats import plan_chunks, read_chunk
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.validation.suites import load_suites
from beam_pipelines.validation.transforms import _ValidateBatchFn

DEFAULTS = VgrEtlOptions([]).view_as(VgrEtlOptions)
WRITERS = (ParquetShardWriterFn, IndexShardWriterFn, WebDatasetShardWriterFn, DeadLetterWriterFn)


def _parsed(dataset: Dataset, pattern: str, rows_per_chunk: int) -> Iterator[Outcome]:
    """Every input record in input order, parsed; later copies of a sample_id are duplicates of the first."""
    first: dict[str, Provenance] = {}
    for path in expand_pattern(pattern):
        for file in record_files(dataset.name, path, dataset.archive_members):
            for chunk in plan_chunks(file, rows_per_chunk):
                for raw in read_chunk(chunk):
                    try:
                        sample = parse_raw(raw, dataset)
                    except RejectedError as exc:
                        yield raw_rejection(raw, exc)
                        continue
                    kept = first.setdefault(sample.sample_id, raw.provenance)
                    yield (
                        sample
                        if kept is raw.provenance
                        else Duplicate(sample.source, raw.provenance, sample.sample_id, kept)
                    )


def _main_outputs(outputs: Iterable[Any] | None) -> Iterator[Any]:
    for out in outputs or ():
        if not isinstance(out, beam.pvalue.TaggedOutput):
            yield out.value if isinstance(out, WindowedValue) else out


def _driven(fn: beam.DoFn, elements: Iterable[Any], *side_inputs: Any) -> Iterator[Any]:
    """A DoFn's main outputs for `elements` as one bundle, its methods called directly (no runner)."""
    fn.setup()
    fn.start_bundle()
    for element in elements:
        yield from _main_outputs(fn.process(element, *side_inputs))
    yield from _main_outputs(fn.finish_bundle())
    fn.teardown()


def _shortlist_end(dataset: Dataset, pattern: str, rows_per_chunk: int) -> str | None:
    """The preview shortlist's end, from a first read of the records (the pipeline's id pass reads them twice too)."""
    top = thumbnails.RunningTop(thumbnails.SHORTLIST)
    for outcome in _parsed(dataset, pattern, rows_per_chunk):
        if isinstance(outcome, Sample):
            top.offer(thumbnails.preview_key(outcome.sample_id))
    return thumbnails.shortlist_end(top)


def run_floor(source: str, input_path: str, image_root: str, output: str, shard: int) -> dict[str, float]:
    """Samples accepted, images and seconds for the whole loop on one source's input (its heap of imports frozen
    first, as the launcher's is)."""
    started = time.perf_counter()
    freeze_imports()
    Path(output).mkdir(parents=True, exist_ok=True)
    o, suites, dataset = DEFAULTS, load_suites(), dataset_named(source)
    batching = (o.box_units, o.validation_batch_size, o.validation_batch_bytes)
    stages = (
        (_ValidateBatchFn(dataset, suites, RECORDS, *batching), ()),
        (_LoadImagesFn(dataset, image_root, ImageLimits.of(o)), ()),
        (_ValidateBatchFn(dataset, suites, IMAGES, *batching), ()),
        (_DecodeFn(), (_shortlist_end(dataset, input_path, shard),)),
        (_CropFn(CropSettings(o.box_units, o.jpeg_quality, o.png_compress_level)), ()),
        (_ReplayFn(replay.preset(o.replay_preset, o.replay_frame), o.replay_pixels, keep_pixels=False), ()),
    )
    outcomes: Iterable[Any] = _parsed(dataset, input_path, shard)
    for stage, side_inputs in stages:
        outcomes = _driven(stage, outcomes, *side_inputs)
    target = ShardTarget(OutputLayout(output), ShardLimits(shard, o.shard_max_bytes), "v000001")
    writers = [kind(target) for kind in WRITERS]
    for writer in writers:
        writer.setup()
        writer.start_bundle()
    accepted = image_count = 0
    for outcome in outcomes:
        for writer in writers:
            for _ in writer.process(outcome):
                pass
        if isinstance(outcome, Sample):
            accepted += 1
            image_count += len(outcome.images)
    for writer in writers:
        for _ in writer.finish_bundle():
            pass
    return {"samples": accepted, "images": image_count, "seconds": time.perf_counter() - started}


def decode_only(source: str, input_path: str, image_root: str, fast: bool = True) -> dict[str, Any]:
    """Read and decode each record's image once (RGB), nothing else: the physical floor of this work; with the
    pipeline's decoders (their pixels kept in the form the pipeline keeps), or (`fast=False`) with Pillow alone."""
    paths = [s.image_paths[0] for s in _parsed(dataset_named(source), input_path, 10**9) if isinstance(s, Sample)]
    started = time.perf_counter()
    for path in paths:
        data = Path(image_root, path).read_bytes()
        images.decode(data, path, rgb=True, fast=fast, array=True)
    return {"images": len(paths), "seconds": time.perf_counter() - started}
