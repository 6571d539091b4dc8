#!/usr/bin/env bash
# Installs the Debian packages Troupe builds and tests against. Idempotent: packages already
# present are left alone and apt-get update runs only when something is missing.
# Run as root (or with sudo available). Exits non-zero with a clear message on failure.
set -euo pipefail

packages=(libopenblas-dev libncursesw5-dev libpng-dev libsixel-dev libsixel-bin pkg-config
          tmux xterm xvfb imagemagick)

missing=()
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    :
  else
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} packages already installed (${packages[*]})"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "bootstrap: need root to install: ${missing[*]} (run as root or install sudo)" >&2
    exit 1
  fi
fi

echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get update -qq; then
  echo "bootstrap: apt-get update failed; check the network or the apt sources" >&2
  exit 1
fi
if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "bootstrap: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    echo "bootstrap: $p still not installed after apt-get" >&2; exit 1; }
done
echo "bootstrap: installed ${missing[*]}"
