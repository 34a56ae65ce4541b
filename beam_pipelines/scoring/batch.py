"""Between the keyed examples of one RunInference batch and one model call: merge, then split back.

Plain numpy dataclasses, so a batch can also cross to a model served from another process
(`large_model` / `model_copies`), and so merging and splitting are unit-tested without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from beam_pipelines.scoring.prepare import Box, RegionInputs


@dataclass(frozen=True)
class ModelBatch:
    crops: np.ndarray  # uint8 [N, S, S, 3], all regions of the batch
    input_ids: np.ndarray  # int64 [N, L]
    attention_mask: np.ndarray  # int64 [N, L]
    tiles: np.ndarray | None  # uint8 [T, tile, tile, 3], the tiles of every image that has cuts
    layouts: tuple[tuple[int, int], ...]  # (rows, cols) per image with tiles, in order
    cuts: tuple[tuple[int, Box], ...]  # (image position among `layouts`, canvas cell box)


@dataclass(frozen=True)
class ModelOutput:
    scores: np.ndarray  # float32 [N]
    features: tuple[np.ndarray, ...]  # float16 [tokens, D] per cut


@dataclass(frozen=True)
class SampleScores:
    """One sample's results, aligned with its regions."""

    scores: tuple[float, ...]
    features: tuple[np.ndarray | None, ...]


def merge(inputs: Sequence[RegionInputs]) -> ModelBatch:
    tiled = [x for x in inputs if x.tiles is not None]
    cuts = tuple((image, box) for image, x in enumerate(tiled) for _, box in x.cuts)
    return ModelBatch(
        crops=np.concatenate([x.crops for x in inputs]),
        input_ids=np.concatenate([x.input_ids for x in inputs]),
        attention_mask=np.concatenate([x.attention_mask for x in inputs]),
        tiles=np.concatenate([x.tiles for x in tiled]) if tiled else None,
        layouts=tuple(x.layout for x in tiled),
        cuts=cuts,
    )


def split(output: ModelOutput, inputs: Sequence[RegionInputs]) -> list[SampleScores]:
    """The inverse of `merge`: per input, its regions' scores and (where cut) features."""
    out, row, cut = [], 0, 0
    for x in inputs:
        n = len(x.crops)
        features: list[np.ndarray | None] = [None] * n
        for position, _ in x.cuts:
            features[position] = output.features[cut]
            cut += 1
        out.append(SampleScores(tuple(float(s) for s in output.scores[row : row + n]), tuple(features)))
        row += n
    return out
