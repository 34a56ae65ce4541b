"""`AnnotationModelHandler`: a RunInference ModelHandler over `AnnotationExample`s, used keyed.

A batch is weighed in sequences (a PRM sample is one, a VGR sample one per region) and holds `BUCKETS` forward
passes' worth: the model sorts its sequences by length and runs them in passes of `--annotation_batch_size`, so a
pass pads its sequences to a length close to theirs. On a GPU (or with `--annotation_model_copies`) the
model is shared across the worker's SDK processes (`large_model`); `--annotation_accelerator` becomes the step's
resource hint. (Beam's own Hugging Face handler imports TensorFlow and does not load under transformers 5.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from beam_pipelines.annotation.scores import AnnotationExample
from beam_pipelines.annotation.spec import AnnotationSettings


def batch_weight(element: tuple[str, AnnotationExample], limit: int) -> int:
    """A keyed example's share of a batch: its sequences, capped at the batch size; 1 for outcomes passing through."""
    return max(1, min(len(element[1].sequences), limit))


BUCKETS = 4


class AnnotationModelHandler(ModelHandler[AnnotationExample, PredictionResult, Any]):
    def __init__(self, settings: AnnotationSettings):
        size = settings.batch_size * BUCKETS
        super().__init__(
            min_batch_size=size,
            max_batch_size=size,
            element_size_fn=partial(batch_weight, limit=size),
            large_model=settings.share_model,
            model_copies=settings.model_copies,
        )
        self.settings = settings

    def load_model(self):
        from beam_pipelines.annotation.model import AnnotationModel

        s = self.settings
        return AnnotationModel.load(s.spec, s.device, s.dtype, s.batch_size, s.spec.pad_id)

    def run_inference(
        self, batch: Sequence[AnnotationExample], model: Any, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        sequences = [s for e in batch for s in e.sequences]
        scores = iter(model.score(sequences) if sequences else [])
        return [PredictionResult(e, [next(scores) for _ in e.sequences] if e.sequences else None) for e in batch]

    def get_num_bytes(self, batch: Sequence[AnnotationExample]) -> int:
        return sum(v.nbytes for e in batch for s in e.sequences for v in s.inputs.values())

    def get_metrics_namespace(self) -> str:
        return "vgr_etl_annotation"

    def get_resource_hints(self) -> dict[str, Any]:
        return {"accelerator": self.settings.accelerator} if self.settings.accelerator else {}
