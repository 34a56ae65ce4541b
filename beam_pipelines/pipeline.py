"""`build_pipeline`: the stages composed, sources → validation → materialisation → sinks.

    input patterns ─ PlanChunks ─┬─ FindDuplicates (ids only) ──────────────┐ (side input)
                                 └─ ReadSamples ─ ParseSamples ─ ValidateRecords ─ LoadImages
                                       ─ ValidateImages ─ DecodeImages ─ CropRegions ─ ComputeReplay
                                       [─ ScoreRegions, with --score_model]
                                       ─┬─ WriteParquetShards ──┐
                                        ├─ WriteWebDatasetShards ┤
                                        ├─ WriteDeadLetters ─────┼─ WriteReport
                                        └─ outcome counters ─────┤
    per-expectation counters of the two validation stages ──────────────┘
    unexpected exceptions in any stage ─ ErrorHandler ─ WriteErrorRecords ─┘

Everything from ReadSamples to the writers is one fused chain per chunk: images are decoded once,
after validation, never shuffled, and shards line up with input chunks. The validation stages batch
samples within a bundle (Great Expectations has a fixed cost per call) and keep their order.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings
from beam_pipelines.materialisation.transforms import ComputeReplay, CropRegions, DecodeImages, LoadImages
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
from beam_pipelines.sources.transforms import (
    FindDuplicates,
    ParseSamples,
    PlanChunks,
    ReadSamples,
    ReferenceLabels,
)
from beam_pipelines.validation.suites import expectation_infos, load_suites
from beam_pipelines.validation.transforms import ValidateImages, ValidateRecords


def build_pipeline(p: beam.Pipeline, options: VgrEtlOptions) -> None:
    o = options.view_as(VgrEtlOptions)
    formats = formats_of(o)
    limits = ShardLimits(o.shard_max_samples, o.shard_max_bytes)
    crop_settings = CropSettings(o.box_units, o.jpeg_quality, o.png_compress_level)
    replay_config = replay.preset(o.replay_preset, o.replay_frame)
    suites = load_suites(o.expectations)
    batching = (o.box_units, o.validation_batch_size, o.validation_batch_bytes)

    chunks = p | "PlanChunks" >> PlanChunks(o.source, o.input, o.shard_max_samples)
    raws_for_ids = chunks | "ReadForIds" >> ReadSamples()
    duplicates = raws_for_ids | "FindDuplicates" >> FindDuplicates()
    references = None
    if o.label_reference:
        references = raws_for_ids | "ReferenceLabels" >> ReferenceLabels(o.label_reference, o.shard_max_samples)
    with ErrorHandler(WriteErrorRecords(o.output)) as errors:
        parsed = chunks | "ReadSamples" >> ReadSamples() | "ParseSamples" >> ParseSamples(duplicates, errors)
        parsed, record_checks = parsed | "ValidateRecords" >> ValidateRecords(suites, *batching, references)
        loaded = parsed | "LoadImages" >> LoadImages(o.image_root, o.max_image_pixels, errors)
        loaded, image_checks = loaded | "ValidateImages" >> ValidateImages(suites, *batching)
        outcomes = (
            loaded
            | "DecodeImages" >> DecodeImages(errors)
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
    counts = (
        outcomes | "CountOutcomes" >> CountOutcomes(),
        error_counts,
        record_checks,
        image_checks,
    ) | "FlattenCounts" >> beam.Flatten()
    config = {**config_of(o), "replay_preset_json": replay_config.to_json()}
    expectations = {name: info.to_json() for name, info in expectation_infos(suites).items()}
    _ = {
        "counts": counts,
        "shards": shards | "FlattenShards" >> beam.Flatten(),
        "outcomes": outcomes,
    } | "WriteReport" >> WriteReport(o.output, config, expectations)
