#!/usr/bin/env python3
"""Writes an SD 1.5-shaped diffusers folder with random weights in fp16 (no download), for
measuring Troupe's memory and speed on full-size models:
  ~/.cache/troupe-ref/bin/python tools/bench/make_sd15_random.py OUT_DIR
then e.g.  /usr/bin/time -v .build/release/troupe generate --model OUT_DIR --prompt x --steps 2
The tokenizer is the real CLIP vocabulary from models/clip-tokenizer."""
import os, shutil, sys
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from diffusers import AutoencoderKL, UNet2DConditionModel, PNDMScheduler, StableDiffusionPipeline

out = sys.argv[1]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
torch.manual_seed(0)
with torch.no_grad():
    te = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                      num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu"))
    unet = UNet2DConditionModel(cross_attention_dim=768, sample_size=64)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512)
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                          steps_offset=1, set_alpha_to_one=False)
    tok = CLIPTokenizer.from_pretrained(os.path.join(root, "models", "clip-tokenizer"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
tdir = os.path.join(out, "tokenizer")
for f in ("vocab.json", "merges.txt"):
    shutil.copy(os.path.join(root, "models", "clip-tokenizer", f), tdir)
print("wrote", out)
