#!/usr/bin/env python3
"""PyTorch reference for `troupe bench unet --preset sd15|mini`: diffusers' UNet2DConditionModel
with random weights, torch.no_grad, 2 threads; sd15: the default (SD 1.5) config, batch 2 at
64×64 latents, 77×768 context; mini: troupe-mini's UNet config (models/troupe-mini/unet/
config.json), batch 8 (4 images with guidance) at 16×16, 77×128 context. Prints one JSON object.
Run: ~/.cache/troupe-ref/bin/python tools/bench/torch_unet.py [--preset sd15] [--threads 2] [--repeats 2]"""
import argparse, json, resource, time
import torch
from diffusers import UNet2DConditionModel

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=2)
ap.add_argument("--preset", default="sd15", choices=["sd15", "mini"])
ap.add_argument("--config", default="models/troupe-mini/unet/config.json")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
if a.preset == "sd15":
    unet = UNet2DConditionModel(cross_attention_dim=768).eval()  # SD 1.5 (v1-inference) shapes
    x, ctx, t = torch.randn(2, 4, 64, 64), torch.randn(2, 77, 768), torch.tensor(500)
else:
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(a.config)).eval()
    x, ctx, t = torch.randn(8, 4, 16, 16), torch.randn(8, 77, unet.config.cross_attention_dim), torch.tensor(500)
    a.repeats = max(a.repeats, 20)
with torch.no_grad():
    unet(x, t, encoder_hidden_states=ctx)
    best = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter(); unet(x, t, encoder_hidden_states=ctx); best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds_per_step": best, "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
