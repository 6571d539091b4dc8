#!/usr/bin/env python3
"""Studio responsiveness, measured through tmux as a person would feel it (issue #17):
  1. key echo while a tuning job runs: a character typed into the prompt field → on screen;
  2. slider change → new preview on screen (the preview's info line shows the new CFG).
Each is timed from `tmux send-keys` to the first `capture-pane` that shows the change, polled
every few ms; tmux's own round trip is measured the same way on a `cat` pane and reported
beside it. Usage: tools/bench/studio_responsiveness.py [--troupe .build/release/troupe]"""
import argparse, os, re, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--troupe", default=".build/release/troupe")
ap.add_argument("--repeats", type=int, default=20)
args = ap.parse_args()
troupe = os.path.abspath(args.troupe)
home = tempfile.mkdtemp(prefix="troupe-resp-")
env = dict(os.environ, TROUPE_HOME=home)
sock = f"troupe-resp-{os.getpid()}"

def tmux(*a, capture=False):
    r = subprocess.run(["tmux", "-L", sock, *a], capture_output=True, text=True)
    if r.returncode != 0 and a[0] != "kill-server": print("tmux", a[0], r.stderr.strip(), file=sys.stderr)
    return r.stdout

def screen(target):
    return tmux("capture-pane", "-p", "-t", target, capture=True)

def timed(target, keys, literal, predicate, timeout=10.0):
    t0 = time.perf_counter()
    tmux("send-keys", "-t", target, *(["-l"] if literal else []), *keys)
    while time.perf_counter() - t0 < timeout:
        if predicate(screen(target)):
            return time.perf_counter() - t0
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting on {target} after {keys}:\n" + screen(target))

def run(*a):
    subprocess.run([troupe, *a], env=env, check=True, capture_output=True)

run("character", "new", "Ada", "--prompt", "a knight waving, smiling, in a forest, front view", "--base-word", "knight", "--seed", "7")
run("generate", "--prompt", "a knight waving, smiling, in a forest, front view", "--seed", "7", "-o", f"{home}/t.png")
run("character", "accept", "Ada", f"{home}/t.png")
job = subprocess.Popen([troupe, "tune", "stage1", "Ada", "--steps", "100000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "base", "-x", "110", "-y", "34", "cat")
    base = []
    for i in range(args.repeats):
        ch = "xyzw"[i % 4] * 1
        n = screen("base").count(ch)
        base.append(timed("base", [ch], True, lambda s, n=n, ch=ch: s.count(ch) > n))
    tmux("new-session", "-d", "-s", "studio", "-x", "110", "-y", "34",
         f"env TROUPE_HOME={home} TERM=tmux-256color {troupe} --character Ada --screen generate 2>{home}/err; sleep 30")
    deadline = time.time() + 30
    while "seed 7 · cfg" not in screen("studio"):
        if time.time() > deadline: raise SystemExit("studio did not render:\n" + screen("studio") + open(f"{home}/err").read())
        time.sleep(0.05)
    time.sleep(1)
    # 1. key echo in the prompt field (Enter starts editing; End moves to the end).
    tmux("send-keys", "-t", "studio", "Enter")   # edit the prompt; the cursor starts at its end
    time.sleep(0.3)
    echo = []
    for i in range(args.repeats):
        marker = "q" if i % 2 else "Q"
        before = screen("studio").splitlines()[2]
        echo.append(timed("studio", [marker], True, lambda s, b=before: s.splitlines()[2] != b))
        time.sleep(0.05)
    tmux("send-keys", "-t", "studio", "Escape")
    time.sleep(2)
    # 2. slider → preview: focus CFG (two rows down) and step it, alternating up and down.
    tmux("send-keys", "-t", "studio", "j", "j")
    time.sleep(0.3)
    render = []
    cfg = 6.0
    for i in range(max(6, args.repeats // 2)):
        key, cfg = ("l", cfg + 0.5) if i % 2 == 0 else ("h", cfg - 0.5)
        want = f"cfg {cfg:g} ·"
        render.append(timed("studio", [key], False, lambda s, w=want: w in s))
        time.sleep(0.3)
    def ms(xs): return f"median {statistics.median(xs)*1000:.0f} ms, p90 {sorted(xs)[int(len(xs)*0.9)-1]*1000:.0f} ms, max {max(xs)*1000:.0f} ms"
    print(f"tmux round trip (cat pane):            {ms(base)}")
    print(f"key echo in the studio, job running:    {ms(echo)}   (target < 50 ms)")
    print(f"slider → new preview on screen:         {ms(render)}   (target < 1.5 s)")
    print(f"stage-1 job was running throughout:    {'yes' if job.poll() is None else 'NO'}")
finally:
    job.terminate(); job.wait()
    tmux("kill-server")
