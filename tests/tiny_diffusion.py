"""A tiny random Stable Diffusion model, written in diffusers' `save_pretrained` layout.

Built from configs in seconds on a CPU (a few-channel UNet, a tiny VAE, a two-layer CLIP text
encoder and a CLIP tokenizer whose vocabulary is single characters), so the local diffusion
backend is exercised end to end, loading included, without downloading any weights. The
pictures are noise; what the tests check is the plumbing: sizes, seeds, steps, guidance,
image-to-image, cancellation.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

TOKEN_LIMIT = 77
NATIVE_SIDE = 64  # UNet sample_size 32 x the VAE's downscale 2


def _write_tokenizer(folder: Path) -> int:
    """A CLIP BPE vocabulary of single characters (each also as a word end) and no merges."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = string.ascii_lowercase + string.digits + string.punctuation
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in symbols:
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(f"{symbol}</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return len(vocab)


def build_tiny_model(target: Path) -> Path:
    """Write the model to `target` (a fresh directory) and return it."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    scratch = target.parent / f"{target.name}-tokenizer"
    vocab_size = _write_tokenizer(scratch)
    tokenizer = CLIPTokenizer(
        str(scratch / "vocab.json"),
        str(scratch / "merges.txt"),
        model_max_length=TOKEN_LIMIT,
        pad_token="<|endoftext|>",
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=TOKEN_LIMIT,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=32,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=NATIVE_SIDE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(str(target))
    return target
