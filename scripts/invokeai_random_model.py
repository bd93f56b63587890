"""Build a tiny random-weight SD1.5-architecture diffusers folder, with no downloads: the model
InvokeAI runs in tests/test_invokeai.py (scripts/invokeai.sh start builds it when missing and
installs it through InvokeAI's model manager).

Usage: .invokeai/venv/bin/python scripts/invokeai_random_model.py OUT_DIR

SD1.5's shapes where InvokeAI's model probe looks (a CLIP text encoder with 768-wide hidden
states, a UNet with 768-wide cross-attention, a VAE that downscales 8×, SD1.5's scheduler
betas), everything else as small as it goes: 39 MB, about 8 s per 256×256 4-step image on
two CPU cores. Seeded, so the same folder comes out every time.
"""

from __future__ import annotations

import sys

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer


def byte_symbols() -> list[str]:
    """CLIP's byte-level BPE alphabet (bytes_to_unicode): one printable symbol per byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def build_tokenizer() -> CLIPTokenizer:
    """A byte-level BPE vocabulary built in code: the 256 byte symbols, their `</w>` variants,
    a few merges and the start/end tokens."""
    symbols = byte_symbols()
    vocab = {}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("i", "n"), ("o", "n</w>")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # transformers 5: CLIPTokenizer is tokenizers-backed and takes vocab=dict, merges=list; the
    # old vocab_file=/merges_file= are silently ignored (a 3-token vocabulary, then IndexError).
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token="<|endoftext|>")


def build_pipeline() -> StableDiffusionPipeline:
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=768,  # SD1.5's cross-attention width: InvokeAI tells SD1 by it
            intermediate_size=1024,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=768,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=32,  # 256 px / 8 (SD1.5 itself says 64)
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 64, 64),  # 4 blocks: 8× down, as SD's VAE
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=256,
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: scripts/invokeai_random_model.py OUT_DIR", file=sys.stderr)
        return 2
    pipe = build_pipeline()
    pipe.save_pretrained(argv[0], safe_serialization=True)
    # It runs: two steps at 64×64, so a broken tokenizer or shape fails here, not in InvokeAI.
    image = pipe("a red cube", num_inference_steps=2, height=64, width=64, output_type="np").images[0]
    print(f"saved {argv[0]} (sanity image {image.shape[1]}x{image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
