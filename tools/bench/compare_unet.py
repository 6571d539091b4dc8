#!/usr/bin/env python3
"""Runs `troupe bench unet --preset sd15 --json` and tools/bench/torch_unet.py alternately
(--rounds, default 2) and prints each one's best time and Troupe/PyTorch (target ≤ 1.0, then
≤ 0.9). Alternating keeps both under the same machine conditions. Build first:
swift build -c release.   Run: ~/.cache/troupe-ref/bin/python tools/bench/compare_unet.py"""
import argparse, json, os, subprocess, sys
here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=2)
a = ap.parse_args()
troupe = os.path.join(here, "..", "..", ".build", "release", "troupe")
ours, refs = [], []
for _ in range(a.rounds):
    ours.append(json.loads(subprocess.run([troupe, "bench", "unet", "--preset", "sd15", "--json"], check=True, capture_output=True, text=True).stdout))
    refs.append(json.loads(subprocess.run([sys.executable, os.path.join(here, "torch_unet.py")], check=True, capture_output=True, text=True).stdout))
o = min(ours, key=lambda r: r["seconds_per_step"]); r = min(refs, key=lambda r: r["seconds_per_step"])
print(f"SD 1.5 UNet, one CFG step (batch 2, 64×64, 77×768), {o['threads']} threads, best of {a.rounds} alternating rounds")
print(f"troupe : {o['seconds_per_step']:.2f} s/step  {o['gflop_per_step'] / o['seconds_per_step']:.1f} GFLOP/s  ({o['gflop_per_step']:.0f} GFLOP)  peak RSS {o['peak_rss_mb']:.0f} MB"
      f"   (all: {', '.join('%.2f' % x['seconds_per_step'] for x in ours)})")
print(f"pytorch: {r['seconds_per_step']:.2f} s/step  (torch {r['torch']})  peak RSS {r['peak_rss_mb']:.0f} MB"
      f"   (all: {', '.join('%.2f' % x['seconds_per_step'] for x in refs)})")
print(f"troupe/pytorch = {o['seconds_per_step'] / r['seconds_per_step']:.2f}  (target ≤ 1.0, then ≤ 0.9)")
