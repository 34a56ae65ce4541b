"""The device side of scoring: a Hugging Face CLIP model behind one `infer(ModelBatch)` call.

Inputs arrive as uint8 pixels and int64 token ids; conversion to float, normalisation with the
model's mean/std and the cast to the compute dtype happen on the device, so the CPU side never
builds float tensors and host-to-device copies are 4× smaller. The vision and text towers are run
through `vision_model`/`text_model` plus their projections (not `get_image_features`, whose return
type changed across transformers versions). Everything runs in micro-batches of `batch_size` rows,
which bounds device memory whatever Beam's batching hands over. This module imports torch; only the
model handler's `load_model` imports it, so the pipeline builds without torch installed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPModel
from transformers.utils import logging as hf_logging

from beam_pipelines.scoring.batch import ModelBatch, ModelOutput
from beam_pipelines.scoring.spec import FEATURE_LAYER, ModelSpec, local_copy

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def stitch(tile_features: torch.Tensor, layout: tuple[int, int]) -> torch.Tensor:
    """[rows·cols, g·g, D] patch features of row-major tiles → the canvas grid [rows·g, cols·g, D]."""
    rows, cols = layout
    _, cells, dim = tile_features.shape
    g = math.isqrt(cells)
    grid = tile_features.reshape(rows, cols, g, g, dim).permute(0, 2, 1, 3, 4)
    return grid.reshape(rows * g, cols * g, dim)


def pool_cells(cells: torch.Tensor, pool: int) -> torch.Tensor:
    """[h, w, D] → [⌈h/pool⌉·⌈w/pool⌉, D]: means over pool×pool windows anchored at the top-left; windows
    cut by the edge average the cells they have (so the count matches `replay_token_count`)."""
    dim = cells.shape[-1]
    pooled = F.avg_pool2d(cells.permute(2, 0, 1).unsqueeze(0).float(), pool, ceil_mode=True)
    return pooled.squeeze(0).permute(1, 2, 0).reshape(-1, dim)


class GroundingModel:
    """A CLIP model on one device, loaded once per process (or once per machine when shared)."""

    def __init__(self, model: CLIPModel, spec: ModelSpec, device: str, dtype: str, batch_size: int, pool: int):
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self.batch_size = batch_size
        self.pool = pool
        self.model = model.eval().to(self.device, self.dtype)
        self.mean = torch.tensor(spec.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def load(cls, spec: ModelSpec, device: str, dtype: str, batch_size: int, pool: int) -> GroundingModel:
        """From the model directory (a local copy of it when remote), as the RunInference handler does."""
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--score_device cuda, but torch sees no CUDA device on this worker")
        hf_logging.disable_progress_bar()  # one bar per worker process is noise in job logs
        model = CLIPModel.from_pretrained(local_copy(spec.path), dtype=DTYPES[dtype])
        return cls(model, spec, device, dtype, batch_size, pool)

    def _pixels(self, images: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] on the host → normalised [N, 3, H, W] in the compute dtype on the device."""
        x = torch.from_numpy(images).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        return ((x / 255.0 - self.mean) / self.std).to(self.dtype)

    def _scores(self, batch: ModelBatch) -> np.ndarray:
        out = []
        for i in range(0, len(batch.crops), self.batch_size):
            pixels = self._pixels(batch.crops[i : i + self.batch_size])
            ids = torch.from_numpy(batch.input_ids[i : i + self.batch_size]).to(self.device)
            mask = torch.from_numpy(batch.attention_mask[i : i + self.batch_size]).to(self.device)
            image = self.model.visual_projection(self.model.vision_model(pixel_values=pixels).pooler_output)
            text = self.model.text_projection(self.model.text_model(input_ids=ids, attention_mask=mask).pooler_output)
            out.append((F.normalize(image.float(), dim=-1) * F.normalize(text.float(), dim=-1)).sum(-1))
        return torch.cat(out).cpu().numpy().astype(np.float32)

    def _features(self, batch: ModelBatch) -> tuple[np.ndarray, ...]:
        per_tile = []
        for i in range(0, len(batch.tiles), self.batch_size):
            hidden = self.model.vision_model(
                pixel_values=self._pixels(batch.tiles[i : i + self.batch_size]), output_hidden_states=True
            ).hidden_states[FEATURE_LAYER]
            per_tile.append(hidden[:, 1:, :])
        tiles = torch.cat(per_tile)
        grids, start = [], 0
        for rows, cols in batch.layouts:
            grids.append(stitch(tiles[start : start + rows * cols], (rows, cols)))
            start += rows * cols
        out = []
        for image, (u1, v1, u2, v2) in batch.cuts:
            pooled = pool_cells(grids[image][v1:v2, u1:u2], self.pool)
            out.append(pooled.to(torch.float16).cpu().numpy())
        return tuple(out)

    @torch.inference_mode()
    def infer(self, batch: ModelBatch) -> ModelOutput:
        scores = self._scores(batch)
        features = self._features(batch) if batch.tiles is not None else ()
        return ModelOutput(scores, features)
