"""`GroundingModelHandler`: a RunInference ModelHandler over `ScoringExample`s, used keyed.

One batch → one `ModelBatch` → one `model.infer` call → one `SampleScores` per example. Batches are
weighed in regions (`batch_weight`), at most `--score_batch_size` of them. On a GPU (or with
`--score_model_copies`) the model is shared across the worker's SDK processes (`large_model`),
so a machine holds one copy instead of one per process; `--score_accelerator` becomes the
RunInference step's resource hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from beam_pipelines.scoring.batch import SampleScores, merge, split
from beam_pipelines.scoring.prepare import ScoringExample, batch_weight
from beam_pipelines.scoring.spec import ScoreSettings


class GroundingModelHandler(ModelHandler[ScoringExample, PredictionResult, Any]):
    def __init__(self, settings: ScoreSettings):
        super().__init__(
            min_batch_size=settings.batch_size,
            max_batch_size=settings.batch_size,
            element_size_fn=partial(batch_weight, limit=settings.batch_size),
            large_model=settings.share_model,
            model_copies=settings.model_copies,
        )
        self.settings = settings

    def load_model(self):
        from beam_pipelines.scoring.model import GroundingModel

        s = self.settings
        return GroundingModel.load(s.model, s.device, s.dtype, s.batch_size, s.replay.pool_replay if s.replay else 1)

    def run_inference(
        self, batch: Sequence[ScoringExample], model: Any, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        inputs = [e.inputs for e in batch if e.inputs is not None]
        results: list[SampleScores | None] = split(model.infer(merge(inputs)), inputs) if inputs else []
        it = iter(results)
        return [PredictionResult(e, next(it) if e.inputs is not None else None) for e in batch]

    def get_num_bytes(self, batch: Sequence[ScoringExample]) -> int:
        return sum(e.inputs.nbytes for e in batch if e.inputs is not None)

    def get_metrics_namespace(self) -> str:
        return "vgr_etl_scoring"

    def get_resource_hints(self) -> dict[str, Any]:
        return {"accelerator": self.settings.accelerator} if self.settings.accelerator else {}
