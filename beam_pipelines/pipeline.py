"""`build_pipeline`: the stages composed, sources → validation → materialisation → sinks → versioning.

    current version's ids (refresh) ─ ReadPublishedIds ─┐
    input files ─ PlanChunks ─┬─ FindDuplicates (ids only) ┴─────────────┐ (side input)   ── removed ids ─┐
                              │     └─ PreviewShortlist ── (side input of DecodeImages: which get thumbnails)
                              ├─ ReportPlanned (progress: records and chunks planned)
                              └─ ReadRecords ─┬─ ParseSamples ─ ValidateRecords ─ LoadImages
                                              │     ─ ValidateImages ─ DecodeImages ─ CropRegions ─ ComputeReplay
                                              │     [─ ScoreRegions, with --score_model]
                                              │     ─┬─ WriteParquetShards ──┐
                                              │      ├─ WriteWebDatasetShards ┤ files, stage times
                                              │      ├─ WriteIndexShards ─────┤
                                              │      ├─ WriteDeadLetters ─────┼─ PublishVersion (rows counted in
                                              │      ├─ ReportDone (progress) │   the files, invariant, pages,
                                              │      └─ CountOutcomes ────────┤   report, pointer)
                                              └─ CountRecordsRead ────────────┤
    per-expectation counters of the two validation stages ────────────────────┤
    unexpected exceptions in any stage ─ ErrorHandler ─ WriteErrorRecords ─────┤
    removed ids (--on_removed drop) ─ RewriteRemoved ─────────────────────────┘

Everything from ReadRecords to the writers is one fused chain per chunk: images are decoded once, after
validation, never shuffled, and shards line up with input chunks. The validation stages batch samples within a
bundle (Great Expectations has a fixed cost per call) and keep their order. Shards are named after the version the
run publishes (`versioning/`); the plan of what to read is made before the job is built.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.flags import config_of, formats_of
from beam_pipelines.layout import OutputLayout
from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings
from beam_pipelines.materialisation.images import ImageLimits
from beam_pipelines.materialisation.transforms import (
    ComputeReplay,
    CropRegions,
    DecodeImages,
    LoadImages,
    PreviewShortlist,
)
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.sinks.counters import MergeCounts
from beam_pipelines.sinks.progress import ReportDone, ReportPlanned
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget
from beam_pipelines.sinks.transforms import (
    ConformRows,
    CountOutcomes,
    WriteDeadLetters,
    WriteErrorRecords,
    WriteIndexShards,
    WriteParquetShards,
    WriteWebDatasetShards,
)
from beam_pipelines.sources.dataset import IMAGES, RECORDS
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.sources.transforms import (
    FindDuplicates,
    ParseSamples,
    PlanChunks,
    ReadRecords,
    ReferenceLabels,
)
from beam_pipelines.validation.suites import expectation_infos, load_suites
from beam_pipelines.validation.tables import tables_for
from beam_pipelines.validation.transforms import ValidateImages, ValidateRecords
from beam_pipelines.versioning.plan import VersionPlan, plan_version
from beam_pipelines.versioning.transforms import Finish, KeepLease, PublishVersion, ReadPublishedIds, RewriteRemoved


def _removed_stats(_: tuple[str, str], drop: bool) -> dict[str, int]:
    return {"removed": 1, "dropped": int(drop)}


def build_pipeline(p: beam.Pipeline, options: VgrEtlOptions, plan: VersionPlan | None = None) -> None:
    """The job of one `run` or `refresh`; without a plan, a `run` planned here (tests, templates)."""
    o = options.view_as(VgrEtlOptions)
    dataset = dataset_named(o.source)
    plan = plan or plan_version(options, "run", list_inputs=False, clean=False)
    formats = formats_of(o)
    target = ShardTarget(OutputLayout(o.output), ShardLimits(o.chunk_rows, o.shard_max_bytes), plan.version)
    crop_settings = CropSettings(o.box_units, o.jpeg_quality, o.png_compress_level)
    replay_config = replay.preset(o.replay_preset, o.replay_frame)
    suites = load_suites(o.expectations)
    batching = (o.box_units, o.validation_batch_size, o.validation_batch_bytes)

    chunks = p | "PlanChunks" >> PlanChunks(dataset, list(o.input if plan.files is None else plan.files), o.chunk_rows)
    raws_for_ids = chunks | "ReadForIds" >> ReadRecords()
    published = p | "ReadPublishedIds" >> ReadPublishedIds(o.output, plan.known_index) if plan.known_index else None
    ids = raws_for_ids | "FindDuplicates" >> FindDuplicates(dataset, published, plan.stale_files)
    shortlist = ids["keys"] | "PreviewShortlist" >> PreviewShortlist()
    references = None
    if o.label_reference:
        references = raws_for_ids | "ReferenceLabels" >> ReferenceLabels(dataset, o.label_reference, o.chunk_rows)
    with ErrorHandler(WriteErrorRecords(target)) as errors:
        raws = chunks | "ReadRecords" >> ReadRecords()
        parsed = raws | "ParseSamples" >> ParseSamples(dataset, ids["kept"], errors)
        parsed, record_checks = parsed | "ValidateRecords" >> ValidateRecords(dataset, suites, *batching, references)
        loaded = parsed | "LoadImages" >> LoadImages(dataset, o.image_root, ImageLimits.of(o), errors)
        loaded, image_checks = loaded | "ValidateImages" >> ValidateImages(dataset, suites, *batching)
        annotate = bool(o.annotation_model) and bool(dataset.annotated)
        outcomes = (
            loaded
            | "DecodeImages" >> DecodeImages(errors, every_first_image=annotate, shortlist=shortlist)
            | "CropRegions" >> CropRegions(crop_settings, errors)
            | "ComputeReplay"
            >> ComputeReplay(replay_config, o.replay_pixels, errors, keep_pixels=bool(o.score_model) or annotate)
        )
        if o.score_model:  # imported here: Beam's RunInference imports torch, which runs without scoring don't need
            from beam_pipelines.scoring.transforms import ScoreRegions, settings_of

            settings = settings_of(o, replay_config)
            outcomes = outcomes | "ScoreRegions" >> ScoreRegions(settings, errors, keep_pixels=annotate)
        if annotate:
            from beam_pipelines.annotation.transforms import AnnotateSamples
            from beam_pipelines.annotation.transforms import settings_of as annotation_settings

            outcomes = outcomes | "AnnotateSamples" >> AnnotateSamples(annotation_settings(o, dataset), dataset, errors)
    outcomes = outcomes | "ConformRows" >> ConformRows(errors)
    error_shards, error_counts = errors.output()

    _ = chunks | "ReportPlanned" >> ReportPlanned()
    _ = outcomes | "ReportDone" >> ReportDone()
    if plan.lease:
        _ = outcomes | "KeepLease" >> KeepLease(plan)
    shards = [
        error_shards,
        outcomes | "WriteDeadLetters" >> WriteDeadLetters(target),
        outcomes | "WriteIndexShards" >> WriteIndexShards(target),
    ]
    if "parquet" in formats:
        shards.append(outcomes | "WriteParquetShards" >> WriteParquetShards(target))
    if "webdataset" in formats:
        shards.append(outcomes | "WriteWebDatasetShards" >> WriteWebDatasetShards(target))
    drop = plan.on_removed == "drop"
    removed_counts = (
        ids["removed"]
        | "RemovedStats" >> beam.Map(_removed_stats, drop)
        | "MergeRemoved" >> beam.CombineGlobally(MergeCounts()).without_defaults()
    )
    counts = (
        outcomes | "CountOutcomes" >> CountOutcomes(o.prm_threshold),
        error_counts,
        record_checks,
        image_checks,
        removed_counts,
    ) | "FlattenCounts" >> beam.Flatten()
    config = {**config_of(o), "replay_preset_json": replay_config.to_json()}
    expectations = {name: info.to_json() for name, info in expectation_infos(suites).items()}
    replacements = (
        ids["removed"] | "RewriteRemoved" >> RewriteRemoved(plan) if drop else p | "NoRewrites" >> beam.Create([])
    )
    run = {
        "counts": counts,
        "files": shards | "FlattenShards" >> beam.Flatten(),
        "replacements": replacements,
        "records_read": raws
        | "CountRecordsRead" >> beam.CombineGlobally(beam.combiners.CountCombineFn()).without_defaults(),
        "records_planned": chunks
        | "RowsPlanned" >> beam.Map(lambda c: c.num_rows)
        | "SumPlanned" >> beam.CombineGlobally(sum).without_defaults(),
        "outcomes": outcomes,
    }
    applicable = tuple(t.name for phase in (RECORDS, IMAGES) for t in tables_for(dataset, phase) if t.name in suites)
    finish = Finish(plan, config, expectations, formats, applicable)
    _ = run | "PublishVersion" >> PublishVersion(finish, dataset)
