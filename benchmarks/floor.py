"""The floor: the pipeline's per-sample work as a plain Python loop, no Beam.

Same inputs, same functions and the same files: parse, the record suites on batches, image bytes and
header, the image suites, one decode, crops, replay geometry, Parquet rows and tar members written to
shards of as many samples as the pipeline's chunks. What the pipeline adds on top of this is the dataflow machinery.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from beam_pipelines.materialisation import images, replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.records import Provenance, RejectedError, Sample
from beam_pipelines.sinks.schema import REGION_SCHEMA, SAMPLE_SCHEMA, region_rows, sample_row
from beam_pipelines.sinks.webdataset import members
from beam_pipelines.sources import PARSERS
from beam_pipelines.validation.boxes import normalise_boxes
from beam_pipelines.validation.checker import SuiteChecker
from beam_pipelines.validation.suites import load_suites
from beam_pipelines.validation.tables import IMAGES, RECORDS


def records(path: str) -> Iterator[dict[str, Any]]:
    if path.endswith(".parquet"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
            yield from batch.to_pylist()
    else:
        with open(path, "rb") as f:
            for line in f:
                yield json.loads(line)


def _materialise(sample: Sample, root: images.ImageRoot) -> Sample | None:
    try:
        loaded = tuple(images.load_image(root, p, sample.source, 10**9) for p in sample.image_paths)
        return replace(sample, images=loaded)
    except RejectedError:
        return None


def _finish(sample: Sample, settings: CropSettings, preset: replay.ReplayPreset) -> Sample | None:
    try:
        sample = crop_regions(images.decode_images(sample), settings)
        return replay.compute_replay(sample, preset, False)
    except RejectedError:
        return None


def _write_shard(out: Path, index: int, samples: list[Sample]) -> None:
    pq.write_table(
        pa.Table.from_pylist([sample_row(s) for s in samples], schema=SAMPLE_SCHEMA), out / f"s{index:05d}.parquet"
    )
    pq.write_table(
        pa.Table.from_pylist([r for s in samples for r in region_rows(s)], schema=REGION_SCHEMA),
        out / f"r{index:05d}.parquet",
    )
    with tarfile.open(out / f"{index:05d}.tar", "w") as tar:
        for sample in samples:
            for name, data in members(sample):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def run_floor(source: str, input_path: str, image_root: str, output: str, shard: int) -> dict[str, float]:
    """Samples accepted, images and seconds for the whole loop on one source's input."""
    started = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    suites = load_suites()
    checks = {phase: SuiteChecker(suites, phase, "normalized") for phase in (RECORDS, IMAGES)}
    root = images.ImageRoot(image_root)
    settings, preset = CropSettings(), replay.preset(replay.DEFAULT_PRESET, None)
    accepted = image_count = written = 0
    batch: list[Sample] = []

    def flush() -> None:
        nonlocal accepted, image_count, written
        kept = [s for s in checks[RECORDS].check(batch)[0] if isinstance(s, Sample)]
        loaded = [s for s in (_materialise(s, root) for s in kept) if s is not None]
        valid = [s for s in checks[IMAGES].check([normalise_boxes(s, "normalized") for s in loaded])[0]]
        finished = (_finish(s, settings, preset) for s in valid if isinstance(s, Sample))
        done = [s for s in finished if s is not None]
        _write_shard(out, written, done)
        accepted += len(done)
        image_count += sum(len(s.images) for s in done)
        written += 1
        batch.clear()

    for row, record in enumerate(records(input_path)):
        batch.append(PARSERS[source](record, Provenance(input_path, row, f"c{row // shard}")))
        if len(batch) >= shard:
            flush()
    if batch:
        flush()
    root.close()
    return {"samples": accepted, "images": image_count, "seconds": time.perf_counter() - started}


def decode_only(input_path: str, image_root: str) -> dict[str, float]:
    """Read and decode each record's image once (RGB), nothing else: the physical floor of this work."""
    paths = [r["image"] if isinstance(r["image"], str) else r["image"][0] for r in records(input_path)]
    started = time.perf_counter()
    for path in paths:
        data = Path(image_root, path).read_bytes()
        images.decode(data, path, rgb=True)
    return {"images": len(paths), "seconds": time.perf_counter() - started}
