"""Selective feature replay: which feature cells a VGR region replays, in LLaVA-NeXT AnyRes geometry.

The arithmetic follows LLaVA-VL/LLaVA-NeXT's `select_best_resolution`, `resize_and_pad_image`
(llava/mm_utils.py) and `unpad_image` (llava/model/llava_arch.py) in Python floats, not exact
fractions and not Hugging Face's rounded variant: a 600×400 image gives best resolution 672×672,
resized size 672×449 and paste offset (0, 111). W and H are the stored image size (no EXIF
transpose) and boxes are `box_norm`.

Frames. `canvas`: the grid is the whole padded canvas (best_w/patch × best_h/patch cells) and
u = (paste_x + x·new_w)/patch. `unpadded` (default): the grid is the part of the canvas grid that
`unpad_image` keeps, columns [c0, c1) and rows [r0, r1), and u = x·(c1 − c0) relative to its corner.
Grid box: floor for u1, v1, ceil for u2, v2 (exclusive), clamped so the box keeps at least one cell.
Token count: the cut-out pooled on its own, ⌈Δu/pool⌉·⌈Δv/pool⌉. Indices: row-major v·G_w + u of
the unpooled cells of the frame's grid.
"""

from __future__ import annotations

import io
import json
import math
import zlib
from dataclasses import asdict, dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
from PIL import Image

from beam_pipelines.materialisation.pixels import rgb_image
from beam_pipelines.records import Region, Sample

FRAMES = ("unpadded", "canvas")


@dataclass(frozen=True)
class ReplayPreset:
    name: str
    tile: int = 336
    patch: int = 14
    max_tiles: int = 20
    pool_global: int = 2
    pool_tile: int = 4
    pool_replay: int = 2
    frame: str = "unpadded"

    @cached_property
    def pinpoints(self) -> list[tuple[int, int]]:
        """(width, height) pairs (tile·i, tile·j), i·j ≤ max_tiles, i outer and j inner."""
        return [
            (self.tile * i, self.tile * j)
            for i in range(1, self.max_tiles + 1)
            for j in range(1, self.max_tiles + 1)
            if i * j <= self.max_tiles
        ]

    @cached_property
    def _json(self) -> str:
        return json.dumps(asdict(self))

    def to_json(self) -> str:
        """The preset as JSON (every region's row records it; made once per preset)."""
        return self._json

    def base_tokens(self, best: tuple[int, int]) -> int:
        """Global view pooled by pool_global plus every tile pooled by pool_tile (padding included)."""
        cells = self.tile // self.patch
        per_global = math.ceil(cells / self.pool_global) ** 2
        per_tile = math.ceil(cells / self.pool_tile) ** 2
        return per_global + per_tile * (best[0] // self.tile) * (best[1] // self.tile)


PRESETS = {
    "vgr_llava_next_clip336": ReplayPreset("vgr_llava_next_clip336"),
    "llava_next_clip336_4tiles": ReplayPreset("llava_next_clip336_4tiles", max_tiles=4),
}
DEFAULT_PRESET = "vgr_llava_next_clip336"
BASELINE_TOKENS = 2880  # un-pooled LLaVA-NeXT: 1 global view + 4 tiles of 576


def preset(name: str, frame: str | None = None) -> ReplayPreset:
    if name not in PRESETS:
        raise ValueError(f"--replay_preset {name!r}: expected one of {', '.join(PRESETS)}")
    base = PRESETS[name]
    if frame is None or frame == base.frame:
        return base
    if frame not in FRAMES:
        raise ValueError(f"--replay_frame {frame!r}: expected one of {', '.join(FRAMES)}")
    return ReplayPreset(**{**asdict(base), "frame": frame})


def select_best_resolution(size: tuple[int, int], pinpoints: list[tuple[int, int]]) -> tuple[int, int]:
    """LLaVA-NeXT: the pinpoint with the largest effective resolution, then the least waste; ties keep the first."""
    width, height = size
    best = pinpoints[0]
    max_effective, min_wasted = 0, float("inf")
    for w, h in pinpoints:
        scale = min(w / width, h / height)
        down_w, down_h = int(width * scale), int(height * scale)
        effective = min(down_w * down_h, width * height)
        wasted = w * h - effective
        if effective > max_effective or (effective == max_effective and wasted < min_wasted):
            max_effective, min_wasted, best = effective, wasted, (w, h)
    return best


def resized_size(size: tuple[int, int], best: tuple[int, int]) -> tuple[int, int]:
    """LLaVA-NeXT `resize_and_pad_image`: aspect-preserving, ceil, capped at the target."""
    width, height = size
    target_w, target_h = best
    scale_w, scale_h = target_w / width, target_h / height
    if scale_w < scale_h:
        return target_w, min(math.ceil(height * scale_w), target_h)
    return min(math.ceil(width * scale_h), target_w), target_h


def unpadded_cells(size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
    """LLaVA-NeXT `unpad_image` on a (G_w, G_h) feature grid: the kept columns [c0, c1) and rows [r0, r1)."""
    width, height = size
    grid_w, grid_h = grid
    if width / height > grid_w / grid_h:
        new_h = int(height * (grid_w / width))
        pad = (grid_h - new_h) // 2
        return 0, grid_w, pad, grid_h - pad
    new_w = int(width * (grid_h / height))
    pad = (grid_w - new_w) // 2
    return pad, grid_w - pad, 0, grid_h


@dataclass(frozen=True)
class ImageGeometry:
    """Per-image AnyRes geometry, computed once per sample and shared by its regions."""

    best: tuple[int, int]
    resized: tuple[int, int]
    paste: tuple[int, int]
    cells: tuple[int, int, int, int]  # c0, c1, r0, r1 of the frame's grid within the canvas grid
    base_tokens: int

    @property
    def grid(self) -> tuple[int, int]:
        c0, c1, r0, r1 = self.cells
        return c1 - c0, r1 - r0


@lru_cache(maxsize=4096)
def image_geometry(size: tuple[int, int], config: ReplayPreset) -> ImageGeometry:
    """The geometry of an image of `size` (a function of size and preset alone: images of one size share it)."""
    best = select_best_resolution(size, config.pinpoints)
    resized = resized_size(size, best)
    paste = ((best[0] - resized[0]) // 2, (best[1] - resized[1]) // 2)
    canvas_grid = (best[0] // config.patch, best[1] // config.patch)
    cells = (0, canvas_grid[0], 0, canvas_grid[1]) if config.frame == "canvas" else unpadded_cells(size, canvas_grid)
    return ImageGeometry(best, resized, paste, cells, config.base_tokens(best))


def grid_box(box_norm: tuple[float, ...], geo: ImageGeometry, config: ReplayPreset) -> tuple[int, int, int, int] | None:
    """[u1, v1, u2, v2] in the frame's grid (u2, v2 exclusive), or None when the frame keeps no cell."""
    grid_w, grid_h = geo.grid
    if grid_w <= 0 or grid_h <= 0:
        return None
    x1, y1, x2, y2 = box_norm
    if config.frame == "canvas":
        new_w, new_h = geo.resized
        px, py = geo.paste
        u = ((px + x1 * new_w) / config.patch, (px + x2 * new_w) / config.patch)
        v = ((py + y1 * new_h) / config.patch, (py + y2 * new_h) / config.patch)
    else:
        u = (x1 * grid_w, x2 * grid_w)
        v = (y1 * grid_h, y2 * grid_h)
    u1 = min(max(math.floor(u[0]), 0), grid_w - 1)
    v1 = min(max(math.floor(v[0]), 0), grid_h - 1)
    u2 = min(max(math.ceil(u[1]), u1 + 1), grid_w)
    v2 = min(max(math.ceil(v[1]), v1 + 1), grid_h)
    return u1, v1, u2, v2


def token_count(box: tuple[int, int, int, int], config: ReplayPreset) -> int:
    u1, v1, u2, v2 = box
    return math.ceil((u2 - u1) / config.pool_replay) * math.ceil((v2 - v1) / config.pool_replay)


def token_indices(box: tuple[int, int, int, int], grid_w: int) -> np.ndarray:
    """Row-major indices v·G_w + u of the unpooled cells of the box, as int32."""
    u1, v1, u2, v2 = box
    cols = np.arange(u1, u2, dtype=np.int32)
    rows = np.arange(v1, v2, dtype=np.int32)
    return (rows[:, None] * grid_w + cols[None, :]).reshape(-1)


def canvas(pixels: Image.Image | np.ndarray, geo: ImageGeometry) -> np.ndarray:
    """The padded AnyRes canvas: RGB, `Image.resize` with Pillow's default filter, pasted on black."""
    out = Image.new("RGB", geo.best, (0, 0, 0))
    out.paste(rgb_image(pixels).resize(geo.resized), geo.paste)
    return np.asarray(out)


def replay_pixels(
    canvas_array: np.ndarray, box: tuple[int, int, int, int], geo: ImageGeometry, patch: int
) -> np.ndarray:
    """Canvas rows [(r0+v1)·patch, (r0+v2)·patch) and columns [(c0+u1)·patch, (c0+u2)·patch): (Δv·p, Δu·p, 3)."""
    u1, v1, u2, v2 = box
    c0, _, r0, _ = geo.cells
    return canvas_array[(r0 + v1) * patch : (r0 + v2) * patch, (c0 + u1) * patch : (c0 + u2) * patch]


def compress(array: np.ndarray) -> bytes:
    """zlib over the raw uint8 bytes: `np.frombuffer(zlib.decompress(b), np.uint8).reshape(shape)` reads it back."""
    return zlib.compress(np.ascontiguousarray(array, dtype=np.uint8).tobytes(), 6)


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def region_replay(
    region: Region, geo: ImageGeometry, config: ReplayPreset, canvas_array: np.ndarray | None
) -> dict[str, object]:
    box = grid_box(region.box_norm, geo, config) if region.box_norm is not None else None
    out: dict[str, object] = {
        "replay_preset": config.to_json(),
        "anyres_best_resolution": list(geo.best),
        "anyres_resized_size": list(geo.resized),
        "anyres_paste_offset": list(geo.paste),
        "replay_grid_box": list(box) if box else None,
        "replay_token_count": token_count(box, config) if box else None,
        "replay_token_indices": token_indices(box, geo.grid[0]) if box else None,
        "replay_pixels": None,
        "replay_pixels_shape": None,
    }
    if canvas_array is not None and box:
        pixels = replay_pixels(canvas_array, box, geo, config.patch)
        out["replay_pixels"] = pixels
        out["replay_pixels_shape"] = list(pixels.shape)
    return out


def compute_replay(sample: Sample, config: ReplayPreset, with_pixels: bool) -> Sample:
    """Replay columns for every region and (base, replay) visual tokens for the sample; one geometry per image."""
    first = sample.images[0]
    geo = image_geometry((first.encoded.width, first.encoded.height), config)
    if not sample.regions:
        return replace(sample, visual_tokens=(geo.base_tokens, 0))
    canvas_array = canvas(first.pixels, geo) if with_pixels and min(geo.grid) > 0 else None
    regions = tuple(replace(r, replay=region_replay(r, geo, config, canvas_array)) for r in sample.regions)
    replayed = sum(r.replay["replay_token_count"] or 0 for r in regions if r.replay_marker)
    warnings = sample.warnings + (("replay_empty_grid",) if min(geo.grid) <= 0 else ())
    return replace(sample, regions=regions, visual_tokens=(geo.base_tokens, replayed), warnings=warnings)
