"""`build_pipeline`: the stages composed, sources → validation → materialisation → sinks.

    input patterns ─ PlanChunks ─┬─ FindDuplicates (ids only) ──────────────┐ (side input)
                                 └─ ReadSamples ─ ParseSamples ─ ValidateSamples ─ LoadImages
                                       ─ CropRegions ─ ComputeReplay [─ ScoreRegions, with --score_model]
                                       ─┬─ WriteParquetShards ──┐
                                        ├─ WriteWebDatasetShards ┤
                                        ├─ WriteDeadLetters ─────┼─ WriteReport
                                        └─ outcome counters ─────┘
    unexpected exceptions in any stage ─ ErrorHandler ─ WriteErrorRecords ─┘

Everything from ReadSamples to the writers is one fused chain per chunk: images are decoded once,
never shuffled, and shards line up with input chunks.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings
from beam_pipelines.materialisation.transforms import ComputeReplay, CropRegions, LoadImages
from beam_pipelines.options import VgrEtlOptions, config_of, formats_of
from beam_pipelines.sinks.shards import ShardLimits
from beam_pipelines.sinks.transforms import (
    CountOutcomes,
    WriteDeadLetters,
    WriteErrorRecords,
    WriteParquetShards,
    WriteReport,
    WriteWebDatasetShards,
)
from beam_pipelines.sources.transforms import FindDuplicates, ParseSamples, PlanChunks, ReadSamples
from beam_pipelines.validation.transforms import ValidateSamples


def build_pipeline(p: beam.Pipeline, options: VgrEtlOptions) -> None:
    o = options.view_as(VgrEtlOptions)
    formats = formats_of(o)
    limits = ShardLimits(o.shard_max_samples, o.shard_max_bytes)
    crop_settings = CropSettings(o.box_units, o.jpeg_quality, o.png_compress_level)
    replay_config = replay.preset(o.replay_preset, o.replay_frame)

    chunks = p | "PlanChunks" >> PlanChunks(o.source, o.input, o.shard_max_samples)
    duplicates = chunks | "ReadForIds" >> ReadSamples() | "FindDuplicates" >> FindDuplicates()
    with ErrorHandler(WriteErrorRecords(o.output)) as errors:
        outcomes = (
            chunks
            | "ReadSamples" >> ReadSamples()
            | "ParseSamples" >> ParseSamples(duplicates, errors)
            | "ValidateSamples" >> ValidateSamples(o.box_units, errors)
            | "LoadImages" >> LoadImages(o.image_root, o.max_image_pixels, errors)
            | "CropRegions" >> CropRegions(crop_settings, errors)
            | "ComputeReplay" >> ComputeReplay(replay_config, o.replay_pixels, errors)
        )
        if o.score_model:  # imported here: Beam's RunInference imports torch, which runs without scoring don't need
            from beam_pipelines.scoring.transforms import ScoreRegions, settings_of

            outcomes = outcomes | "ScoreRegions" >> ScoreRegions(settings_of(o, replay_config), errors)
    error_shards, error_counts = errors.output()

    shards = [error_shards, outcomes | "WriteDeadLetters" >> WriteDeadLetters(o.output, limits)]
    if "parquet" in formats:
        shards.append(outcomes | "WriteParquetShards" >> WriteParquetShards(o.output, limits))
    if "webdataset" in formats:
        shards.append(outcomes | "WriteWebDatasetShards" >> WriteWebDatasetShards(o.output, limits))
    counts = (outcomes | "CountOutcomes" >> CountOutcomes(), error_counts) | "FlattenCounts" >> beam.Flatten()
    _ = {
        "counts": counts,
        "shards": shards | "FlattenShards" >> beam.Flatten(),
    } | "WriteReport" >> WriteReport(o.output, {**config_of(o), "replay_preset_json": replay_config.to_json()})
