"""Tiny randomly initialised CLIP models in standard Hugging Face format, built and saved per session.

They are loaded by the pipeline through the same `from_pretrained` path as a real CLIP ViT-L/14@336.
The tokenizer is a real CLIP BPE tokenizer with a byte-level vocabulary and no merges (every byte is
a token), so it needs no download either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def save_tiny_clip(path: Path, image_size: int, text_vocab: int | None = None, seed: int = 0) -> str:
    """A 2-layer CLIP (hidden 32) seeing `image_size` px in 14 px patches; `text_vocab` smaller than the
    tokenizer's makes a broken model whose text tower fails on most ids."""
    from tokenizers.pre_tokenizers import ByteLevel

    chars = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=[])
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = transformers.CLIPConfig(
        text_config={
            **tower,
            "vocab_size": text_vocab or len(vocab),
            "max_position_embeddings": 32,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**tower, "image_size": image_size, "patch_size": 14},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    transformers.CLIPModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), image_size=56)


@pytest.fixture(scope="session")
def tiny_clip_336(tmp_path_factory) -> str:
    """Sees 336 px tiles in 14 px patches, like CLIP ViT-L/14@336: what replay features need."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip_336"), image_size=336)


@pytest.fixture(scope="session")
def broken_clip(tmp_path_factory) -> str:
    return save_tiny_clip(tmp_path_factory.mktemp("broken_clip"), image_size=56, text_vocab=64)
