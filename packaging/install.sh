#!/usr/bin/env bash
# Install this built musicemb folder for one user (default PREFIX ~/.local) or system-wide (sudo ./install.sh /usr/local):
# the folder goes to PREFIX/lib/musicemb, the commands to PREFIX/bin, the menu entry, metainfo and icons to
# PREFIX/share. Remove with: rm -rf PREFIX/lib/musicemb PREFIX/bin/musicemb{,-gui} and the files listed at the end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$(realpath -m "${1:-$HOME/.local}")"
APP_ID=io.github.musicemb.MusicEmb
[ -x "$here/musicemb-gui" ] || { echo "install.sh: run me from a built musicemb folder" >&2; exit 1; }

dest="$prefix/lib/musicemb"
if [ "$here" != "$dest" ]; then
  rm -rf "$dest"
  mkdir -p "$prefix/lib"
  cp -a "$here" "$dest"
fi
mkdir -p "$prefix/bin"
ln -sfn "$dest/musicemb" "$prefix/bin/musicemb"
ln -sfn "$dest/musicemb-gui" "$prefix/bin/musicemb-gui"
(cd "$here/share" && find . -type f) | while read -r f; do
  mkdir -p "$prefix/share/$(dirname "$f")"
  cp "$here/share/$f" "$prefix/share/$f"
  echo "  $prefix/share/${f#./}"
done
# The menu entry starts the installed executable even when PREFIX/bin is not on the desktop's PATH.
sed -i "s|^Exec=musicemb-gui|Exec=$dest/musicemb-gui|" "$prefix/share/applications/$APP_ID.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
echo "install.sh: installed $dest; commands in $prefix/bin; menu entry $APP_ID"
