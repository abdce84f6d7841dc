"""The DJ subcommands of ``musicemb``: ``tracks``, ``export``, ``set`` (registered by :mod:`musicemb_core.cli`)."""

from __future__ import annotations

import argparse
import json
import sys

from musicemb_core import cli_args as ca
from musicemb_core.common.errors import MusicEmbError

SIMILAR_K = 20
"""How many tracks ``export --similar-to`` takes by default."""
ROW_FIELDS = ("track_id", "path", "title", "artist", "album", "genre", "label", "duration_s", "bpm", "key",
              "camelot")


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _bpm_text(r: dict) -> str:
    if r["bpm"]:
        return f"{r['bpm']:6.1f}"
    return f"{r['tag_bpm']:5.1f}t" if r.get("tag_bpm") else "     -"


def _camelot_text(r: dict) -> str:
    """Our Camelot code, else the tag key's, else "-" (the one the filters and the set's costs use)."""
    from musicemb_core.features.camelot import camelot
    from musicemb_core.workflows.dj import row_key

    key = row_key(r)
    return "-" if key is None else camelot(key)


def _print_rows(rows: list[dict]) -> None:
    print(f"{'id':>5}  {'bpm':>6}  {'key':<9} {'cam':>3}  artist - title  [label]  {{sounds like}}  "
          "(why a value is missing)")
    for r in rows:
        who = f"{r['artist']} - {r['title']}" if r["artist"] else r["title"]
        key = r["key"] or (f"{r['tag_key']} (tag)" if r.get("tag_key") else "-")
        label = f"  [{r['label']}]" if r["label"] else ""
        why = "; ".join(dict.fromkeys(x for x in (r["bpm_reason"] and f"no bpm: {r['bpm_reason']}",
                                                    r["key_reason"] and f"no key: {r['key_reason']}") if x))
        sounds = f"  {{{r['sounds_like']}}}" if r.get("sounds_like") else ""
        print(ca.shown(f"{r['track_id']:>5}  {_bpm_text(r)}  {key:<9} {_camelot_text(r):>3}  {who}{label}{sounds}"
                       + (f"  ({why})" if why else "")))


def cmd_tracks(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.dj import track_rows

    with Library(a.lib) as lib:
        rows = track_rows(lib, bpm=a.bpm, key_compatible=a.key_compatible, label=a.label)
    if a.json:
        _print_json(rows)
    else:
        _print_rows(rows)
        print(f"{len(rows)} tracks", file=sys.stderr)
    return 0


def _selection(lib, a: argparse.Namespace) -> list[dict]:
    from musicemb_core.workflows.dj import resolve_tracks, track_rows

    rows = {r["track_id"]: r for r in track_rows(lib, bpm=a.bpm, key_compatible=a.key_compatible, label=a.label)}
    if a.similar_to:
        from musicemb_core.search.similar import SimilarTracks
        from musicemb_core.stored_vectors import SIMILARITY_MODEL

        space = SimilarTracks(lib, model=a.model or SIMILARITY_MODEL)
        own = space.resolve(a.similar_to)[1]
        filtered = a.bpm is not None or a.key_compatible is not None or a.label is not None
        wanted = a.k or SIMILAR_K
        k = len(lib.tracks()) if filtered else wanted  # every track ranked: the k nearest of those the filters keep
        ranked = space.query([a.similar_to], k=k)[0]["results"]
        ids = own + [r["track_id"] for r in ranked if r["track_id"] in rows][:wanted]
    elif a.tracks:
        ids = [t.id for t in resolve_tracks(lib, a.tracks)]
    else:
        return list(rows.values())
    return [rows[i] for i in dict.fromkeys(ids) if i in rows]


def cmd_export(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.dj import export, export_target

    if a.similar_to and a.tracks:
        raise ca.UsageError("give track ids/paths or --similar-to, not both")
    if not a.similar_to and (a.k is not None or a.model is not None):  # (they were ignored without a word)
        raise ca.UsageError(f"{'-k' if a.k is not None else '--model'} goes with --similar-to TRACK; give it too")
    export_target(a.out)  # a wrong name is said before the selection is made
    with Library(a.lib) as lib:
        rows = _selection(lib, a)
    if not rows:
        raise MusicEmbError(f"{a.lib}: no track matches the selection; nothing exported")
    out = export(rows, a.out, playlist=a.name)
    print(f"{len(rows)} tracks -> {out}")
    _warn_missing(rows)
    return 0


def _warn_missing(rows: list[dict]) -> None:
    """Say on stderr which exported tracks' files are gone (moved or deleted since the import): a DJ program
    would list them as missing."""
    from pathlib import Path

    gone = [r["path"] for r in rows if not Path(r["path"]).is_file()]
    if gone:
        more = f" and {len(gone) - 1} more" if len(gone) > 1 else ""
        print(f"musicemb: warning: {gone[0]}{more}: the file is not there any more (moved or deleted since the "
              "import); exported with the path the library knows", file=sys.stderr)


def cmd_set(a: argparse.Namespace) -> int:
    from musicemb_core.cli import _run
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.dj import export, export_target, iter_plan_set, resolve_tracks

    if a.out:
        export_target(a.out)  # a wrong name is said before the ordering (6 s for 2,000 tracks), not after
    with Library(a.lib) as lib:
        tracks = resolve_tracks(lib, a.tracks)
        start = None
        if a.start is not None:
            start = resolve_tracks(lib, [a.start])[0]
            if start.id not in {t.id for t in tracks}:
                tracks.insert(0, start)
        plan = _run(iter_plan_set(lib, tracks, start=start, model=a.model), quiet=a.quiet)
    if a.out:  # each row with the cost of the transition into it, as the app's set export has it
        steps = [None, *plan["steps"]]
        export([{**r, "transition_cost": c} for r, c in zip(plan["tracks"], steps, strict=True)], a.out,
               playlist=a.name)
        _warn_missing(plan["tracks"])
    if a.json:
        _print_json({**plan, "out": a.out})
        return 0
    for i, r in enumerate(plan["tracks"]):
        step = f"+{plan['steps'][i - 1]:.3f}" if i else "      "
        who = f"{r['artist']} - {r['title']}" if r["artist"] else r["title"]
        print(ca.shown(f"{i + 1:3d}. {step}  {_bpm_text(r)} {_camelot_text(r):>3}  {who}"))
    print(f"set cost {plan['cost']:.3f} (given order {plan['given_cost']:.3f}, random order "
          f"{plan['random_cost']:.3f}; similarity: {plan['similarity']})" + (f" -> {a.out}" if a.out else ""))
    return 0


def add_parsers(add) -> None:
    """Register the subcommands with ``add(name, func, help) -> parser`` of :func:`musicemb_core.cli.build_parser`."""
    sp = add("tracks", cmd_tracks, "one row per track: title, artist, bpm, key, Camelot code")
    sp.add_argument("lib", type=ca.path)
    _filters(sp)
    sp.add_argument("--json", action="store_true", help="print a JSON list of rows")

    sp = add("export", cmd_export, "export tracks as an M3U8 playlist, rekordbox XML or a CSV table")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("tracks", type=ca.path, nargs="*", metavar="TRACK", help="track ids or paths (default: all, filtered)")
    sp.add_argument("--out", type=ca.path, required=True, metavar="FILE", help="FILE.m3u8, FILE.xml (rekordbox) or FILE.csv")
    sp.add_argument("--name", default="musicemb", help="playlist name in the XML (default musicemb)")
    sp.add_argument("--similar-to", type=ca.path, metavar="TRACK", help="the track (id, path or any audio file) and its -k most "
                    "similar tracks, best first")
    sp.add_argument("-k", type=ca.k_neighbours, help=f"with --similar-to: how many (default {SIMILAR_K})")
    sp.add_argument("--model", type=ca.model_ref, help="with --similar-to: embedding space (default: the similarity "
                    "model)")
    _filters(sp)

    sp = add("set", cmd_set, "order a crate into a set of smooth transitions (similarity, tempo, key)")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("tracks", type=ca.path, nargs="+", metavar="TRACK", help="track ids or paths")
    sp.add_argument("--start", type=ca.path, metavar="TRACK", help="the track to open with (default: the best start)")
    sp.add_argument("--out", type=ca.path, metavar="FILE", help="write the set as FILE.m3u8, FILE.xml (rekordbox) or FILE.csv (with "
                    "each transition's cost)")
    sp.add_argument("--name", default="musicemb set", help="playlist name in the XML (default \"musicemb set\")")
    sp.add_argument("--model", type=ca.model_ref, default="similarity",
                    help="embedding space for the similarity part of the cost (default: the similarity model)")
    sp.add_argument("--json", action="store_true")


def _filters(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--bpm", type=ca.bpm_range, metavar="LO-HI", help="BPM from LO to HI (estimate, else tag)")
    sp.add_argument("--key-compatible", type=ca.musical_key, metavar="KEY",
                    help="keys mixable with KEY (same, +-1 on the Camelot wheel, relative major/minor); KEY like "
                         "'A minor', 'F#m', '8A' or '1m'")
    sp.add_argument("--label", help='only tracks with this label ("" for the unlabelled ones)')
