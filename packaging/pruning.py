"""Which of the binaries PyInstaller collected the bundle leaves out (used by musicemb.spec; no PyInstaller import,
so the rule is tested on its own)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath


class BrokenLink(Exception):
    """A kept binary links to a dropped library: the app would fail to load it at run time."""


def dropped(dest: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(dest, pat) for pat in patterns)


def prune(binaries: list[tuple], patterns: Iterable[str], links_of: Callable[[str], set[str]], *,
          datas: Iterable[tuple] = ()) -> list[tuple]:
    """The ``(dest, src, kind)`` entries kept: those whose destination matches no pattern, less the shared libraries
    collected only as dependencies (``BINARY`` at the top of the bundle) that link to a dropped library and that no
    kept binary needs (on a desktop with GTK, the dropped GTK theme plugin brings libgtk-3 and libgdk-3, which link
    to the dropped cairo and pango), and so on until none is left. ``links_of(src)``: the file names ``src`` links
    to; ``datas``: the data entries, whose dropped files count as gone too. Raises :class:`BrokenLink` when any
    other kept binary (a plugin, an extension module, a library another kept one needs) links to a dropped one."""
    patterns = list(patterns)
    gone = {PurePosixPath(b[0]).name for b in [*binaries, *datas] if dropped(b[0], patterns)}
    kept = [b for b in binaries if not dropped(b[0], patterns)]
    links = {b[0]: set(links_of(b[1])) for b in kept}
    while True:
        needed = {name for needs in links.values() for name in needs}
        orphans = {dest for dest, _src, kind in kept if kind == "BINARY" and "/" not in dest
                   and links[dest] & gone and PurePosixPath(dest).name not in needed}
        if not orphans:
            break
        gone |= {PurePosixPath(dest).name for dest in orphans}
        kept = [b for b in kept if b[0] not in orphans]
        links = {dest: needs for dest, needs in links.items() if dest not in orphans}
    for dest, _src, _kind in kept:
        if links[dest] & gone:
            raise BrokenLink(f"{dest} links to dropped {sorted(links[dest] & gone)}: keep them")
    return kept
