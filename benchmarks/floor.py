"""The floor: the pipeline's per-sample work as a plain Python loop, no Beam runner.

Same inputs, same functions, same files, same batching: chunks planned and read by the pipeline's readers,
duplicates kept once (first copy), the record suites and the image suites on batches cut like the pipeline's
(`--validation_batch_size`, `--validation_batch_bytes`), then one sample at a time: one decode, crops, replay
geometry, and the pipeline's own shard writers (Parquet samples and regions, the id index, WebDataset tars,
dead letters) driven directly. Nothing is held beyond a validation batch's image bytes, as in the pipeline.
What the pipeline adds on top of this is the dataflow machinery.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from beam_pipelines.materialisation import images, replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.records import Duplicate, RejectedError, Rejection, Sample
from beam_pipelines.sinks.parquet import IndexShardWriterFn, ParquetShardWriterFn
from beam_pipelines.sinks.shards import ChunkWriterFn, DeadLetterWriterFn, ShardLimits, ShardTarget
from beam_pipelines.sinks.webdataset import WebDatasetShardWriterFn
from beam_pipelines.sources import parse_raw, raw_rejection
from beam_pipelines.sources.readers import expand_pattern, list_units, plan_chunks, read_chunk
from beam_pipelines.validation.boxes import normalise_boxes
from beam_pipelines.validation.checker import SuiteChecker
from beam_pipelines.validation.suites import load_suites
from beam_pipelines.validation.tables import IMAGES, RECORDS

Outcome = Sample | Rejection | Duplicate
DEFAULTS = VgrEtlOptions([]).view_as(VgrEtlOptions)
WRITERS = (ParquetShardWriterFn, IndexShardWriterFn, WebDatasetShardWriterFn, DeadLetterWriterFn)


def _parsed(source: str, pattern: str, rows_per_chunk: int) -> Iterator[Outcome]:
    """Every input record in input order, parsed; later copies of a sample_id are duplicates."""
    seen: set[str] = set()
    for path in expand_pattern(pattern):
        for unit in list_units(source, path):
            for chunk in plan_chunks(unit, rows_per_chunk):
                for raw in read_chunk(chunk):
                    try:
                        sample = parse_raw(raw)
                    except RejectedError as exc:
                        yield raw_rejection(raw, exc)
                        continue
                    if sample.sample_id in seen:
                        yield Duplicate(sample.source, raw.provenance, sample.sample_id, raw.provenance, "")
                        continue
                    seen.add(sample.sample_id)
                    yield sample


def _batches(outcomes: Iterable[Outcome], size: int, max_bytes: int) -> Iterator[list[Outcome]]:
    """Consecutive outcomes cut like the validation stages cut them: by sample count and by image bytes."""
    batch: list[Outcome] = []
    count = weight = 0
    for outcome in outcomes:
        batch.append(outcome)
        if isinstance(outcome, Sample):
            count += 1
            weight += sum(len(img.encoded.data) for img in outcome.images)
        if count >= size or weight >= max_bytes:
            yield batch
            batch, count, weight = [], 0, 0
    if batch:
        yield batch


def _validated(checker: SuiteChecker, batches: Iterable[list[Outcome]], units: str | None) -> Iterator[Outcome]:
    """Each batch checked by one call per suite; `units` given for the image phase, which normalises boxes first."""
    for batch in batches:
        outcomes = [normalise_boxes(o, units) if units and isinstance(o, Sample) else o for o in batch]
        checked = iter(checker.check([o for o in outcomes if isinstance(o, Sample)])[0])
        for outcome in outcomes:
            yield next(checked) if isinstance(outcome, Sample) else outcome


def _apply(outcomes: Iterable[Outcome], step) -> Iterator[Outcome]:
    for outcome in outcomes:
        if isinstance(outcome, Sample):
            try:
                outcome = step(outcome)
            except RejectedError as exc:
                outcome = outcome.reject(exc.info)
        yield outcome


def run_floor(source: str, input_path: str, image_root: str, output: str, shard: int) -> dict[str, float]:
    """Samples accepted, images and seconds for the whole loop on one source's input."""
    started = time.perf_counter()
    Path(output).mkdir(parents=True, exist_ok=True)
    suites, units = load_suites(), DEFAULTS.box_units
    checks = {phase: SuiteChecker(suites, phase, units) for phase in (RECORDS, IMAGES)}
    root = images.ImageRoot(image_root)
    settings, preset = CropSettings(), replay.preset(replay.DEFAULT_PRESET, None)
    target = ShardTarget(output, ShardLimits(shard, DEFAULTS.shard_max_bytes), "v000001")
    writers: list[ChunkWriterFn] = [kind(target) for kind in WRITERS]
    for writer in writers:
        writer.setup()
        writer.start_bundle()

    def load(sample: Sample) -> Sample:
        loaded = (images.load_image(root, p, sample.source, DEFAULTS.max_image_pixels) for p in sample.image_paths)
        return replace(sample, images=tuple(loaded))

    size, max_bytes = DEFAULTS.validation_batch_size, DEFAULTS.validation_batch_bytes
    parsed = _parsed(source, input_path, shard)
    checked = _validated(checks[RECORDS], _batches(parsed, size, max_bytes), None)
    loaded = _validated(checks[IMAGES], _batches(_apply(checked, load), size, max_bytes), units)
    decoded = _apply(loaded, images.decode_images)
    cropped = _apply(decoded, lambda s: crop_regions(s, settings))
    done = _apply(cropped, lambda s: replay.compute_replay(s, preset, False))
    accepted = image_count = 0
    for outcome in done:
        for writer in writers:
            for _ in writer.process(outcome):
                pass
        if isinstance(outcome, Sample):
            accepted += 1
            image_count += len(outcome.images)
    for writer in writers:
        for _ in writer.finish_bundle():
            pass
    root.close()
    return {"samples": accepted, "images": image_count, "seconds": time.perf_counter() - started}


def decode_only(source: str, input_path: str, image_root: str) -> dict[str, Any]:
    """Read and decode each record's image once (RGB), nothing else: the physical floor of this work."""
    paths = [s.image_paths[0] for s in _parsed(source, input_path, 10**9) if isinstance(s, Sample)]
    started = time.perf_counter()
    for path in paths:
        data = Path(image_root, path).read_bytes()
        images.decode(data, path, rgb=True)
    return {"images": len(paths), "seconds": time.perf_counter() - started}
