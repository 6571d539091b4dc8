#!/usr/bin/env python3
"""Bad-input fuzzing of the troupe CLI: mutated safetensors headers, model configs and PNGs
(with an A1111 `parameters` chunk). Every case runs the release binary on one mutated input and
records how it ended; a signal exit (crash, trap, out-of-bounds) is a failure. Hostile input
must end in exit status 0, 1 or 2 with a message.

    python3 tools/fuzz/fuzz.py [--cases 5000] [--seed 1] [--binary .build/release/troupe]

Inputs come from the test fixtures (tiny SD 1.x folder Tests/PipelineTests/Fixtures/sd/a).
Prints a summary line per kind and `N passed, N failed`; exits 1 when any case died by a signal
or hung past the per-case timeout. Crashing inputs are kept under /tmp/troupe-fuzz/crashes/.
"""
import argparse, json, os, random, shutil, struct, subprocess, sys, tempfile, zlib, collections

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(ROOT, "Tests", "PipelineTests", "Fixtures", "sd", "a")
WORK = "/tmp/troupe-fuzz"

ap = argparse.ArgumentParser()
ap.add_argument("--cases", type=int, default=5000)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "troupe"))
ap.add_argument("--timeout", type=float, default=60)
args = ap.parse_args()
rng = random.Random(args.seed)
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK + "/crashes")
# A private copy: rebuilding the binary during a run must not stop it ("text file busy").
shutil.copy2(args.binary, WORK + "/troupe")
args.binary = WORK + "/troupe"
env = dict(os.environ, TROUPE_HOME=WORK + "/home", TROUPE_GRAPHICS="ascii", NO_COLOR="1")

def run(argv):
    try:
        p = subprocess.run([args.binary] + argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=args.timeout)
        return p.returncode, p.stderr[-300:].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return "hang", ""

# ---------------------------------------------------------------- mutators
INTERESTING = [0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -2**63, 4611686018427387904, 10**30, 1e308, float("nan") if False else 3.5, "", "x", None, [], {}, True]

def mutate_json(obj):
    """One structural change: a key's value replaced, a key removed, or a list element changed."""
    obj = json.loads(json.dumps(obj))
    def walk(o, depth=0):
        if isinstance(o, dict) and o:
            k = rng.choice(list(o))
            r = rng.random()
            if r < 0.15: del o[k]; return
            if r < 0.6 or depth > 3 or not isinstance(o[k], (dict, list)): o[k] = rng.choice(INTERESTING + [rng.randint(-10, 10**6)]); return
            walk(o[k], depth + 1)
        elif isinstance(o, list) and o:
            i = rng.randrange(len(o))
            if rng.random() < 0.5 or not isinstance(o[i], (dict, list)): o[i] = rng.choice(INTERESTING + [rng.randint(-10, 10**6)])
            else: walk(o[i], depth + 1)
    for _ in range(rng.randint(1, 3)): walk(obj)
    return obj

def mutate_bytes(b, span=None):
    b = bytearray(b)
    lo, hi = span or (0, len(b))
    for _ in range(rng.randint(1, 8)):
        hi = min(hi, len(b))
        if hi <= lo: break
        i = rng.randrange(lo, hi)
        r = rng.random()
        if r < 0.5: b[i] = rng.randrange(256)
        elif r < 0.7: b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif r < 0.9: del b[i:i + rng.randint(1, 16)]
        else: b[i:i + 4] = struct.pack("<I", rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(2**32)]))
    return bytes(b)

def safetensors_case(path, d):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); body = raw[8 + n:]
    r = rng.random()
    if r < 0.6:
        h = mutate_json(header)
        hb = json.dumps(h).encode()
        data = struct.pack("<Q", len(hb)) + hb + body
    elif r < 0.8:
        data = mutate_bytes(raw, (0, 8 + n))
    else:
        data = struct.pack("<Q", rng.choice([0, 1, n + 10**9, 2**63, len(raw)])) + raw[8:]
    open(d, "wb").write(data)

def png_with_parameters(params):
    """A 16×16 RGB PNG with a tEXt `parameters` chunk."""
    w = h = 16
    rows = b"".join(b"\x00" + bytes((x * 16) % 256 for x in range(w * 3)) for _ in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"parameters\x00" + params.encode("utf-8", "replace")) + \
        chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")

FIELDS = ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Clip skip", "Batch size", "Batch index", "Troupe LoRA",
          "Character", "OneActor v", "OneActor eta1", "OneActor eta2", "Guidance steps"]
VALUES = ["-1", "0", "1", "25", "4611686018427387904x64", "64x4611686018427387904", "16x16", "0x0", "-16x16", "nan", "inf", "-inf",
          "1e40", "999999999999999999999", "DPM++ 2M", "Euler a", "bogus", "\"quoted, value\"", "../../etc/passwd", "/etc/hostname",
          "1:5", "0:0", "5:1", "a:b", "18446744073709551615", "\u00e9\u00e9", "x" * 5000]

def parameters_text():
    fields = ", ".join(f"{rng.choice(FIELDS)}: {rng.choice(VALUES)}" for _ in range(rng.randint(1, 8)))
    return rng.choice(["a knight", "", "x" * rng.randint(1, 20000), "a knight\nNegative prompt: blurry"]) + "\n" + fields

# ---------------------------------------------------------------- cases
base_png = png_with_parameters("a knight\nSteps: 2, Sampler: DDIM, CFG scale: 5, Seed: 3, Size: 16x16")
config_files = ["unet/config.json", "text_encoder/config.json", "vae/config.json", "scheduler/scheduler_config.json", "model_index.json"]
weight_files = [os.path.join(FIX, p) for p in ["vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors"]]
gen = ["generate", "--prompt", "a knight", "--steps", "1", "--width", "16", "--height", "16"]

stats = collections.Counter(); kinds = collections.defaultdict(collections.Counter)
for case in range(args.cases):
    kind = rng.choice(["config", "safetensors", "png-bytes", "png-parameters", "latents"])
    d = os.path.join(WORK, f"case-{case}")
    os.makedirs(d)
    if kind == "config":
        model = os.path.join(d, "model"); shutil.copytree(FIX, model)
        f = os.path.join(model, rng.choice(config_files))
        json.dump(mutate_json(json.load(open(f))), open(f, "w"))
        argv = gen + ["--model", model, "-o", d + "/out.png"]
    elif kind == "safetensors":
        model = os.path.join(d, "model"); shutil.copytree(FIX, model)
        target = rng.choice(weight_files)
        safetensors_case(target, os.path.join(model, os.path.relpath(target, FIX)))
        argv = gen + ["--model", model, "-o", d + "/out.png"]
    elif kind == "latents":
        src = os.path.join(WORK, "latents.safetensors")
        if not os.path.exists(src):
            hb = json.dumps({"latents": {"dtype": "F32", "shape": [1, 4, 4, 4], "data_offsets": [0, 256]}}).encode()
            open(src, "wb").write(struct.pack("<Q", len(hb)) + hb + bytes(256))
        safetensors_case(src, d + "/lat.safetensors")
        argv = gen + ["--model", FIX, "--init-latents", d + "/lat.safetensors", "-o", d + "/out.png"]
    elif kind == "png-bytes":
        open(d + "/in.png", "wb").write(mutate_bytes(base_png))
        argv = rng.choice([["show", d + "/in.png", "--graphics", "ascii"],
                           ["generate", "--model", FIX, "--from-png", d + "/in.png", "--steps", "1", "-o", d + "/out.png"]])
    else:
        open(d + "/in.png", "wb").write(png_with_parameters(parameters_text()))
        argv = ["generate", "--model", FIX, "--from-png", d + "/in.png", "-o", d + "/out.png"]
    code, err = run(argv)
    ok = code in (0, 1, 2)
    outcome = "ok" if ok else ("hang" if code == "hang" else f"signal {-code}" if isinstance(code, int) and code < 0 else f"exit {code}")
    stats[outcome] += 1; kinds[kind][outcome] += 1
    if ok: shutil.rmtree(d)
    else:
        shutil.move(d, os.path.join(WORK, "crashes", f"case-{case}"))
        print(f"case {case} ({kind}): {outcome}: {' '.join(argv)}\n  {err.strip()[-200:]}", flush=True)
    if (case + 1) % 500 == 0: print(f"{case + 1} cases: {dict(stats)}", flush=True)

for k, c in sorted(kinds.items()): print(f"{k:15s} {dict(c)}")
failed = sum(v for k, v in stats.items() if k != "ok")
print(f"{stats['ok']} passed, {failed} failed")
sys.exit(1 if failed else 0)
