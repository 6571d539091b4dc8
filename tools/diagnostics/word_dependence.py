#!/usr/bin/env python3
"""How much does a model's noise prediction depend on each context word of its captions?

For held-out World renders (`troupe world export --count 256 --out DIR`), encodes each image,
noises it at several timesteps and predicts ε three ways: with its caption, with the caption's
word for one context attribute swapped for another value's word, and unconditionally. Prints,
per attribute and timestep, the ε-MSE of each and the mean squared difference between the true-
and swapped-caption predictions (over the whole latent, the face cells and the emote-balloon cells). A model that
follows a word gives a lower loss with the true caption than with the swapped one; a model that
ignores it gives the same loss and a difference near 0 — how troupe-mini's expression words
were found ignored at UNet step 9195 (loss equal to 4 decimals, difference ~1e-5).

    ~/.cache/troupe-ref/bin/python tools/diagnostics/word_dependence.py MODEL_DIR EXPORT_DIR

Words mirror Sources/Pipeline/World/WorldAttributes.swift; the face and balloon cells mirror
World.expressionRegions (face: pixels x 23..<43, y 9..<25 → latent rows 2..6, columns 5..10;
balloon: x 1..<15, y 1..<12 → rows 0..2, columns 0..3).
"""
import json, re, sys
import numpy as np
import torch
from PIL import Image
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

WORDS = {
    "expression": {"neutral": "calm", "happy": "smiling", "sad": "sad", "angry": "angry", "surprised": "surprised"},
    "pose": {"standing": "standing", "waving": "waving", "armsUp": "with arms raised", "walking": "walking", "pointing": "pointing"},
    "background": {"sky": "under a blue sky", "forest": "in a forest", "desert": "in the desert", "night": "at night",
                   "castle": "in a castle", "beach": "on a beach"},
    "view": {"front": "front view", "side": "side view"},
}
TIMESTEPS = [50, 150, 300, 500, 700, 900]


def swap(caption, old, new):
    """The caption with `old` replaced by `new`, fixing "a"/"an" before it."""
    article = "an" if new[0] in "aeiou" else "a"
    out = re.sub(rf"\b(a|an) {re.escape(old)}\b", f"{article} {new}", caption)
    return re.sub(rf"\b{re.escape(old)}\b", new, out)


def main(model, export, n=96):
    torch.set_num_threads(1)
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", low_cpu_mem_usage=False).float().eval()
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae", low_cpu_mem_usage=False).float().eval()
    text = CLIPTextModel.from_pretrained(model, subfolder="text_encoder").float().eval()
    tok = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
    sched = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    rows = [json.loads(line) for line in open(f"{export}/labels.jsonl")]

    def encode(captions):
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        return text(ids)[0]

    print(f"{'attribute':<11} {'t':>4} {'loss true':>10} {'swapped':>10} {'uncond':>10} {'Δε² face':>10} {'balloon':>10} {'Δε² all':>10}")
    for attribute, words in WORDS.items():
        chosen = [r for r in rows if r["caption"] and words[r[attribute]] in r["caption"]][:n]
        values = list(words.values())
        swapped = []
        for i, r in enumerate(chosen):
            own = words[r[attribute]]
            others = [v for v in values if v != own]
            swapped.append(swap(r["caption"], own, others[i % len(others)]))
        images = np.stack([np.asarray(Image.open(f"{export}/{r['file']}").convert("RGB")) for r in chosen])
        x = torch.tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            z0 = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
            c_true, c_swap, c_none = encode([r["caption"] for r in chosen]), encode(swapped), encode([""] * len(chosen))
            for t in TIMESTEPS:
                noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(t))
                ts = torch.full((len(chosen),), t)
                xt = sched.add_noise(z0, noise, ts)
                e_true, e_swap, e_none = (unet(xt, ts, c).sample for c in (c_true, c_swap, c_none))
                mse = lambda e: ((e - noise) ** 2).mean().item()
                d = ((e_true - e_swap) ** 2).mean(dim=(0, 1))
                print(f"{attribute:<11} {t:>4} {mse(e_true):>10.5f} {mse(e_swap):>10.5f} {mse(e_none):>10.5f} "
                      f"{d[2:7, 5:11].mean().item():>10.2e} {d[0:3, 0:4].mean().item():>10.2e} {d.mean().item():>10.2e}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
