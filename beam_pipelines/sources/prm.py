"""What the three process-supervision layouts share (VisualPRM400K's two forms and VisualProcessBench): the
question template of the conversation form, the subset named after the annotation file, the image-path rules of the
upstream archives, and the step-text column of their step tables."""

from __future__ import annotations

from beam_pipelines.records import Provenance, Sample

QUESTION_HEADER = "### Question:\n"
SOLUTION_HEADER = "\n\n### Solution Process:\n"
_QUESTION_MARK = "Question:\n\n"
DATASET_FOLDER = "VisualPRM400K"
IMAGES_FOLDER = "images/"


def original_question(prompt: str) -> str:
    """The question inside InternVL's rollout instruction (`...\\n\\nQuestion:\\n\\n{question}`), if wrapped."""
    body = prompt.split(_QUESTION_MARK)[-1] if _QUESTION_MARK in prompt else prompt
    return body.replace("<image>", "").strip()


def split_first_turn(first: str) -> tuple[str, str]:
    """(prompt, step 0) of `### Question:\n{q}\n\n### Solution Process:\n{step0}`; ("", first) without headers."""
    start = first.find(QUESTION_HEADER)
    if start < 0 or SOLUTION_HEADER not in first[start:]:
        return "", first
    prompt, step0 = first[start + len(QUESTION_HEADER) :].split(SOLUTION_HEADER, 1)
    return prompt, step0


def subset_of(provenance: Provenance) -> str:
    """The annotation file's name without directory, extension and the `_prm`/`_orm` suffix of the main version."""
    stem = (provenance.member or provenance.input_file).rsplit("/", 1)[-1].split(".", 1)[0]
    for suffix in ("_prm", "_orm"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def image_candidates(rel: str) -> list[tuple[str, str]]:
    """As written; then with a leading `VisualPRM400K…/` folder dropped, and with `images/` put in front (or taken
    off): the upstream archives unpack in different layouts."""
    out = [("as_written", rel)]
    head, _, rest = rel.partition("/")
    base = rel
    if head.startswith(DATASET_FOLDER) and rest:
        base = rest
        out.append(("strip_dataset_folder", rest))
    if base.startswith(IMAGES_FOLDER):
        out.append(("strip_images_prefix", base[len(IMAGES_FOLDER) :]))
    else:
        out.append(("add_images_prefix", IMAGES_FOLDER + base))
    return out


def step_chars(sample: Sample, index: int) -> int | None:
    """Characters of step `index` once stripped; None for a label without a step (another expectation's call)."""
    return len(sample.steps[index].text.strip()) if index < len(sample.steps) else None
