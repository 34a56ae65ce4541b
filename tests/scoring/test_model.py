"""The device side on CPU with a tiny real CLIP: scores against CLIP's own forward, features, pooling."""

import math

import numpy as np
import pytest

from beam_pipelines.scoring.batch import ModelBatch
from beam_pipelines.scoring.spec import read_spec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from beam_pipelines.scoring.model import GroundingModel, pool_cells, stitch  # noqa: E402


def _pool_reference(cells: np.ndarray, pool: int) -> np.ndarray:
    h, w, _ = cells.shape
    return np.stack(
        [
            cells[v : v + pool, u : u + pool].reshape(-1, cells.shape[2]).mean(axis=0)
            for v in range(0, h, pool)
            for u in range(0, w, pool)
        ]
    )


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 5), (4, 7), (25, 7)])
def test_pool_cells_averages_windows_anchored_top_left_with_ceil(shape):
    cells = np.random.default_rng(0).normal(size=(*shape, 3)).astype(np.float32)
    pooled = pool_cells(torch.from_numpy(cells), 2).numpy()
    assert pooled.shape == (math.ceil(shape[0] / 2) * math.ceil(shape[1] / 2), 3)
    np.testing.assert_allclose(pooled, _pool_reference(cells, 2), rtol=1e-6)


def test_stitch_puts_row_major_tiles_back_on_the_canvas_grid():
    rows, cols, g = 2, 3, 4
    grid = np.arange(rows * g * cols * g, dtype=np.float32).reshape(rows * g, cols * g, 1)
    tiles = np.stack(
        [grid[r * g : (r + 1) * g, c * g : (c + 1) * g].reshape(g * g, 1) for r in range(rows) for c in range(cols)]
    )
    assert np.array_equal(stitch(torch.from_numpy(tiles), (rows, cols)).numpy(), grid)


def _batch(spec, n: int, seed: int = 0) -> ModelBatch:
    rng = np.random.default_rng(seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(spec.path)
    texts = [f"the red box number {i} on the left" * (i % 3 + 1) for i in range(n)]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=spec.max_text_tokens, return_tensors="np")
    crops = rng.integers(0, 256, (n, spec.image_size, spec.image_size, 3), dtype=np.uint8)
    return ModelBatch(crops, enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64), None, (), ())


def test_scores_are_clips_own_cosine_similarity(tiny_clip):
    spec = read_spec(tiny_clip)
    batch = _batch(spec, 5)
    scores = GroundingModel.load(spec, "cpu", "float32", 8, 2).infer(batch).scores
    model = transformers.CLIPModel.from_pretrained(tiny_clip).eval()
    mean, std = np.array(spec.mean, np.float32), np.array(spec.std, np.float32)
    pixels = ((batch.crops.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(batch.input_ids),
            attention_mask=torch.from_numpy(batch.attention_mask),
            pixel_values=torch.from_numpy(np.ascontiguousarray(pixels)),
        )
        expected = (out.logits_per_image.diagonal() / model.logit_scale.exp()).numpy()
    assert scores.dtype == np.float32 and np.isfinite(scores).all() and (np.abs(scores) <= 1).all()
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_scores_are_deterministic_and_agree_across_batch_sizes(tiny_clip):
    spec = read_spec(tiny_clip)
    batch = _batch(spec, 11, seed=1)
    by8 = GroundingModel.load(spec, "cpu", "float32", 8, 2)
    one = GroundingModel.load(spec, "cpu", "float32", 1, 2).infer(batch).scores
    assert np.array_equal(by8.infer(batch).scores, by8.infer(batch).scores)
    # float GEMMs are not bit-identical across batch shapes (observed up to ~5e-7 on CPU)
    np.testing.assert_allclose(by8.infer(batch).scores, one, atol=1e-5)


def test_replay_features_are_pooled_penultimate_patch_tokens_of_the_stitched_tiles(tiny_clip_336):
    spec = read_spec(tiny_clip_336)
    rng = np.random.default_rng(2)
    tiles = rng.integers(0, 256, (6, 336, 336, 3), dtype=np.uint8)  # a 2 x 3 tile canvas: grid 48 x 72
    cuts = ((0, (20, 10, 27, 35)), (0, (0, 0, 1, 1)))
    base = _batch(spec, 2)
    batch = ModelBatch(base.crops, base.input_ids, base.attention_mask, tiles, ((2, 3),), cuts)
    features = GroundingModel.load(spec, "cpu", "float32", 4, 2).infer(batch).features
    assert [f.shape for f in features] == [(13 * 4, 32), (1, 32)] and features[0].dtype == np.float16
    model = transformers.CLIPModel.from_pretrained(tiny_clip_336).eval()
    mean, std = np.array(spec.mean, np.float32), np.array(spec.std, np.float32)
    pixels = np.ascontiguousarray(((tiles[0:1].astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2))
    with torch.no_grad():
        hidden = model.vision_model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True).hidden_states[-2]
    tile0 = hidden[0, 1:, :].reshape(24, 24, 32).numpy()  # canvas cells rows 0-23, columns 0-23
    np.testing.assert_allclose(features[1][0].astype(np.float32), tile0[0, 0], atol=2e-3)
    np.testing.assert_allclose(features[0][0].astype(np.float32), tile0[10:12, 20:22].mean(axis=(0, 1)), atol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype, atol", [("float32", 1e-4), ("float16", 1e-2), ("bfloat16", 3e-2)])
def test_cuda_scores_match_the_cpu_ones(tiny_clip, dtype, atol):
    spec = read_spec(tiny_clip)
    batch = _batch(spec, 9, seed=3)
    cpu = GroundingModel.load(spec, "cpu", "float32", 8, 2).infer(batch).scores
    cuda = GroundingModel.load(spec, "cuda", dtype, 8, 2).infer(batch).scores
    assert cuda.dtype == np.float32 and np.isfinite(cuda).all()
    np.testing.assert_allclose(cuda, cpu, atol=atol)
