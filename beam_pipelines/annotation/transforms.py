"""`AnnotateSamples`: the annotation model's scores with RunInference, no shuffle.

    outcomes ─ PrepareAnnotation ─ RunInference(AnnotationModelHandler) ─ AttachAnnotation ─┬─ CheckAnnotation
                                     └─ failed inferences (dead letter) ─ FailedAnnotations ─┘

As in the CLIP stage (`scoring.transforms`), every outcome takes one ordered path: `PrepareAnnotation` (CPU, where
the image is decoded) encodes a sample's prompts with the model's processor, RunInference batches within the
bundle and returns the element that went in, so scores are re-attached without a join and nothing is shuffled.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.annotation import templates
from beam_pipelines.annotation.encode import STAGE, Encoder, prm_sequence, verify_sequence
from beam_pipelines.annotation.handler import AnnotationModelHandler
from beam_pipelines.annotation.scores import AnnotationExample, attach, check_sample, failed_batch
from beam_pipelines.annotation.spec import REGIONS, STEPS, AnnotationSettings, read_spec
from beam_pipelines.materialisation import images
from beam_pipelines.materialisation.pixels import rgb_image
from beam_pipelines.records import Outcome, RejectedError, Sample
from beam_pipelines.scoring.prepare import key_of
from beam_pipelines.scoring.transforms import LOCAL_RUNNERS
from beam_pipelines.sources.dataset import Dataset
from beam_pipelines.stages import SampleStageFn, StageClock, apply_stage


def settings_of(options: Any, dataset: Dataset) -> AnnotationSettings:
    """AnnotationSettings from VgrEtlOptions; reads the model's config and tokenizer (fails the launch if unusable)."""
    prm = templates.load(templates.PrmTemplate, options.prm_template)
    verify = templates.load(templates.VerifyTemplate, options.verify_template)
    spec = read_spec(options.annotation_model, prm, verify, dataset.annotated)
    runner = str(options.view_as(StandardOptions).runner).rsplit(".", 1)[-1]
    if options.annotation_device == "cuda" and runner in LOCAL_RUNNERS:
        import torch  # a local runner annotates on this machine: a missing GPU is a launch error, not a worker one

        if not torch.cuda.is_available():
            raise ValueError(
                "--annotation_device cuda with a local runner, but torch sees no CUDA device on this machine"
            )
    return AnnotationSettings(
        spec=spec,
        prm=prm,
        verify=verify,
        device=options.annotation_device,
        dtype=options.annotation_dtype or ("bfloat16" if options.annotation_device == "cuda" else "float32"),
        batch_size=options.annotation_batch_size,
        model_copies=options.annotation_model_copies,
        accelerator=options.annotation_accelerator,
        prm_threshold=options.prm_threshold,
        prm_filter=options.prm_filter,
        prm_filter_severity=options.prm_filter_severity,
        min_verify_score=options.min_verify_score,
        verify_severity=options.verify_severity,
    )


class _PrepareFn(beam.DoFn):
    stage = STAGE

    def __init__(self, settings: AnnotationSettings, dataset: Dataset):
        self.settings = settings
        self.dataset = dataset

    def setup(self) -> None:
        self.encoder = Encoder(self.settings.spec.path, self.settings.spec.model_type)
        self.clock = StageClock("annotate_prepare")

    def _example(self, sample: Sample) -> AnnotationExample:
        s, ids = self.settings, self.settings.spec.label_ids
        pixels = sample.images[0].pixels if sample.images else None
        image = None if pixels is None else rgb_image(pixels)
        if image is None:
            return AnnotationExample(sample)
        if STEPS in self.dataset.annotated and sample.steps:
            turns = self.dataset.prm_turns(sample, s.prm)
            if turns:
                return AnnotationExample(sample, (prm_sequence(self.encoder, turns, image, s.prm, ids),), STEPS)
        if REGIONS in self.dataset.annotated and sample.regions:
            sequences = tuple(
                verify_sequence(self.encoder, image.crop(r.box_px), r.context, s.verify, ids) for r in sample.regions
            )
            return AnnotationExample(sample, sequences, REGIONS)
        return AnnotationExample(sample)

    def process(self, outcome: Outcome):
        if not isinstance(outcome, Sample):
            yield key_of(outcome), AnnotationExample(outcome)
            return
        with self.clock:
            try:
                example = self._example(outcome)
            except RejectedError as exc:
                example = AnnotationExample(outcome.reject(exc.info))
        yield (
            key_of(outcome),
            AnnotationExample(
                images.release_pixels(example.outcome) if isinstance(example.outcome, Sample) else example.outcome,
                example.sequences,
                example.kind,
            ),
        )


class _AttachFn(beam.DoFn):
    def __init__(self, threshold: float):
        self.threshold = threshold

    def process(self, keyed: tuple[str, PredictionResult]):
        result = keyed[1]
        yield attach(result.example, result.inference, self.threshold)


class _CheckFn(SampleStageFn):
    stage = STAGE

    def __init__(self, settings: AnnotationSettings):
        self.settings = settings

    def apply(self, sample: Sample) -> Sample:
        s = self.settings
        return check_sample(sample, s.prm_filter, s.prm_filter_severity, s.min_verify_score, s.verify_severity)


class AnnotateSamples(beam.PTransform):
    """Per PRM step `prm_score` and per region `verify_score`, from the annotation model; filters on them."""

    def __init__(self, settings: AnnotationSettings, dataset: Dataset, errors: ErrorHandler):
        super().__init__()
        self.settings = settings
        self.dataset = dataset
        self.errors = errors

    def expand(self, outcomes):
        s = self.settings
        keyed = apply_stage(outcomes, "PrepareAnnotation", _PrepareFn(s, self.dataset), self.errors, outputs=None)
        results, dead = (
            keyed
            | "RunInference" >> RunInference(KeyedModelHandler(AnnotationModelHandler(s))).with_exception_handling()
        )
        annotated = (
            results | "AttachAnnotation" >> beam.ParDo(_AttachFn(s.prm_threshold)).with_output_types(Outcome),
            dead.failed_inferences | "FailedAnnotations" >> beam.FlatMap(failed_batch).with_output_types(Outcome),
        ) | "Annotated" >> beam.Flatten()
        if s.prm_filter == "none" and s.min_verify_score is None:
            return annotated
        return apply_stage(annotated, "CheckAnnotation", _CheckFn(s), self.errors)
