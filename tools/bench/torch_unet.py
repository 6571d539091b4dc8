#!/usr/bin/env python3
"""PyTorch reference for `troupe bench unet --preset sd15`: diffusers' UNet2DConditionModel
with its default (SD 1.5) config and random weights, one forward of batch 2 at 64×64 latents
with a 77×768 context, torch.no_grad, 2 threads. Prints one JSON object.
Run: ~/.cache/troupe-ref/bin/python tools/bench/torch_unet.py [--threads 2] [--repeats 2]"""
import argparse, json, resource, time
import torch
from diffusers import UNet2DConditionModel

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
unet = UNet2DConditionModel(cross_attention_dim=768).eval()  # SD 1.5 (v1-inference) shapes
x, ctx, t = torch.randn(2, 4, 64, 64), torch.randn(2, 77, 768), torch.tensor(500)
with torch.no_grad():
    unet(x, t, encoder_hidden_states=ctx)
    best = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter(); unet(x, t, encoder_hidden_states=ctx); best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds_per_step": best, "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
