#!/usr/bin/env python3
"""PyTorch reference for `troupe bench generate --preset mini`: diffusers'
StableDiffusionPipeline loads the troupe-mini folder as it is shipped (so this also checks
that the export is a valid diffusers pipeline), then times 4 images, 64×64, 25 steps, guidance
6, 2 threads, best of N after a warm-up. With --compare it also runs `troupe generate` with the
same seed and prints the mean absolute pixel difference (same model, same sampler, same noise).
Run: ~/.cache/troupe-ref/bin/python tools/bench/torch_generate.py [--model models/troupe-mini]"""
import argparse, json, subprocess, time
import numpy as np
import torch
from diffusers import StableDiffusionPipeline

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="models/troupe-mini")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--compare", default=None, help="path of the troupe binary to compare images with")
a = ap.parse_args()
torch.set_num_threads(a.threads)
pipe = StableDiffusionPipeline.from_pretrained(a.model, safety_checker=None, requires_safety_checker=False, torch_dtype=torch.float32)
pipe.set_progress_bar_config(disable=True)
prompt = "a knight waving, smiling, in a forest, front view"
kw = dict(num_inference_steps=25, guidance_scale=6.0, height=64, width=64, num_images_per_prompt=4, output_type="np")
pipe(prompt, generator=torch.Generator().manual_seed(1), **kw)
best = float("inf")
for _ in range(a.repeats):
    t0 = time.perf_counter()
    out = pipe(prompt, generator=torch.Generator().manual_seed(1), **kw)
    best = min(best, time.perf_counter() - t0)
result = {"seconds": best, "images": 4, "threads": torch.get_num_threads(), "torch": torch.__version__}
if a.compare:
    images = (out.images * 255).round().astype(np.uint8)
    diffs = []
    for i in range(4):
        path = f"/tmp/troupe-compare-{i}.png"
        subprocess.run([a.compare, "generate", "--model", a.model, "--prompt", prompt, "--steps", "25", "--cfg", "6",
                        "--count", "4", "--seed", "1", "-o", "/tmp/troupe-compare.png"], check=True, capture_output=True)
        from PIL import Image
        name = "/tmp/troupe-compare.png" if i == 0 else f"/tmp/troupe-compare-{i + 1}.png"
        diffs.append(float(np.abs(np.asarray(Image.open(name).convert("RGB")).astype(float) - images[i]).mean()))
        break
    result["mean_abs_pixel_diff_first_image"] = diffs[0]
print(json.dumps(result))
