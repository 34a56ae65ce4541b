"""Upstream records in each dataset's layout, as small builders the tests vary, and a provenance to parse them at."""

from __future__ import annotations

from beam_pipelines.records import Provenance

PROV = Provenance("/data/geometry3k_en_20240402_extracted_prm.jsonl", 3, "c-00000")


def vgr_row(
    gpt="<think> a <SOT>[0.1, 0.2, 0.3, 0.4]<EOT><image> b </think> Final answer: 305", image="ai2d/abc_images/311.png"
):
    return {
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": gpt}],
    }


def conv_row(labels=("+", "-"), first=None):
    turns = [{"from": "system", "value": "You are a PRM."}]
    first = first or "### Question:\n<image>\nYour task...\n\nQuestion:\n\nFind m.\n\n### Solution Process:\nStep zero."
    for i, label in enumerate(labels):
        turns += [{"from": "human", "value": first if i == 0 else f"Step {i}."}, {"from": "gpt", "value": label}]
    return {"id": -1, "image": "Geometry3K/train/1/img.png", "conversations": turns}


def raw_row(steps=None):
    steps = steps or [
        {"step": "a", "score": 0.5, "num_mc_correct": 8, "num_mc_total": 16},
        {"step": "b", "score": 0.0, "num_mc_correct": 0, "num_mc_total": 16},
        {"step": "Final answer: 3", "score": 0.0, "num_mc_correct": 0, "num_mc_total": 0},
    ]
    return {
        "image": "VisualPRM400K-v1.1-Raw/Geometry3K/train/1/img.png",
        "question": "<image>\nQ",
        "question_orig": "Q",
        "answer": 3,
        "response": "a\n\nb",
        "num_mc_sequences": 16,
        "steps_with_score": steps,
    }


def vpb_row(steps=("a", "b", "c"), labels=(1, 0, -1)):
    return {
        "image": ["images/DynaMath/1.png"],
        "question": "Q <image1>",
        "answer": "5",
        "response": {"steps": list(steps), "process_correctness": list(labels)},
        "policy_model": "lmdeploy_internvl",
        "data_source": "DynaMath",
    }
