"""Annotation-model throughput: PRM samples and VGR region prompts scored per second by an 8B-class VLM.

    python -m benchmarks.annotation [--quick] [--device cpu|cuda] [--batch_size N] [--dtype bfloat16]

The model is built from a published configuration's shape with random weights (nothing is downloaded; speed does
not depend on the weights): InternVL (InternViT-300M, 448 px tiles, pixel shuffle to 256 tokens a tile) with a
Qwen2-7B text model, about 8B parameters. A PRM sample is a 7-tile image (1,792 image tokens) and about 500 text
tokens with ten label positions; a VGR region prompt one tile (256 image tokens) and about 100 text tokens. Both
go through the pipeline's own `AnnotationModel.score` (batching, padding, the two-label softmax at each position).
Work per sample is counted by torch's FlopCounterMode on one forward pass, which turns the rates into TFLOP/s and
into a share of the device's dense 16-bit peak (H100/H200: 989 TFLOP/s). `--quick` runs a tiny model of the same
family on the CPU. Results: benchmarks/results/annotation-<device>.json and a printed table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from beam_pipelines.annotation.encode import Sequence

RESULTS = Path(__file__).parent / "results"
DENSE_BF16_TFLOPS = 989.4  # NVIDIA H100/H200 SXM: BF16 Tensor Core, without sparsity
TARGET_PRM_SAMPLES_PER_S = 10
TARGET_REGIONS_PER_S = 70
EIGHT_B = {
    "vision": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": [448, 448],
        "patch_size": [14, 14],
    },
    "text": {
        "vocab_size": 151674,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 32768,
    },
    "tile": 448,
    "tokens_per_tile": 256,
    "prm": {"tiles": 7, "text_tokens": 500, "steps": 10},
    "region": {"tiles": 1, "text_tokens": 100},
}
TINY = {
    "vision": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": [28, 28],
        "patch_size": [14, 14],
    },
    "text": {
        "vocab_size": 1000,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    },
    "tile": 28,
    "tokens_per_tile": 1,
    "prm": {"tiles": 7, "text_tokens": 500, "steps": 10},
    "region": {"tiles": 1, "text_tokens": 100},
}
IMAGE_TOKEN = 7  # an id of the random vocabulary reserved for image tokens
PLUS, MINUS = 11, 12


def build(shape: dict, device: str, dtype: str):
    import torch
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLVisionConfig, Qwen2Config

    from beam_pipelines.annotation.model import DTYPES, AnnotationModel

    config = InternVLConfig(
        vision_config=InternVLVisionConfig(**shape["vision"]),
        text_config=Qwen2Config(**shape["text"]),
        image_token_id=IMAGE_TOKEN,
        downsample_ratio=0.5,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = InternVLForConditionalGeneration(config).to(DTYPES[dtype])
    return AnnotationModel(model, device, dtype, 1, pad_id=0), sum(p.numel() for p in model.parameters())


def sequence(shape: dict, kind: str, rng: np.random.Generator) -> Sequence:
    """Random token ids with the image tokens of `tiles` tiles in front, and the scored positions."""
    spec = shape[kind]
    image = shape["tokens_per_tile"] * spec["tiles"]
    vocab = shape["text"]["vocab_size"]
    text = rng.integers(20, vocab, spec["text_tokens"])
    ids = np.concatenate([[1], np.full(image, IMAGE_TOKEN), text]).astype(np.int64)
    steps = spec.get("steps", 1)
    positions = tuple(int(p) for p in np.linspace(image + 20, len(ids) - 1, steps).astype(int))
    for p in positions:
        ids[p] = PLUS
    pixels = rng.standard_normal((spec["tiles"], 3, shape["tile"], shape["tile"])).astype(np.float32)
    inputs = {"input_ids": ids[None], "attention_mask": np.ones((1, len(ids)), np.int64), "pixel_values": pixels}
    return Sequence(inputs, positions, (PLUS, MINUS))


def flops(model, seq: Sequence) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.model(**model._batch([seq]))
    return float(counter.get_total_flops())


def rate(model, sequences: list[Sequence], batch_size: int, warmup: int, batches: int) -> dict:
    import torch

    model.batch_size = batch_size
    for _ in range(warmup):
        model.score(sequences[:batch_size])
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for i in range(batches):
        model.score(sequences[(i * batch_size) % len(sequences) :][:batch_size] or sequences[:batch_size])
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    n = batches * batch_size
    return {"sequences": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="a tiny model of the same family (CPU smoke run)")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 8 on cuda, 2 on cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per kind (default 20, 3 quick)")
    args = parser.parse_args(argv)
    import torch

    shape = TINY if args.quick else EIGHT_B
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    batch_size = args.batch_size or (8 if args.device == "cuda" else 2)
    batches = args.batches or (3 if args.quick else 20)
    model, parameters = build(shape, args.device, dtype)
    rng = np.random.default_rng(0)
    results = {
        "machine": {
            "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "date": datetime.now(UTC).isoformat(),
        "model": "tiny InternVL" if args.quick else "InternVL (InternViT-300M + Qwen2-7B shape), random weights",
        "parameters": parameters,
        "dtype": dtype,
        "batch_size": batch_size,
    }
    for kind, target in (("prm", TARGET_PRM_SAMPLES_PER_S), ("region", TARGET_REGIONS_PER_S)):
        sequences = [sequence(shape, kind, rng) for _ in range(batch_size * 2)]
        measured = rate(model, sequences, batch_size, warmup=1, batches=batches)
        work = flops(model, sequences[0])
        tflops = measured["per_s"] * work / 1e12
        results[kind] = {
            **measured,
            "tokens_per_sequence": sequences[0].length,
            "tokens_per_s": round(measured["per_s"] * sequences[0].length, 1),
            "tflop_per_sequence": round(work / 1e12, 3),
            "tflop_per_s": round(tflops, 3),
            "share_of_dense_bf16_peak": round(tflops / DENSE_BF16_TFLOPS, 4),
            "target_per_s": target,
        }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"annotation-{args.device}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for kind in ("prm", "region"):
        r = results[kind]
        print(
            f"{kind:>6}: {r['per_s']:9.3f}/s  {r['tokens_per_s']:10.1f} tokens/s  {r['tflop_per_sequence']:.3f} "
            f"TFLOP each  {r['tflop_per_s']:8.3f} TFLOP/s  {r['share_of_dense_bf16_peak']:.2%} of peak  "
            f"(target {r['target_per_s']}/s on an H100-class GPU)"
        )
    print(f"written to {out}")
    return results


if __name__ == "__main__":
    main()
