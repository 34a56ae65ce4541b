"""What the annotation stage needs to know before any worker starts: the model directory, its label tokens, the
templates and the settings.

The model is a vision-language model in Hugging Face format (what `save_pretrained` writes; local or gs://). The
launch reads its `config.json` and its tokenizer only, so a folder that is not such a model, a tokenizer in which a
label is not one token, or a model without a chat template fails the launch in one line instead of every worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from beam_pipelines.annotation.templates import PrmTemplate, VerifyTemplate
from beam_pipelines.scoring.spec import local_copy

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    "processor_config.json",
    "preprocessor_config.json",
    "config.json",
)
STEPS, REGIONS = "steps", "regions"
"""What a dataset's samples are scored on: their solution steps (process reward) or their regions (verification)."""


@dataclass(frozen=True)
class AnnotationSpec:
    """The model directory and what the launch learnt from it."""

    path: str
    model_type: str
    label_ids: dict[str, int]  # every label the run scores with → its token id
    pad_id: int = 0


@dataclass(frozen=True)
class AnnotationSettings:
    spec: AnnotationSpec
    prm: PrmTemplate
    verify: VerifyTemplate
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 8
    model_copies: int | None = None
    accelerator: str | None = None
    prm_threshold: float = 0.5
    prm_filter: str = "none"
    prm_filter_severity: str = "error"
    min_verify_score: float | None = None
    verify_severity: str = "error"

    @property
    def share_model(self) -> bool:
        """One model per machine (served to all SDK processes) on a GPU or when copies are asked for."""
        return self.device == "cuda" or self.model_copies is not None


def _config(path: str) -> dict:
    config_path = FileSystems.join(path, "config.json")
    if not FileSystems.exists(config_path):
        raise ValueError(f"--annotation_model {path!r}: no config.json (expected a Hugging Face model directory)")
    with FileSystems.open(config_path) as f:
        return json.loads(f.read())


def image_text_to_text_types() -> set[str]:
    """The model types `AutoModelForImageTextToText` loads."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)


def read_spec(path: str, prm: PrmTemplate, verify: VerifyTemplate, scores: tuple[str, ...]) -> AnnotationSpec:
    """The spec of the model at `path`; a ValueError of one line when it cannot score what `scores` asks for."""
    config = _config(path)
    model_type = config.get("model_type", "")
    if model_type not in image_text_to_text_types():
        raise ValueError(
            f"--annotation_model {path!r}: model_type {model_type!r} is not a vision-language model that "
            "AutoModelForImageTextToText loads"
        )
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(local_copy(path, TOKENIZER_FILES), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--annotation_model {path!r}: no usable tokenizer ({str(exc).splitlines()[0]})") from None
    if not getattr(tokenizer, "chat_template", None) and not _has_chat_template(path):
        raise ValueError(f"--annotation_model {path!r}: no chat template (the prompts are rendered with it)")
    labels = [
        *((prm.positive, prm.negative) if STEPS in scores else ()),
        *((verify.yes, verify.no) if REGIONS in scores else ()),
    ]
    ids = {}
    for label in labels:
        encoded = tokenizer.encode(label, add_special_tokens=False)
        if len(encoded) != 1 or encoded[0] == tokenizer.unk_token_id:
            what = "not in its vocabulary" if encoded == [tokenizer.unk_token_id] else f"{len(encoded)} tokens, not one"
            raise ValueError(f"--annotation_model {path!r}: the label {label!r} is {what} in its tokenizer")
        ids[label] = encoded[0]
    if len({ids[label] for label in labels}) != len(labels):
        raise ValueError(f"--annotation_model {path!r}: the labels {labels} are not distinct tokens")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return AnnotationSpec(path=path, model_type=model_type, label_ids=ids, pad_id=int(pad or 0))


def _has_chat_template(path: str) -> bool:
    return any(FileSystems.exists(FileSystems.join(path, n)) for n in ("chat_template.jinja", "chat_template.json"))
