"""Tiny randomly initialised vision-language models in Hugging Face format, built from configs and saved, with
tokenizers built in code: nothing is downloaded. They load through the pipeline's own loader
(`AutoModelForImageTextToText`, `AutoProcessor`), as a real VisualPRM-8B or InternVL would."""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "system",
    "user",
    "assistant",
    ":",
    "the",
    "a",
    "of",
    "is",
    "and",
    "step",
    "question",
    "answer",
    "final",
    "x",
    "y",
    "image",
    "region",
    "show",
    "text",
    "refers",
    "to",
    "does",
    "this",
    "what",
    "following",
    "Yes",
    "No",
    "+",
    "-",
    "###",
    "Question",
    "Solution",
    "Process",
    "find",
    "area",
    "angle",
    "bar",
    "chart",
]
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "{{ image_token }} {% else %}{{ c['text'] }} {% endif %}{% endfor %}</s> {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def tokenizer(image_tokens: list[str], image_token: str):
    """A whitespace word-level tokenizer (unknown words are <unk>) with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<pad>", "<s>", "</s>", *dict.fromkeys(WORDS)])}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=model, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    tok.add_special_tokens({"additional_special_tokens": image_tokens})
    tok.chat_template = TEMPLATE.replace("{{ image_token }}", image_token)
    return tok


def _text_config(vocab: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )


def save_tiny_llava(path: Path, seed: int = 0, layers: int = 2) -> str:
    """LLaVA (CLIP vision tower 28 px in 14 px patches, Llama text model); its processor loads with AutoProcessor."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = tokenizer(["<image>"], "<image>")
    text = _text_config(len(tok))
    text.num_hidden_layers = layers
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(path)
    images = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    LlavaProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tok.chat_template,
    ).save_pretrained(path)
    return str(path)


def save_tiny_internvl(path: Path, seed: int = 0) -> str:
    """InternVL (the transformers-native class, Qwen2 text model); its processor needs torchvision (a video
    processor), so the pipeline composes its image processor and tokenizer instead."""
    import torch
    from transformers import (
        GotOcr2ImageProcessorPil,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLVisionConfig,
        Qwen2Config,
    )

    tok = tokenizer(["<IMG_CONTEXT>", "<img>", "</img>"], "<IMG_CONTEXT>")
    vision = InternVLVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=[28, 28],
        patch_size=[14, 14],
    )
    text = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        downsample_ratio=0.5,
    )
    torch.manual_seed(seed)
    InternVLForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    GotOcr2ImageProcessorPil(size={"height": 28, "width": 28}, crop_to_patches=False).save_pretrained(path)
    return str(path)


def save_fixed_llava(path: Path) -> str:
    """A LLaVA with no text layers whose logits are fixed by the token at each position: after `:` (which ends
    every assistant header) `+` is far likelier than `-`; after `+` itself, `-` is. Reading the logits one position
    late (the placeholder's own, not the ones that predict it) turns every score from about 1 into about 0."""
    import torch
    from transformers import AutoModelForImageTextToText

    save_tiny_llava(path, layers=0)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    tok = tokenizer(["<image>"], "<image>")
    colon, plus, minus = (tok.convert_tokens_to_ids(t) for t in (":", "+", "-"))
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        embed.zero_()
        head.zero_()
        embed[:, 2] = 1.0  # every token: a constant direction, so the norm never divides by zero
        embed[colon, 0] = 4.0
        embed[plus, 1] = 4.0
        head[plus, 0], head[minus, 0] = 3.0, -3.0
        head[plus, 1], head[minus, 1] = -3.0, 3.0
    model.save_pretrained(path)
    return str(path)
