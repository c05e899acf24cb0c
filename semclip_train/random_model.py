"""Randomly initialised CLIP models with a locally trained tokenizer (tests, ablations, benchmarks).

No hub access: the tokenizer is a byte-level BPE trained on the given texts, the image processor is
CLIP's (resize + centre crop + CLIP normalisation) at the config's image size. The text config's
bos/eos/pad ids are set to the tokenizer's, or CLIP's text pooling reads the wrong position.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from transformers import CLIPModel, CLIPProcessor

PAD, UNK, BOS, EOS = "<|pad|>", "<|unk|>", "<|startoftext|>", "<|endoftext|>"

# hidden 32, 2 layers, 4 heads, image 32, patch 8: one training step takes milliseconds on a CPU.
TINY = {
    "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
    "vision": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    },
    "projection_dim": 16,
}
# ViT-B/32 shapes (OpenAI CLIP), for benchmarks with random weights.
VIT_B_32 = {
    "text": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8},
    "vision": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 32,
    },
    "projection_dim": 512,
}
PRESETS = {"tiny": TINY, "vit-b-32": VIT_B_32}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512, max_length: int = 32):
    """A byte-level BPE tokenizer wrapped as a transformers fast tokenizer: <bos> text <eos>.

    It lower-cases as CLIP's tokenizer does: "No" opening a sentence and "no" inside one are the
    same token to every real CLIP, and a case-keeping toy would make them two words to learn."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, UNK, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(list(texts), trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        special_tokens=[(BOS, bpe.token_to_id(BOS)), (EOS, bpe.token_to_id(EOS))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=max_length,
    )


def clip_config_dict(tokenizer: Any, preset: str | dict = "tiny") -> dict[str, Any]:
    """A `CLIPConfig` as a dict whose text side matches `tokenizer` (vocab, special ids, length)."""
    shapes = PRESETS[preset] if isinstance(preset, str) else preset
    text = {
        **shapes["text"],
        "vocab_size": len(tokenizer),
        "max_position_embeddings": tokenizer.model_max_length,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return {"text_config": text, "vision_config": dict(shapes["vision"]), "projection_dim": shapes["projection_dim"]}


def build_processor(tokenizer: Any, image_size: int) -> "CLIPProcessor":
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def write_random_clip_folder(
    folder: str | Path, texts: Iterable[str], preset: str | dict = "tiny", vocab_size: int = 512
) -> Path:
    """A folder with `config.json` and processor files but no weights: `--model-config FOLDER`."""
    from semclip_train.model import clip_config_from

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    config = clip_config_dict(tokenizer, preset)
    build_processor(tokenizer, config["vision_config"]["image_size"]).save_pretrained(folder)
    clip_config_from(config).to_json_file(folder / "config.json")
    return folder


def build_random_clip(
    texts: Iterable[str], preset: str | dict = "tiny", seed: int = 0, vocab_size: int = 512
) -> tuple["CLIPModel", "CLIPProcessor"]:
    """A random `CLIPModel` and a processor whose tokenizer was trained on `texts`."""
    from semclip_train.model import clip_config_from, random_clip

    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    config = clip_config_dict(tokenizer, preset)
    processor = build_processor(tokenizer, config["vision_config"]["image_size"])
    return random_clip(clip_config_from(config), seed=seed), processor
