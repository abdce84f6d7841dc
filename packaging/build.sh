#!/usr/bin/env bash
# Build the desktop app as one folder, dist/musicemb/: the executables musicemb and musicemb-gui, their shared
# _internal/ (Python, torch, Qt, resources), share/ (desktop entry, AppStream metainfo, icons) and install.sh.
# Needs the project's .venv (make setup); installs the `package` extra (pinned PyInstaller) into it first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "build.sh: no .venv here: run 'make setup' first" >&2; exit 1; }

mapfile -t pins < <("$PY" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))
                                ["project"]["optional-dependencies"]["package"], sep="\n")')
"$PY" -m pip install -q "${pins[@]}"

start=$(date +%s)
rm -rf dist/musicemb
nice "$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/musicemb.spec

APP_ID=io.github.musicemb.MusicEmb
share=dist/musicemb/share
mkdir -p "$share/applications" "$share/metainfo"
cp packaging/$APP_ID.desktop "$share/applications/"
cp packaging/$APP_ID.metainfo.xml "$share/metainfo/"
for png in resources/icons/musicemb-*.png; do
  n=$(basename "$png" .png); n=${n#musicemb-}
  mkdir -p "$share/icons/hicolor/${n}x${n}/apps"
  cp "$png" "$share/icons/hicolor/${n}x${n}/apps/$APP_ID.png"
done
mkdir -p "$share/icons/hicolor/scalable/apps"
cp resources/icons/musicemb.svg "$share/icons/hicolor/scalable/apps/$APP_ID.svg"
install -m 755 packaging/install.sh dist/musicemb/install.sh

echo "build.sh: built dist/musicemb in $(( $(date +%s) - start )) s, $(du -sh dist/musicemb | cut -f1)"
echo "build.sh: try: dist/musicemb/musicemb --version && dist/musicemb/musicemb-gui --selftest"
