"""The device side of annotation: a vision-language model behind one `score(sequences)` call.

Sequences are grouped into forward passes of up to `batch_size`, padded on the right (causal attention makes the
padding invisible to every real token), their image inputs concatenated as the model's processor lays them out;
from each pass only the two label logits at the scored positions leave the device. This module imports torch; only
the model handler's `load_model` imports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence as Seq

import numpy as np
import torch
from transformers import AutoModelForImageTextToText
from transformers.utils import logging as hf_logging

from beam_pipelines.annotation.encode import Sequence
from beam_pipelines.annotation.spec import AnnotationSpec
from beam_pipelines.scoring.spec import local_copy

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _token_keys(inputs: dict[str, np.ndarray]) -> set[str]:
    """The inputs with one value per token (ids, masks, token types): padded, not concatenated."""
    shape = inputs["input_ids"].shape
    return {k for k, v in inputs.items() if v.ndim == 2 and v.shape == shape}


def _shape_key(sequence: Sequence) -> tuple:
    tokens = _token_keys(sequence.inputs)
    return tuple(sorted((k, v.shape[1:], str(v.dtype)) for k, v in sequence.inputs.items() if k not in tokens))


class AnnotationModel:
    """A vision-language model on one device, loaded once per process (or once per machine when shared)."""

    def __init__(
        self, model: torch.nn.Module, device: str, dtype: str, batch_size: int, pad_id: int, padding: str = "right"
    ):
        self.padding = padding  # "left" too gives the same scores (a test holds it to that)
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.model = model.eval().to(self.device, self.dtype)
        self.accepts = set(inspect.signature(self.model.forward).parameters)

    @classmethod
    def load(cls, spec: AnnotationSpec, device: str, dtype: str, batch_size: int, pad_id: int) -> AnnotationModel:
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--annotation_device cuda, but torch sees no CUDA device on this worker")
        hf_logging.disable_progress_bar()
        model = AutoModelForImageTextToText.from_pretrained(
            local_copy(spec.path), dtype=DTYPES[dtype], local_files_only=True
        )
        return cls(model, device, dtype, batch_size, pad_id)

    def _pad(self, s: Sequence, width: int) -> tuple[int, int]:
        return (width - s.length, 0) if self.padding == "left" else (0, width - s.length)

    def _batch(self, sequences: Seq[Sequence]) -> dict[str, torch.Tensor]:
        """The sequences' inputs as one batch: per-token inputs padded, image inputs concatenated."""
        width = max(s.length for s in sequences)
        tokens = _token_keys(sequences[0].inputs)
        out = {}
        for key in sequences[0].inputs:
            if key not in self.accepts:
                continue
            if key in tokens:
                fill = self.pad_id if key == "input_ids" else 0
                rows = [np.pad(s.inputs[key][0], self._pad(s, width), constant_values=fill) for s in sequences]
                value = torch.from_numpy(np.stack(rows))
            else:
                value = torch.from_numpy(np.concatenate([s.inputs[key] for s in sequences]))
            if value.is_floating_point():
                value = value.to(self.dtype)
            out[key] = value.to(self.device)
        return out

    @torch.inference_mode()
    def score(self, sequences: Seq[Sequence]) -> list[tuple[float, ...]]:
        """P(positive) against negative at each scored position of each sequence, in order."""
        results: list[tuple[float, ...] | None] = [None] * len(sequences)
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(sequences):
            groups.setdefault(_shape_key(s), []).append(i)
        for members in groups.values():
            members.sort(key=lambda i: sequences[i].length)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                width = max(sequences[i].length for i in chunk)
                logits = self.model(**self._batch([sequences[i] for i in chunk])).logits
                for row, i in enumerate(chunk):
                    s = sequences[i]
                    shift = self._pad(s, width)[0]
                    at = torch.tensor([shift + p - 1 for p in s.positions], device=logits.device)
                    pair = logits[row, at][:, list(s.pair)].float()
                    results[i] = tuple(float(v) for v in torch.softmax(pair, dim=-1)[:, 0].cpu())
        return [r if r is not None else () for r in results]
