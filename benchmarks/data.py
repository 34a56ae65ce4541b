"""A benchmark dataset in the upstream layouts, with a realistic mix of image kinds and sizes.

Photos are JPEGs around 640×480 with camera-like texture (so they compress and decode like COCO/GQA
photos, not like flat synthetic shapes), charts are PNGs around 800×600, documents PNGs around
1700×2200, and a few photos are larger (2048×1536). VGR rows (`vgr_bench.parquet`) carry about two
regions each; PRM rows (`visualprm_raw` JSONL) point at the same image pool. `scale` repeats the records
(with distinct text, so they are not duplicates) over the same images: the 10× memory probe.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageFilter

from beam_pipelines.demo.images import chart, document

KINDS = (("photo", 0.55), ("chart", 0.25), ("document", 0.15), ("large", 0.05))


@dataclass(frozen=True)
class BenchData:
    root: Path
    vgr_input: str
    prm_input: str
    image_root: str
    n_vgr: int
    n_prm: int
    images: int

    def argv(self, source: str, output: str) -> list[str]:
        pattern = self.vgr_input if source == "vgr" else self.prm_input
        return ["--source", source, "--input", pattern, "--image_root", self.image_root, "--output", output]


def photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth colour fields plus sensor-like noise: JPEG size and decode cost close to a real photo."""
    small = rng.integers(0, 255, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    base = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 18, (height, width, 3))
    arr = np.clip(np.asarray(base, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.SMOOTH)


def _image(kind: str, i: int, rng: np.random.Generator, prng: random.Random) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if kind in ("photo", "large"):
        size = (640, 480) if kind == "photo" else (2048, 1536)
        photo(rng, *size).save(buf, format="JPEG", quality=90)
        return buf.getvalue(), "jpg"
    img = chart(prng, 800, 600)[0] if kind == "chart" else document(prng, 1700, 2200)[0]
    img.save(buf, format="PNG")
    return buf.getvalue(), "png"


def _boxes(prng: random.Random, n: int) -> list[list[float]]:
    out = []
    for _ in range(n):
        w, h = prng.uniform(0.08, 0.5), prng.uniform(0.08, 0.5)
        x, y = prng.uniform(0, 1 - w), prng.uniform(0, 1 - h)
        out.append([round(x, 3), round(y, 3), round(x + w, 3), round(y + h, 3)])
    return out


def _vgr_row(prng: random.Random, image: str, i: int) -> dict:
    boxes = _boxes(prng, prng.choice((1, 2, 2, 2, 3)))
    parts = [f"Step {j}: the region <SOT>{json.dumps(b)}<EOT><image> shows item {i}-{j}." for j, b in enumerate(boxes)]
    gpt = "<think> " + " ".join(parts) + f" </think> Final answer: {i % 97}"
    return {
        "image": image,
        "conversations": [
            {"from": "human", "value": f"<image>\nQuestion {i}: what does the figure show?"},
            {"from": "gpt", "value": gpt},
        ],
    }


def _prm_row(prng: random.Random, image: str, i: int) -> dict:
    n = prng.randint(2, 8)
    steps, stopped = [], False
    for j in range(n):
        correct = 0 if stopped else prng.randint(0, 16)
        total = 0 if stopped else 16
        steps.append(
            {
                "step": f"Step {j} of solution {i}.",
                "score": correct / 16 if total else 0.0,
                "num_mc_correct": correct,
                "num_mc_total": total,
            }
        )
        stopped = stopped or correct == 0
    return {
        "image": image,
        "question": f"<image>\nYour task is to answer.\n\nQuestion:\n\nProblem {i}?",
        "question_orig": f"Problem {i}?",
        "answer": str(i % 10),
        "response": "\n\n".join(s["step"] for s in steps),
        "num_mc_sequences": 16,
        "steps_with_score": steps,
    }


def generate(root: str | Path, n_vgr: int, n_prm: int, scale: int = 1, seed: int = 0) -> BenchData:
    """Images once (reused if present), records `scale` times over them."""
    root = Path(root)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng, prng = np.random.default_rng(seed), random.Random(seed)
    n_images = max(n_vgr, n_prm)
    kinds = [k for k, share in KINDS for _ in range(round(share * 1000))]
    names = []
    for i in range(n_images):
        kind = kinds[prng.randrange(len(kinds))]
        stem = f"{kind}/{i:06d}"
        existing = list(images_dir.glob(f"{stem}.*"))
        if existing:
            names.append(str(existing[0].relative_to(images_dir)))
            continue
        data, ext = _image(kind, i, rng, prng)
        path = images_dir / f"{stem}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        names.append(f"{stem}.{ext}")
    data_dir = root / f"records_x{scale}"
    data_dir.mkdir(exist_ok=True)
    vgr_rows = [_vgr_row(prng, names[i % n_images], r * n_vgr + i) for r in range(scale) for i in range(n_vgr)]
    pq.write_table(pa.Table.from_pylist(vgr_rows), data_dir / "vgr_bench.parquet", row_group_size=1000)
    prm_rows = [_prm_row(prng, names[i % n_images], r * n_prm + i) for r in range(scale) for i in range(n_prm)]
    (data_dir / "prm_bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in prm_rows))
    return BenchData(
        root=root,
        vgr_input=str(data_dir / "vgr_bench.parquet"),
        prm_input=str(data_dir / "prm_bench.jsonl"),
        image_root=str(images_dir),
        n_vgr=len(vgr_rows),
        n_prm=len(prm_rows),
        images=n_images,
    )
