#!/usr/bin/env bash
# Set up everything musicemb needs on a fresh machine: system packages (apt-get, when root), a .venv in the repo
# with the CPU build of torch pinned, the project with its GUI and dev extras, and numba's first compile warmed.
# Idempotent: a second run only checks and returns.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
APT_PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins xvfb xauth libxcb-icccm4
              libxcb-keysyms1 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-image0
              libxcb-render-util0 libxcb-shape0 libegl1 libgl1 libfontconfig1 libdbus-1-3
              desktop-file-utils appstream)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || {
      apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
  else
    echo "setup: warning: missing system packages (audio device and screenshot tests will be skipped):"
    echo "  sudo apt-get install ${missing[*]}"
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.musicemb-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[gui,dev,cluster]"
  # numba compiles librosa's kernels on first use (30-50 s); do it once here, not in every test run.
  .venv/bin/python -c "import numpy as np, librosa; librosa.feature.mfcc(y=np.zeros(4096, np.float32), sr=22050)" \
    >/dev/null 2>&1 || true
  # the same for the melody alignment kernels (cached beside their source), so a first hum does not pay for it
  .venv/bin/python -c "import numpy as np; from musicemb_core.search.melody_align import CoarseMelodies, align
q = np.arange(20.0) % 12 + 60; align(q, np.full((30, 13), 1 / 13))
z = np.zeros((30, 3), np.uint8); CoarseMelodies(z, z, np.array([0, 30])).scores(q, np.array([0]))" \
    >/dev/null 2>&1 || true
  # ... and UMAP's (kept on disk by musicemb_core.analysis.projection), so a first map does not pay for it
  .venv/bin/python -c "import numpy as np; from musicemb_core.analysis.projection import Projector
X = np.random.default_rng(0).standard_normal((300, 8)); Projector('umap').fit(X).transform(X[:10])" \
    >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi
