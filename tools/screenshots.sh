#!/usr/bin/env bash
# Screenshots of every studio screen for the README: a demo store (a character with a target,
# a OneActor tuning, a stage-1 LoRA and a grid of its methods) made with the CLI, then the studio in xterm
# (VT340 mode: sixel) under Xvfb, one screen at a time, photographed with ImageMagick.
# Usage: tools/screenshots.sh [OUT_DIR]   (default docs/screens; needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screens}
troupe=$PWD/.build/release/troupe
home=$(mktemp -d)
export TROUPE_HOME=$home
trap 'kill $xvfb 2>/dev/null || true; rm -rf "$home"' EXIT
mkdir -p "$out"

"$troupe" character new Ada --prompt "a knight with red hair" --base-word knight --seed 7 >/dev/null
"$troupe" generate --character Ada --count 4 --seed 7 -o "$home/pick.png" 2>/dev/null >/dev/null || \
  "$troupe" generate --prompt "a knight with red hair" --count 4 --seed 7 -o "$home/pick.png" >/dev/null 2>&1
"$troupe" character accept Ada "$home/pick.png" "$home/pick-2.png" >/dev/null
"$troupe" character reject Ada "$home/pick-3.png" >/dev/null
"$troupe" tune oneactor Ada --preview-every 25 >/dev/null 2>&1
"$troupe" tune stage1 Ada --preview-every 50 >/dev/null 2>&1
"$troupe" grid --character Ada --methods all -o "$home/characters/Ada/grids/demo-methods.png" >/dev/null 2>&1

Xvfb :71 -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 & xvfb=$!
sleep 1.5
for screen in characters character generate tune compare; do
  DISPLAY=:71 xterm -ti vt340 -xrm 'XTerm*decTerminalID: vt340' -xrm 'XTerm*numColorRegisters: 256' \
    -fa 'DejaVu Sans Mono' -fs 10 -geometry 118x36+0+0 -bg '#101014' -fg '#d0d0d0' \
    -e sh -c "TERM=xterm-256color '$troupe' --character Ada --screen $screen; sleep 30" &
  term=$!
  sleep 5
  id=$(DISPLAY=:71 xwininfo -root -tree | awk '/xterm/ {print $1; exit}')
  DISPLAY=:71 import -window "$id" "$out/$screen.png"
  kill $term 2>/dev/null || true; wait $term 2>/dev/null || true
  echo "$out/$screen.png"
done
