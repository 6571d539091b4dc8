#!/usr/bin/env python3
"""Runs `troupe bench unet --preset sd15 --json` and tools/bench/torch_unet.py back to back and
prints both times and Troupe/PyTorch (target ≤ 1.0, then ≤ 0.9). Build first: swift build -c release.
Run: ~/.cache/troupe-ref/bin/python tools/bench/compare_unet.py"""
import json, os, subprocess, sys
here = os.path.dirname(os.path.abspath(__file__))
troupe = os.path.join(here, "..", "..", ".build", "release", "troupe")
ours = json.loads(subprocess.run([troupe, "bench", "unet", "--preset", "sd15", "--json"], check=True, capture_output=True, text=True).stdout)
ref = json.loads(subprocess.run([sys.executable, os.path.join(here, "torch_unet.py")], check=True, capture_output=True, text=True).stdout)
print(f"SD 1.5 UNet, one CFG step (batch 2, 64×64, 77×768), {ours['threads']} threads")
print(f"troupe : {ours['seconds_per_step']:.2f} s/step  {ours['gflops']:.1f} GFLOP/s  ({ours['gflop_per_step']:.0f} GFLOP)  peak RSS {ours['peak_rss_mb']:.0f} MB")
print(f"pytorch: {ref['seconds_per_step']:.2f} s/step  (torch {ref['torch']})  peak RSS {ref['peak_rss_mb']:.0f} MB")
print(f"troupe/pytorch = {ours['seconds_per_step'] / ref['seconds_per_step']:.2f}  (target ≤ 1.0, then ≤ 0.9)")
