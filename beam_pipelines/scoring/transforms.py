"""`ScoreRegions`: grounding scores (and optional replay features) with RunInference, no shuffle.

    outcomes ─ PrepareRegions ─ RunInference(KeyedModelHandler(GroundingModelHandler)) ─ AttachScores ─┬─ CheckGrounding
                                  └─ failed inferences (dead letter) ─ FailedBatches ─────────────────┘

Every outcome goes through one ordered path: `PrepareRegions` (CPU, fused with decoding) pairs it with its
fixed-size uint8 crops and token ids; RunInference batches within the bundle (no keyed, stateful batching) and
hands back the very element that went in, so scores are re-attached without a join and no sample carrying images
is shuffled. Failed batches return from RunInference's dead-letter output as `inference_failed` rejections. On
Dataflow the accelerator hint sits on the RunInference step only, which may then run in a GPU worker pool
(`infra/scoring/README.md`; the design is in docs/scoring.md).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.materialisation.replay import ReplayPreset
from beam_pipelines.records import Outcome, Sample
from beam_pipelines.scoring import scores
from beam_pipelines.scoring.handler import GroundingModelHandler
from beam_pipelines.scoring.prepare import ScoringExample, check_replay_compatible, key_of, prepare
from beam_pipelines.scoring.spec import TOKENIZER_FILES, ModelSpec, ScoreSettings, local_copy, read_spec
from beam_pipelines.stages import SampleStageFn, apply_stage

LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner", "PrismRunner")


def settings_of(options: Any, config: ReplayPreset) -> ScoreSettings:
    """ScoreSettings from VgrEtlOptions; reads the model's config files (fails the launch if unusable)."""
    spec = read_spec(options.score_model)
    if options.replay_features:
        check_replay_compatible(spec, config)
    runner = str(options.view_as(StandardOptions).runner).rsplit(".", 1)[-1]
    if options.score_device == "cuda" and runner in LOCAL_RUNNERS:
        import torch  # a local runner scores on this machine: a missing GPU is a launch error, not a worker one

        if not torch.cuda.is_available():
            raise ValueError("--score_device cuda with a local runner, but torch sees no CUDA device on this machine")
    return ScoreSettings(
        model=spec,
        device=options.score_device,
        dtype=options.score_dtype or ("float16" if options.score_device == "cuda" else "float32"),
        batch_size=options.score_batch_size,
        model_copies=options.score_model_copies,
        accelerator=options.score_accelerator,
        min_score=options.min_grounding_score,
        severity=options.grounding_severity,
        replay=config if options.replay_features else None,
    )


class _PrepareFn(beam.DoFn):
    stage = scores.STAGE

    def __init__(self, spec: ModelSpec, config: ReplayPreset | None, keep_pixels: bool):
        self.spec = spec
        self.config = config
        self.keep_pixels = keep_pixels

    def setup(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(local_copy(self.spec.path, TOKENIZER_FILES))

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.spec.max_text_tokens, return_tensors="np"
        )
        return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)

    def process(self, outcome: Outcome):
        if isinstance(outcome, Sample) and outcome.regions:
            yield key_of(outcome), prepare(outcome, self.spec, self.tokenize, self.config, self.keep_pixels)
        else:
            yield key_of(outcome), ScoringExample(outcome)


def attach_result(keyed: tuple[str, PredictionResult]) -> Outcome:
    result = keyed[1]
    return scores.attach(result.example, result.inference)


class _ThresholdFn(SampleStageFn):
    stage = scores.STAGE

    def __init__(self, min_score: float, severity: str):
        self.min_score = min_score
        self.severity = severity

    def apply(self, sample: Sample) -> Sample:
        return scores.check_threshold(sample, self.min_score, self.severity)


class ScoreRegions(beam.PTransform):
    """Per region `grounding_score` (crop vs context cosine similarity) and, optionally, replay features."""

    def __init__(self, settings: ScoreSettings, errors: ErrorHandler, keep_pixels: bool = False):
        super().__init__()
        self.settings = settings
        self.errors = errors
        self.keep_pixels = keep_pixels

    def expand(self, outcomes):
        s = self.settings
        keyed = apply_stage(
            outcomes, "PrepareRegions", _PrepareFn(s.model, s.replay, self.keep_pixels), self.errors, outputs=None
        )
        results, dead = (
            keyed
            | "RunInference" >> RunInference(KeyedModelHandler(GroundingModelHandler(s))).with_exception_handling()
        )
        scored = (
            results | "AttachScores" >> beam.Map(attach_result).with_output_types(Outcome),
            dead.failed_inferences | "FailedBatches" >> beam.FlatMap(scores.failed_batch).with_output_types(Outcome),
        ) | "Scored" >> beam.Flatten()
        if s.min_score is None:
            return scored
        return apply_stage(scored, "CheckGrounding", _ThresholdFn(s.min_score, s.severity), self.errors)
