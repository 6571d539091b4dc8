#!/usr/bin/env python3
"""PyTorch reference timings for the cases of `troupe bench kernels`, same shapes, same
thread count (2 by default). Prints one JSON object: {"cases": {name: {"seconds": s}}, ...}.
Run: ~/.cache/troupe-ref/bin/python tools/bench/torch_kernels.py [--threads 2] [--seconds 1]"""
import argparse, json, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seconds", type=float, default=1.0)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)


def best(fn):
    fn()
    t_end = time.perf_counter() + args.seconds
    b = float("inf")
    while True:
        t0 = time.perf_counter(); fn(); b = min(b, time.perf_counter() - t0)
        if time.perf_counter() >= t_end:
            return b


cases = {}
with torch.no_grad():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    cases["sgemm_1024"] = best(lambda: a @ b)
    for c, hw in [(320, 64), (640, 32), (1280, 16)]:
        x, w, bias = torch.randn(2, c, hw, hw), torch.randn(c, c, 3, 3) * 0.02, torch.randn(c)
        cases[f"conv3x3_{c}x{hw}"] = best(lambda: F.conv2d(x, w, bias, padding=1))
    q, k, v = (torch.randn(2, 8, 4096, 40) for _ in range(3))
    cases["attention_4096x320x8"] = best(lambda: F.scaled_dot_product_attention(q, k, v))
    x = torch.randn(2, 320, 64, 64); gw, gb = torch.randn(320), torch.randn(320)
    cases["groupnorm_2x320x64x64"] = best(lambda: F.group_norm(x, 32, gw, gb))

print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                  "cases": {k: {"seconds": v} for k, v in cases.items()}}))
