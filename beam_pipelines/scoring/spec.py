"""What the scoring stage needs to know before any worker starts: settings and the model's geometry.

The model directory is a standard Hugging Face CLIP save (`config.json`, weights, tokenizer files,
optionally `preprocessor_config.json`), local or on any Beam filesystem (`gs://`). Only the small
JSON files are read at graph-construction time, so a wrong path or a model whose patch size does
not match the replay preset fails the launch instead of every worker. Workers copy the files they
need into a local temp dir once per process (`local_copy`), since `from_pretrained` reads local paths.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.materialisation.replay import ReplayPreset

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "config.json",
)
FEATURE_LAYER = -2  # LLaVA's mm_vision_select_layer: the penultimate layer's patch tokens, CLS dropped


@dataclass(frozen=True)
class ModelSpec:
    """The geometry and input normalisation of a CLIP-style model, from its config files."""

    path: str
    image_size: int
    patch_size: int
    vision_hidden: int
    max_text_tokens: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def fill(self) -> tuple[int, int, int]:
        """Padding colour for letterboxed crops: the mean, so padding normalises to zero."""
        return tuple(round(255 * m) for m in self.mean)  # type: ignore[return-value]


@dataclass(frozen=True)
class ScoreSettings:
    model: ModelSpec
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 32
    model_copies: int | None = None
    accelerator: str | None = None
    min_score: float | None = None
    severity: str = "error"
    replay: ReplayPreset | None = None  # the preset whose grid replay features follow; None: no features

    @property
    def share_model(self) -> bool:
        """One model per machine (served to all SDK processes) on a GPU or when copies are asked for."""
        return self.device == "cuda" or self.model_copies is not None


def _read_json(path: str) -> dict | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read())


def _has_tokenizer(path: str) -> bool:
    """A fast tokenizer file, or the BPE vocabulary and merges. Without either, transformers quietly builds a
    tokenizer that knows only its special tokens: every text would encode alike and every score be meaningless."""
    exists = [
        FileSystems.exists(FileSystems.join(path, name)) for name in ("tokenizer.json", "vocab.json", "merges.txt")
    ]
    return exists[0] or (exists[1] and exists[2])


def read_spec(path: str) -> ModelSpec:
    """ModelSpec from `<path>/config.json` (a CLIPModel config) and `preprocessor_config.json` if present."""
    config = _read_json(FileSystems.join(path, "config.json"))
    if config is None:
        raise ValueError(f"--score_model {path!r}: no config.json (expected a Hugging Face CLIP model directory)")
    model_type = config.get("model_type", "clip")
    if model_type != "clip":
        raise ValueError(
            f"--score_model {path!r}: model_type {model_type!r} is not a CLIP model (scoring loads 'clip')"
        )
    # configs saved by transformers before 4.20 name the towers `*_config_dict`; from_pretrained still reads them
    vision = config.get("vision_config") or config.get("vision_config_dict")
    text = config.get("text_config") or config.get("text_config_dict")
    if vision is None or text is None:
        raise ValueError(f"--score_model {path!r}: config.json has no vision_config/text_config (not a CLIP model)")
    if not _has_tokenizer(path):
        raise ValueError(
            f"--score_model {path!r}: no tokenizer files (tokenizer.json, or vocab.json and merges.txt); "
            "save the model's tokenizer next to it"
        )
    processor = _read_json(FileSystems.join(path, "preprocessor_config.json")) or {}
    return ModelSpec(
        path=path,
        image_size=int(vision.get("image_size", 224)),
        patch_size=int(vision.get("patch_size", 32)),
        vision_hidden=int(vision.get("hidden_size", 768)),
        max_text_tokens=int(text.get("max_position_embeddings", 77)),
        mean=tuple(processor.get("image_mean", OPENAI_CLIP_MEAN)),
        std=tuple(processor.get("image_std", OPENAI_CLIP_STD)),
    )


_copies: dict[tuple[str, tuple[str, ...] | None], str] = {}
_lock = threading.Lock()


def local_copy(path: str, names: tuple[str, ...] | None = None) -> str:
    """A local directory holding the model's files (only `names` when given): the path itself when it is
    local, else a per-process temp copy made once through Beam's FileSystems."""
    if "://" not in path:
        return path
    key = (path, names)
    with _lock:
        if key not in _copies:
            target = tempfile.mkdtemp(prefix="vgr-etl-score-model-")
            base = path.rstrip("/") + "/"
            for match in FileSystems.match([base + "**"])[0].metadata_list:
                rel = match.path[len(base) :]
                if names is not None and rel not in names:
                    continue
                os.makedirs(os.path.dirname(os.path.join(target, rel)) or target, exist_ok=True)
                src = FileSystems.open(match.path, compression_type=CompressionTypes.UNCOMPRESSED)
                with src, open(os.path.join(target, rel), "wb") as dst:
                    while chunk := src.read(64 << 20):
                        dst.write(chunk)
            _copies[key] = target
        return _copies[key]
