"""The bundled demo dataset, in the exact upstream formats and layouts.

    <root>/llava_next_raw_format/{chartqa/train/png,docvqa/images,coco/train2017,ai2d/abc_images}/…
    <root>/VGR/data/vgr_shortcot.parquet          VGR-SFT rows (clean and realistically dirty)
    <root>/VGR/data/vgr_extra.jsonl               the same layout as JSONL, with deliberately bad lines
    <root>/VisualPRM400K-v1.1/annotations.zip     `<source>_prm.jsonl` conversation form
    <root>/VisualPRM400K-v1.1/images/<Source>/…
    <root>/VisualPRM400K-v1.1-Raw/annotations.zip `<source>.jsonl` with steps_with_score
    <root>/VisualPRM400K-v1.1-Raw/images.zip      images/<Source>/… (read in place)
    <root>/VisualProcessBench/test.jsonl, images/<data_source>/…

Boxes in the VGR rows surround what the reasoning talks about (bars, titles, shapes).
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from beam_pipelines.demo import images as draw

PRM_SYSTEM_PROMPT = (
    "You are an advanced AI assistant, designed to serve as a process supervision model. In this task, I will "
    "provide a problem statement followed by the first step of the solution process. For each subsequent turn, "
    "I will give you a new step in the solution. Your role is to assess whether the solution process is correct "
    "up to the current step."
)
INSTRUCTION = (
    "Your task is to answer the question below. Give step by step reasoning before you answer, and when you're "
    'ready to answer, please use the format "Final answer: .."\n\nQuestion:\n\n'
)


@dataclass(frozen=True)
class DemoRun:
    """The `vgr-etl run` arguments for one source of the demo data."""

    source: str
    inputs: tuple[str, ...]
    image_root: str

    def argv(self, output: str) -> list[str]:
        args = ["--source", self.source]
        for pattern in self.inputs:
            args += ["--input", pattern]
        return [*args, "--image_root", self.image_root, "--output", output]


def _save(img: Image.Image, path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if path.suffix == ".jpg" else "PNG", quality=90)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _norm(box: tuple[int, int, int, int], w: int, h: int) -> str:
    x1, y1, x2, y2 = box
    return f"[{x1 / w:.3f}, {y1 / h:.3f}, {min(x2 / w, 1):.3f}, {min(y2 / h, 1):.3f}]"


def _vgr_row(rng: random.Random, i: int, root: Path) -> dict:
    kind = ("chart", "doc", "scene", "diagram")[i % 4]
    if kind == "chart":
        rel, (img, objs) = f"chartqa/train/png/demo_{i:05d}.png", draw.chart(rng)
        a, b = rng.sample(objs, 2)
        q = f"What is the difference in economic trade impact between {a[0]} and {b[0]}?"
        w, h = img.size
        text = (
            f"<think> We compare two bars. For {a[0]} <SOT>{_norm(a[2], w, h)}<EOT><image> the value is {a[1]} "
            f"million US dollars, and for {b[0]} <SOT>{_norm(b[2], w, h)}<EOT><image> it is {b[1]}. "
            f"The difference is {int(a[1]) - int(b[1])}. </think> Final answer: {int(a[1]) - int(b[1])}"
        )
    elif kind == "doc":
        rel, (img, objs) = f"docvqa/images/demo_{i:05d}.png", draw.document(rng)
        w, h = img.size
        q = "What is the total amount on the invoice?"
        text = (
            f"<think> The document title <SOT>{_norm(objs[0][2], w, h)}<EOT><image> says {objs[0][1]}. "
            f"The total line <SOT>{_norm(objs[1][2], w, h)}<EOT><image> reads {objs[1][1]}. </think> "
            f"Final answer: {objs[1][1].split('$')[1]}"
        )
    else:
        folder = "coco/train2017" if kind == "scene" else "ai2d/abc_images"
        ext = "jpg" if kind == "scene" else "png"
        rel, (img, objs) = f"{folder}/{i:012d}.{ext}", draw.scene(rng)
        w, h = img.size
        shape, colour, box = rng.choice(objs)
        q = f"What color is the {shape}?"
        text = (
            f"<think> The {shape} <SOT>{_norm(box, w, h)}<EOT><image> is filled with {colour}. </think> "
            f"Final answer: {colour}"
        )
    _save(img, root / "llava_next_raw_format" / rel)
    return {
        "image": rel,
        "conversations": [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": text}],
    }


def _dirty_but_valid(row: dict) -> list[dict]:
    """The dirt real files carry, all of which must be accepted (with counted warnings)."""
    text = row["conversations"][1]["value"]
    lower = text.replace("<SOT>", "<sot>").replace("<EOT>", "<eot>")
    spaced = text.replace("<SOT>[", "<SOT>  [ ").replace("]<EOT>", " ] <EOT> ")
    orphan = text.replace("</think>", "<SOT> see above </think> stray <image> marker")
    variants = [lower, spaced, orphan]
    return [
        {"image": [row["image"]], "conversations": [row["conversations"][0], {"from": "gpt", "value": v}]}
        for v in variants
    ]


def _bad_vgr_lines(good: dict) -> list[bytes]:
    """Deliberately bad records, one per kind of dirt the pipeline must reject with a reason."""
    human = good["conversations"][0]

    def row(image: str, gpt: str) -> bytes:
        return json.dumps({"image": image, "conversations": [human, {"from": "gpt", "value": gpt}]}).encode()

    return [
        b'{"image": "coco/train2017/x.jpg", "conversations": [',  # malformed JSON
        b'{"image": "coco/train2017/\xff\xfe.jpg", "conversations": []}',  # not UTF-8
        row(good["image"], "<think> The bar <SOT>[42, 81, 442, 219]<EOT><image> is tall. </think> Final answer: 3"),
        row("coco/train2017/missing.jpg", "<think> <SOT>[0.1, 0.1, 0.5, 0.5]<EOT> </think> Final answer: x"),
        row(good["image"], "<think> <SOT>[0.6, 0.2, 0.3, 0.5]<EOT><image> </think> Final answer: x"),
        row("../../etc/passwd", "<think> <SOT>[0.1, 0.1, 0.5, 0.5]<EOT> </think> Final answer: x"),
        json.dumps({"image": good["image"]}).encode(),  # missing conversations
    ]


def _prm_steps(rng: random.Random) -> tuple[str, list[dict]]:
    a, b = rng.randint(20, 80), rng.randint(20, 80)
    texts = [
        "To find the missing angle we use that the angles of a triangle sum to 180 degrees.",
        f"Step 1: The two known angles are {a} and {b} degrees.",
        f"Step 2: So the third angle is 180 - {a} - {b} = {180 - a - b}.",
        f"Final answer: {180 - a - b}",
    ]
    wrong = rng.random() < 0.4
    steps = []
    zero_seen = False
    for i, t in enumerate(texts):
        correct = 0 if zero_seen else (rng.randint(9, 16) if not (wrong and i >= 2) else 0)
        total = 0 if zero_seen else 16
        steps.append(
            {"step": t, "score": correct / 16 if total else 0.0, "num_mc_correct": correct, "num_mc_total": total}
        )
        zero_seen = zero_seen or correct == 0
    return f"Find the third angle of the triangle if two angles are {a} and {b} degrees.", steps


def _write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def generate(root: str | Path, n_vgr: int = 80, n_prm: int = 30, seed: int = 0) -> dict[str, DemoRun]:
    """Write the demo dataset under `root`; return the run arguments per source."""
    root = Path(root)
    rng = random.Random(seed)

    rows = [_vgr_row(rng, i, root) for i in range(n_vgr)]
    vgr_dir = root / "VGR" / "data"
    vgr_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), vgr_dir / "vgr_shortcot.parquet", row_group_size=32)
    extra = [json.dumps(r).encode() for r in _dirty_but_valid(rows[0])]
    extra.append(json.dumps(rows[1]).encode())  # an exact duplicate of a parquet row
    extra.extend(_bad_vgr_lines(rows[0]))
    (vgr_dir / "vgr_extra.jsonl").write_bytes(b"\n".join(extra) + b"\n")

    prm_root, raw_root, vpb_root = (
        root / "VisualPRM400K-v1.1",
        root / "VisualPRM400K-v1.1-Raw",
        root / "VisualProcessBench",
    )
    conv, raw, vpb, raw_images = [], [], [], {}
    for i in range(n_prm):
        question, steps = _prm_steps(rng)
        img, _ = draw.diagram(rng)
        rel = f"Geometry3K/train/{i}/img_diagram.png"
        _save(img, prm_root / "images" / rel)
        raw_images[f"images/{rel}"] = (prm_root / "images" / rel).read_bytes()
        prompt = f"<image>\n{INSTRUCTION}{question}"
        turns = [{"from": "system", "value": PRM_SYSTEM_PROMPT}]
        for k, s in enumerate(steps):
            value = f"### Question:\n{prompt}\n\n### Solution Process:\n{s['step']}" if k == 0 else s["step"]
            turns += [{"from": "human", "value": value}, {"from": "gpt", "value": "+" if s["score"] > 0 else "-"}]
        conv.append({"id": -1, "image": rel, "conversations": turns})
        raw.append(
            {
                "image": f"VisualPRM400K-v1.1-Raw/{rel}",
                "question": prompt,
                "question_orig": question,
                "answer": steps[-1]["step"].split(": ")[1],
                "response": "\n\n".join(s["step"] for s in steps),
                "num_mc_sequences": 16,
                "steps_with_score": steps,
            }
        )
        vpb_rel = f"images/DynaMath/{i}.png"
        _save(img, vpb_root / vpb_rel)
        vpb.append(
            {
                "image": [vpb_rel],
                "question": question,
                "answer": steps[-1]["step"].split(": ")[1],
                "response": {
                    "steps": [s["step"] for s in steps],
                    "process_correctness": [1 if s["score"] > 0 else (-1 if s["num_mc_total"] else 0) for s in steps],
                },
                "policy_model": "demo_policy",
                "data_source": "DynaMath",
            }
        )
    bad_conv = dict(conv[0], conversations=[*conv[0]["conversations"][:-1], {"from": "gpt", "value": "maybe"}])
    bad_raw = dict(raw[0], steps_with_score=[dict(raw[0]["steps_with_score"][0], score="high")])
    bad_vpb = dict(vpb[0], response={"steps": ["one", "two"], "process_correctness": [1]})
    _write_zip(prm_root / "annotations.zip", {"geometry3k_demo_prm.jsonl": _jsonl([*conv, bad_conv])})
    _write_zip(raw_root / "annotations.zip", {"geometry3k_demo.jsonl": _jsonl([*raw, bad_raw])})
    _write_zip(raw_root / "images.zip", raw_images)
    vpb_root.mkdir(parents=True, exist_ok=True)
    (vpb_root / "test.jsonl").write_bytes(_jsonl([*vpb, bad_vpb]))

    return {
        "vgr": DemoRun(
            "vgr", (str(vgr_dir / "*.parquet"), str(vgr_dir / "*.jsonl")), str(root / "llava_next_raw_format")
        ),
        "visualprm": DemoRun("visualprm", (str(prm_root / "annotations.zip"),), str(prm_root)),
        "visualprm_raw": DemoRun("visualprm_raw", (str(raw_root / "annotations.zip"),), str(raw_root / "images.zip")),
        "visualprocessbench": DemoRun("visualprocessbench", (str(vpb_root / "test.jsonl"),), str(vpb_root)),
    }
