"""CPU side of annotation: each sample's prompts rendered with the model's chat template and encoded with its
processor, and the token positions whose prediction is scored.

A PRM sample is one sequence (the whole conversation, one forward pass): its label placeholders are found from the
rendered template, never by searching for the label token (a `+` inside a step is text). Each assistant turn's
position is the length of the conversation up to it, rendered with the generation prompt; the image tokens the
processor inserts all come before the first assistant turn, so one offset maps every text position to the
processor's input. A VGR region is one sequence of its own: its crop and the verification question, scored at the
answer's position.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from beam_pipelines.annotation.spec import TOKENIZER_FILES
from beam_pipelines.annotation.templates import PrmTemplate, VerifyTemplate
from beam_pipelines.records import RejectedError
from beam_pipelines.scoring.spec import local_copy

STAGE = "annotate"
IMAGE_TEXT = "<image>"
"""How upstream texts mark the image (VisualPRM400K's first turn): removed, the image is given as content."""
Turn = tuple[str, str]  # (role, text): system, user or assistant


@dataclass(frozen=True)
class Sequence:
    """One forward pass's inputs (a batch of one), the positions of the tokens whose prediction is scored (the
    logits at position p - 1 predict token p), and the (positive, negative) token ids compared there."""

    inputs: dict[str, np.ndarray]
    positions: tuple[int, ...]
    pair: tuple[int, int]

    @property
    def length(self) -> int:
        return int(self.inputs["input_ids"].shape[-1])


class Encoder:
    """A model's chat template and input encoding: its processor, or, for a model whose processor cannot be built
    without torchvision (InternVL: its video processor), the image processor and tokenizer it is made of."""

    def __init__(self, path: str, model_type: str):
        from transformers import AutoProcessor

        self.local = local_copy(path, TOKENIZER_FILES)
        try:
            self.processor = AutoProcessor.from_pretrained(self.local, local_files_only=True)
            self.tokenizer = self.processor.tokenizer
            self._expand = None
        except (AttributeError, ImportError, OSError, ValueError, TypeError) as exc:
            if model_type != "internvl":
                raise ValueError(f"the model's processor cannot be loaded here: {exc}") from exc
            self._internvl()

    def _internvl(self) -> None:
        """InternVL's processor, as its image processor and tokenizer: each image's context token becomes
        `<img>` + one context token per image token of each tile + `</img>`."""
        from transformers import AutoImageProcessor, AutoTokenizer

        self.processor = None
        self.image_processor = AutoImageProcessor.from_pretrained(self.local, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(self.local, local_files_only=True)
        with open(os.path.join(self.local, "config.json")) as f:
            config = json.load(f)
        vision = config.get("vision_config", {})
        size = vision.get("image_size", [448, 448])
        patch = vision.get("patch_size", [14, 14])
        side = (size[0] if isinstance(size, list) else size) // (patch[0] if isinstance(patch, list) else patch)
        self.image_seq_length = int(side * side * config.get("downsample_ratio", 0.5) ** 2)
        self.context_token = getattr(self.tokenizer, "context_image_token", None) or "<IMG_CONTEXT>"
        self.start_token = getattr(self.tokenizer, "start_image_token", None) or "<img>"
        self.end_token = getattr(self.tokenizer, "end_image_token", None) or "</img>"
        self._expand = self._internvl_inputs

    def _internvl_inputs(self, text: str, image: Any) -> dict[str, np.ndarray]:
        pixels = self.image_processor(images=[image], return_tensors="np")
        tiles = int(pixels["pixel_values"].shape[0])
        block = self.start_token + self.context_token * (self.image_seq_length * tiles) + self.end_token
        encoded = self.tokenizer(text.replace(self.context_token, block, 1), return_tensors="np")
        return {**dict(encoded), "pixel_values": pixels["pixel_values"]}

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        owner = self.processor if self.processor is not None else self.tokenizer
        return owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def encode(self, text: str, image: Any) -> dict[str, np.ndarray]:
        if self._expand is not None:
            return self._expand(text, image)
        encoded = self.processor(text=text, images=[image], return_tensors="np")
        return {k: np.asarray(v) for k, v in encoded.items()}


def _clean(text: str) -> str:
    return text.replace(IMAGE_TEXT, "").strip()


def messages_of(turns: list[Turn]) -> list[dict[str, Any]]:
    """Chat messages; the image goes with the first user turn."""
    out, imaged = [], False
    for role, text in turns:
        content: list[dict[str, str]] = []
        if role == "user" and not imaged:
            content.append({"type": "image"})
            imaged = True
        content.append({"type": "text", "text": _clean(text) if role != "assistant" else text})
        out.append({"role": role, "content": content})
    return out


def prm_sequence(
    encoder: Encoder, turns: list[Turn], image: Any, template: PrmTemplate, ids: dict[str, int]
) -> Sequence:
    """The conversation as one sequence, every assistant turn holding the positive label, scored at each of them."""
    messages = messages_of(turns)
    full = encoder.render(messages, add_generation_prompt=False)
    inputs = encoder.encode(full, image)
    tokens = inputs["input_ids"][0]
    offset = len(tokens) - encoder.token_count(full)
    positive = ids[template.positive]
    positions = []
    for k, (role, _) in enumerate(turns):
        if role != "assistant":
            continue
        position = encoder.token_count(encoder.render(messages[:k], add_generation_prompt=True)) + offset
        if position >= len(tokens) or int(tokens[position]) != positive:
            raise RejectedError(
                STAGE,
                "template_mismatch",
                f"the chat template does not put step {len(positions)}'s label {template.positive!r} where the "
                "conversation up to it ends (a template that rewrites earlier turns?)",
            )
        positions.append(position)
    return Sequence(inputs, tuple(positions), (positive, ids[template.negative]))


def verify_sequence(
    encoder: Encoder, crop: Any, context: str, template: VerifyTemplate, ids: dict[str, int]
) -> Sequence:
    """The crop and the question about its context, scored at the answer's position."""
    messages = messages_of([("user", template.question(context))])
    inputs = encoder.encode(encoder.render(messages, add_generation_prompt=True), crop)
    return Sequence(inputs, (int(inputs["input_ids"].shape[-1]),), (ids[template.yes], ids[template.no]))
