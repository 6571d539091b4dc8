#!/usr/bin/env python3
"""A model soup of diffusers folders that share an ancestor (Wortsman et al. 2022, "Model
soups"): the UNet and text-encoder weights averaged with weights α that sum to 1 (uniform unless
--weights says otherwise); every
other file (VAE, tokenizer, scheduler, troupe.json) is copied from the first folder. Refused
when the folders' VAEs differ (the UNets would work in different latent spaces) or when a
tensor's name, shape or dtype differs. troupe-mini's shipped soup was made with (its card,
"The shipped soup"):

    python3 tools/dev/model_soup.py --out SOUP --weights 0.75,0.25 STEP44500 RUN/model

Needs: safetensors, torch (the fixtures venv).
"""
import argparse
import filecmp
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

AVERAGED = {"unet": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="new folder (must not exist)")
    ap.add_argument("--weights", help="comma-separated α per folder (default: uniform)")
    ap.add_argument("folders", nargs="+")
    a = ap.parse_args()
    if len(a.folders) < 2:
        sys.exit("model_soup: give at least two folders")
    alphas = [float(x) for x in a.weights.split(",")] if a.weights else [1 / len(a.folders)] * len(a.folders)
    if len(alphas) != len(a.folders) or abs(sum(alphas) - 1) > 1e-6:
        sys.exit("model_soup: one α per folder, summing to 1")
    if os.path.exists(a.out):
        sys.exit(f"model_soup: {a.out} exists")
    vae = "vae/diffusion_pytorch_model.safetensors"
    for f in a.folders[1:]:
        if not filecmp.cmp(os.path.join(a.folders[0], vae), os.path.join(f, vae), shallow=False):
            sys.exit(f"model_soup: {f}'s VAE differs from {a.folders[0]}'s: its UNet works in another latent space")
    tmp = a.out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(a.folders[0], tmp, ignore=shutil.ignore_patterns("README.md", "*.png", ".*"))
    for component, name in AVERAGED.items():
        states = [load_file(os.path.join(f, component, name)) for f in a.folders]
        first = states[0]
        for f, s in zip(a.folders[1:], states[1:]):
            if s.keys() != first.keys() or any(s[k].shape != first[k].shape or s[k].dtype != first[k].dtype for k in first):
                sys.exit(f"model_soup: {f}/{component} has other tensors than {a.folders[0]}/{component}")
        soup = {k: sum(alpha * s[k].to(torch.float32) for alpha, s in zip(alphas, states)).to(first[k].dtype) for k in first}
        save_file(soup, os.path.join(tmp, component, name), metadata={"format": "pt"})
    os.rename(tmp, a.out)
    print(f"model_soup: {a.out} = " + " + ".join(f"{al:g}·{f}" for al, f in zip(alphas, a.folders)))


if __name__ == "__main__":
    main()
