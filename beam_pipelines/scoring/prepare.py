"""CPU side of scoring: per sample, fixed-size uint8 crops, token ids and (optionally) AnyRes tiles.

This runs in the fused CPU chain right after the image was decoded for cropping, so the GPU side only
stacks ready tensors (normalisation happens on the device, in the model's batch step). Crops are cut
from the decoded pixels (not re-decoded from the stored crop), letterboxed onto a square of the
model's mean colour and resized with bicubic filtering: a centre crop, CLIP's own preprocessing,
would cut off the referred object of a long thin box. Texts are padded to the model's fixed length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from beam_pipelines.materialisation import images, replay
from beam_pipelines.materialisation.pixels import crop_of
from beam_pipelines.records import Duplicate, Outcome, Sample
from beam_pipelines.scoring.spec import ModelSpec

Box = tuple[int, int, int, int]
Tokenize = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class RegionInputs:
    """Everything the model needs for one sample's regions, as plain arrays."""

    crops: np.ndarray  # uint8 [R, S, S, 3]
    input_ids: np.ndarray  # int64 [R, L]
    attention_mask: np.ndarray  # int64 [R, L]
    tiles: np.ndarray | None = None  # uint8 [T, tile, tile, 3]: the padded AnyRes canvas, row-major tiles
    layout: tuple[int, int] | None = None  # (rows, cols) of tiles
    cuts: tuple[tuple[int, Box], ...] = ()  # (region position, canvas cell box u1, v1, u2, v2) per replay cut

    @property
    def nbytes(self) -> int:
        arrays = (self.crops, self.input_ids, self.attention_mask, self.tiles)
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass(frozen=True)
class ScoringExample:
    """One outcome on its way through RunInference; only samples with regions carry inputs."""

    outcome: Outcome
    inputs: RegionInputs | None = None


def letterbox(pixels: Image.Image | np.ndarray, box_px: Box, size: int, fill: tuple[int, int, int]) -> np.ndarray:
    """The box's pixels, aspect kept, longer side resized to `size` (bicubic), centred on a `fill` square."""
    crop = crop_of(pixels, box_px)
    w, h = crop.size
    scale = size / max(w, h)
    new_w, new_h = min(size, max(1, round(w * scale))), min(size, max(1, round(h * scale)))
    out = Image.new("RGB", (size, size), fill)
    out.paste(crop.resize((new_w, new_h), Image.Resampling.BICUBIC), ((size - new_w) // 2, (size - new_h) // 2))
    return np.asarray(out)


def canvas_tiles(canvas: np.ndarray, tile: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A (H, W, 3) canvas with H, W multiples of `tile` as [rows·cols, tile, tile, 3] tiles in row-major order."""
    height, width, channels = canvas.shape
    rows, cols = height // tile, width // tile
    tiles = canvas.reshape(rows, tile, cols, tile, channels).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(tiles.reshape(rows * cols, tile, tile, channels)), (rows, cols)


def canvas_cells(grid_box: list[int] | None, geo: replay.ImageGeometry) -> Box | None:
    """A replay grid box (frame grid) in the canvas grid the stitched tile features form."""
    if grid_box is None:
        return None
    u1, v1, u2, v2 = grid_box
    c0, _, r0, _ = geo.cells
    return c0 + u1, r0 + v1, c0 + u2, r0 + v2


def check_replay_compatible(spec: ModelSpec, config: replay.ReplayPreset) -> None:
    """Replay features index the preset's grid, so the vision tower must see tiles of the preset's size."""
    if (spec.image_size, spec.patch_size) != (config.tile, config.patch):
        raise ValueError(
            f"--replay_features: the model sees {spec.image_size}px images in {spec.patch_size}px patches, but "
            f"replay preset {config.name!r} uses {config.tile}px tiles and {config.patch}px patches"
        )


def prepare(
    sample: Sample, spec: ModelSpec, tokenize: Tokenize, config: replay.ReplayPreset | None, keep_pixels: bool = False
) -> ScoringExample:
    """Region inputs of one sample (tiles and cuts too when `config` is given); the sample keeps no pixels unless
    a later stage reads them (`keep_pixels`: the annotation model)."""
    first = sample.images[0]
    crops = np.stack([letterbox(first.pixels, r.box_px, spec.image_size, spec.fill) for r in sample.regions])
    input_ids, attention_mask = tokenize([r.context for r in sample.regions])
    tiles = layout = None
    cuts: tuple[tuple[int, Box], ...] = ()
    if config is not None:
        geo = replay.image_geometry((first.encoded.width, first.encoded.height), config)
        boxes = [canvas_cells((r.replay or {}).get("replay_grid_box"), geo) for r in sample.regions]
        cuts = tuple((i, box) for i, box in enumerate(boxes) if box is not None)
        if cuts:
            tiles, layout = canvas_tiles(replay.canvas(first.pixels, geo), config.tile)
    inputs = RegionInputs(crops, input_ids, attention_mask, tiles, layout, cuts)
    return ScoringExample(sample if keep_pixels else images.release_pixels(sample), inputs)


def key_of(outcome: Outcome) -> str:
    """The RunInference key: the sample id where there is one, else the input position."""
    if isinstance(outcome, Sample | Duplicate):
        return outcome.sample_id
    p = outcome.provenance
    return outcome.sample_id or f"{p.input_file}:{p.member or ''}:{p.row}"


def batch_weight(element: tuple[str, ScoringExample], limit: int) -> int:
    """A keyed example's share of a batch: its regions, capped at the batch size (so a sample with more
    regions than that still forms a batch of its own); 1 for outcomes that only pass through, so batches
    of them are still flushed regularly instead of holding a whole bundle."""
    inputs = element[1].inputs
    return 1 if inputs is None else max(1, min(len(inputs.crops), limit))
