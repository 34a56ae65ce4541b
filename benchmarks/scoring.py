"""Scoring throughput: crops scored per second by a CLIP ViT-L/14@336-sized model, and the CPU preparation rate.

    python -m benchmarks.scoring [--quick] [--device cpu|cuda] [--batch_size N] [--dtypes float16,bfloat16] [--compile]

Model side: the pipeline's own `GroundingModel.infer` (uint8 crops and token ids in, normalisation on
the device, vision + text towers, cosine) over randomly initialised weights of the ViT-L/14@336 shape
(speed does not depend on the weights). Text is padded to 77 tokens, as in the pipeline.
CPU side: what `PrepareRegions` does per region on one core, letterbox crop + bicubic resize to a
336×336 uint8 tensor, timed with and without the JPEG decode (in the pipeline the image is decoded
once, for cropping, before scoring sees it). cores_to_feed = model crops/s ÷ prep crops/s per core.
Work per crop: the floating-point operations of one scoring call, counted by torch's FlopCounterMode
(eager attention, so the attention products are counted too), which turns every rate into TFLOP/s and
the 800 crops/s target into the share of an H100 SXM's dense 16-bit peak it needs.
Results: benchmarks/results/scoring-<device>.json, with the machine, and a printed table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from beam_pipelines.scoring.prepare import letterbox
from beam_pipelines.scoring.spec import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ModelSpec

RESULTS = Path(__file__).parent / "results"
VIT_L_14_336 = {
    "vision_config": {
        "image_size": 336,
        "patch_size": 14,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
    },
    "text_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
    },
    "projection_dim": 768,
}
SPEC = ModelSpec("random-vit-l-14-336", 336, 14, 1024, 77, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
TARGET_CROPS_PER_S = 800
H100_SXM_DENSE_16BIT_TFLOPS = 989.4  # NVIDIA H100 SXM datasheet: BF16/FP16 Tensor Core, without sparsity


def machine() -> dict:
    import torch
    import transformers

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    info = {
        "cpu": cpu,
        "cores_visible": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _model(device: str, dtype: str, batch_size: int, attention: str = "sdpa"):
    """The pipeline's GroundingModel over random weights of the ViT-L/14@336 shape."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from beam_pipelines.scoring.model import GroundingModel

    torch.manual_seed(0)
    config = CLIPConfig(**VIT_L_14_336)
    config._attn_implementation = attention
    return GroundingModel(CLIPModel(config), SPEC, device, dtype, batch_size, 2)


def _batch(batch_size: int):
    from beam_pipelines.scoring.batch import ModelBatch

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (batch_size, 336, 336, 3), dtype=np.uint8)
    ids = rng.integers(0, 49406, (batch_size, 77), dtype=np.int64)
    ids[:, 0], ids[:, 30:] = 49406, 49407  # start token, ~30-token contexts, end/padding
    mask = (np.arange(77)[None, :] <= 30).astype(np.int64).repeat(batch_size, 0)
    return ModelBatch(crops, ids, mask, None, (), ())


def flops_per_crop(device: str) -> float:
    """Floating-point operations of scoring one crop against its text (both towers), counted, not estimated."""
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(device, "float32", 1, attention="eager")  # SDPA kernels are not all counted
    with FlopCounterMode(display=False) as counter:
        model.infer(_batch(1))
    return float(counter.get_total_flops())


def model_rate(device: str, dtype: str, batch_size: int, warmup: int, batches: int, compiled: bool = False) -> dict:
    """Crops/s of the full scoring call (both towers) at one batch size and dtype; `compiled`: both towers
    through torch.compile (the warm-up pays the compilation), to see what fusing the elementwise ops gives."""
    import torch

    model = _model(device, dtype, batch_size)
    if compiled:
        model.model.vision_model.compile(dynamic=False)
        model.model.text_model.compile(dynamic=False)
    batch = _batch(batch_size)
    for _ in range(warmup):
        model.infer(batch)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        model.infer(batch)  # returns host arrays: includes the device sync and the copy back
    elapsed = time.perf_counter() - start
    return {
        "device": device,
        "dtype": dtype,
        "compiled": compiled,
        "batch_size": batch_size,
        "batches": batches,
        "seconds": round(elapsed, 3),
        "crops_per_s": round(batches * batch_size / elapsed, 2),
    }


def _test_image(rng: np.random.Generator, size: tuple[int, int]) -> bytes:
    """A JPEG with smooth structure plus noise (compresses like a photo, not like flat colour)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 255 // (w + h))], axis=-1)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def prep_rate(images: int, regions_per_image: int, size: tuple[int, int]) -> dict:
    """Per core (this process, one thread): regions/s for crop+resize, and for decode+crop+resize."""
    rng = np.random.default_rng(1)
    encoded = [_test_image(rng, size) for _ in range(images)]
    w, h = size
    boxes = []
    for _ in range(regions_per_image):
        x1, y1 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        boxes.append((x1, y1, x1 + int(rng.integers(40, w // 2)), y1 + int(rng.integers(40, h // 2))))
    start = time.perf_counter()
    decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in encoded]
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    for image in decoded:
        for box in boxes:
            letterbox(image, box, SPEC.image_size, SPEC.fill)
    crop_s = time.perf_counter() - start
    n = images * regions_per_image
    return {
        "image_size": list(size),
        "images": images,
        "regions_per_image": regions_per_image,
        "crop_resize_per_s_per_core": round(n / crop_s, 1),
        "decode_crop_resize_per_s_per_core": round(n / (crop_s + decode_s), 1),
    }


def table(results: dict) -> str:
    lines = [f"{'device':8} {'dtype':9} {'compiled':8} {'batch':>5} {'crops/s':>10} {'TFLOP/s':>8}"]
    for r in results["model"]:
        lines.append(
            f"{r['device']:8} {r['dtype']:9} {'yes' if r['compiled'] else 'no':8} {r['batch_size']:>5} "
            f"{r['crops_per_s']:>10.2f} {r['tflops']:>8.2f}"
        )
    p = results["prep"]
    lines.append(
        f"CPU prep per core ({p['image_size'][0]}x{p['image_size'][1]} JPEG, {p['regions_per_image']} regions/image): "
        f"{p['crop_resize_per_s_per_core']} crops/s crop+resize, {p['decode_crop_resize_per_s_per_core']} with decode"
    )
    for r in results["model"]:
        lines.append(
            f"cores to feed {r['device']} {r['dtype']}{' compiled' if r['compiled'] else ''}: {r['cores_to_feed']}"
        )
    w = results["work"]
    lines.append(
        f"work: {w['gflop_per_crop']} GFLOP per crop; the {TARGET_CROPS_PER_S} crops/s target is {w['target_tflops']} "
        f"TFLOP/s, {w['target_share_of_h100_sxm_peak']:.0%} of an H100 SXM's dense 16-bit peak"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="a handful of batches (ViT-L on a few CPU cores is slow)")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 64 on cuda, 8 on cpu (4 with --quick)")
    parser.add_argument("--dtypes", default=None, help="default: float32 on cpu, bfloat16,float16 on cuda")
    parser.add_argument("--compile", action="store_true", help="also measure each dtype with torch.compile'd towers")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    cuda = args.device == "cuda"
    batch_size = args.batch_size or (64 if cuda else 4 if args.quick else 8)
    dtypes = (args.dtypes or ("bfloat16,float16" if cuda else "float32")).split(",")
    warmup, batches = (1, 2) if args.quick else (3, 20 if cuda else 5)
    prep = prep_rate(images=8 if args.quick else 40, regions_per_image=3, size=(1024, 768))
    model = [
        model_rate(args.device, d, batch_size, warmup, batches, compiled)
        for d in dtypes
        for compiled in ((False, True) if args.compile else (False,))
    ]
    flops = flops_per_crop(args.device)
    for r in model:
        r["cores_to_feed"] = round(r["crops_per_s"] / prep["decode_crop_resize_per_s_per_core"], 2)
        r["tflops"] = round(r["crops_per_s"] * flops / 1e12, 3)
    target_tflops = TARGET_CROPS_PER_S * flops / 1e12
    results = {
        "benchmark": "scoring",
        "model": model,
        "prep": prep,
        "work": {
            "gflop_per_crop": round(flops / 1e9, 1),
            "target_tflops": round(target_tflops, 1),
            "target_share_of_h100_sxm_peak": round(target_tflops / H100_SXM_DENSE_16BIT_TFLOPS, 3),
        },
        "machine": machine(),
        "quick": args.quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": "≥800 crops/s on one H100 (ViT-L/14@336, bfloat16/float16)",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scoring-{args.device}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
