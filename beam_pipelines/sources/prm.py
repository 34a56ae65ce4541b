"""What the three process-supervision layouts share (VisualPRM400K's two forms and VisualProcessBench): the
question template of the conversation form, the subset named after the annotation file, the image-path rules of the
upstream archives, and the step-text column of their step tables."""

from __future__ import annotations

from typing import Any

from beam_pipelines.records import Provenance, Sample

QUESTION_HEADER = "### Question:\n"
SOLUTION_HEADER = "\n\n### Solution Process:\n"
_QUESTION_MARK = "Question:\n\n"
DATASET_FOLDER = "VisualPRM400K"
IMAGES_FOLDER = "images/"
IMAGE_ROOT_HINT = "point it at the folder that holds the release's images/ folder, or at its images.zip"


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


def conversation(system: str, first: str, steps: tuple[str, ...], placeholder: str) -> list[tuple[str, str]]:
    """A process-reward conversation: the system prompt, the first turn (question and step 0), each later step a
    user turn of its own, and after each a label placeholder."""
    turns = [("system", system), ("user", first), ("assistant", placeholder)]
    for step in steps:
        turns += [("user", step), ("assistant", placeholder)]
    return turns


def from_template(sample: Sample, question: str, template: Any) -> list[tuple[str, str]] | None:
    """The conversation the template lays out for a question and the sample's steps."""
    if not sample.steps:
        return None
    later = tuple(template.later(s.text) for s in sample.steps[1:])
    return conversation(template.system, template.first(question, sample.steps[0].text), later, template.positive)


def step_chars(sample: Sample, index: int) -> int | None:
    """Characters of step `index` once stripped; None for a label without a step (another expectation's call)."""
    return len(sample.steps[index].text.strip()) if index < len(sample.steps) else None
