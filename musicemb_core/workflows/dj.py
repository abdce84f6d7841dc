"""The DJ's views of a library: one row per track with tempo and key, BPM / harmonic filters, crates exported as
extended M3U8 or rekordbox XML, and a crate ordered into a set of smooth transitions."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

from musicemb_core.common.errors import LibraryError, MusicEmbError
from musicemb_core.common.paths import check_output_folder, output_path, user_path
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.common.tables import csv_cell
from musicemb_core.data.library import Library, Track, track_title
from musicemb_core.features.camelot import Key, camelot, compatible, parse_key_or_none
from musicemb_core.features.tempo_key import key_camelot, key_open, tag_bpm

EXPORT_SUFFIXES = (".m3u8", ".m3u", ".xml", ".csv")
#: The longest set :func:`plan_set` orders (5,000 tracks: a 200 MB cost matrix, about 20 s of ordering).
MAX_SET = 5000


def _tag_key(tags: dict) -> Key | None:
    return parse_key_or_none(tags.get("initialkey") or tags.get("key"))


def track_bpm(t: Track) -> float | None:
    """Our tempo estimate of ``t``, else its tag's (:func:`row_bpm` without making the row)."""
    return t.bpm or tag_bpm(t.tags or {})


def track_key(t: Track) -> Key | None:
    """Our key estimate of ``t``, else its tag's (:func:`row_key` without making the row)."""
    return parse_key_or_none(t.key) or _tag_key(t.tags or {})


def track_row(t: Track, sounds: list[tuple[str, float]] | None = None) -> dict:
    """One track as the DJ sees it: tags, our tempo/key estimate (with confidence, or the reason there is none),
    the tag's BPM/key beside it, and what it sounds like (``sounds``: the tagger's likeliest tags, see
    :func:`~musicemb_core.inference.sounds_like`)."""
    tags = t.tags or {}
    a = t.analysis or {}
    tag_key = _tag_key(tags)
    return {"track_id": t.id, "path": t.path, "title": track_title(tags, t.path),
            "artist": tags.get("artist", ""), "album": tags.get("album", ""), "genre": tags.get("genre", ""),
            "label": t.label, "duration_s": round(t.duration_s, 3),
            "bpm": t.bpm, "bpm_confidence": t.bpm_confidence, "key": t.key, "camelot": key_camelot(t.key),
            "open_key": key_open(t.key), "key_confidence": t.key_confidence,
            "bpm_reason": a.get("bpm_reason", "" if t.analysed else "not analysed"),
            "key_reason": a.get("key_reason", "" if t.analysed else "not analysed"),
            "tag_bpm": tag_bpm(tags), "tag_key": _key_text(tag_key),
            "sounds_like": ", ".join(name for name, _ in sounds or ())}


TRACK_FIELDS = ("track_id", "path", "title", "artist", "album", "genre", "label", "duration_s", "bpm",
                "bpm_confidence", "key", "camelot", "open_key", "key_confidence", "bpm_reason", "key_reason",
                "tag_bpm", "tag_key", "sounds_like")


def _key_text(key: Key | None) -> str | None:
    from musicemb_core.features.camelot import key_name

    return None if key is None else key_name(key)


def row_bpm(row: dict) -> float | None:
    """Our estimate, else the tag's BPM."""
    return row["bpm"] or row["tag_bpm"]


def row_key(row: dict) -> Key | None:
    """Our estimate, else the tag's key."""
    return parse_key_or_none(row["key"] or row["tag_key"])


def bpm_text(row: dict) -> str:
    """The tempo as shown: "128.0", with the tag's beside it where it differs ("128.0 (tag 127)"), "tag 127"
    without an estimate, "" without either."""
    est, tag = row["bpm"], row["tag_bpm"]
    if est is None:
        return "" if tag is None else f"tag {tag:g}"
    return f"{est:.1f}" + ("" if tag is None or abs(tag - est) < 0.5 else f" (tag {tag:g})")


def key_text(row: dict) -> str:
    """The key as shown: "8A  A minor", with the tag's Camelot code beside it where it differs
    ("8A  A minor (tag 9A)"), "9A  E minor (tag)" without an estimate, "" without either."""
    tag = parse_key_or_none(row["tag_key"])
    if row["key"] is None:
        return "" if tag is None else f"{camelot(tag)}  {row['tag_key']} (tag)"
    mine = f"{row['camelot']}  {row['key']}"
    return mine if tag is None or camelot(tag) == row["camelot"] else f"{mine} (tag {camelot(tag)})"


def keep(row: dict, *, bpm: tuple[float, float] | None = None, key_compatible: Key | None = None,
         label: str | None = None, half_double: bool = False) -> bool:
    """Whether ``row`` passes the filters: BPM in [lo, hi] (estimate, else tag; with ``half_double`` its half or
    double also counts, as DJs mix them), key compatible with ``key_compatible`` on the Camelot wheel, label equal
    (``""``: no label). A track without the value filtered on is left out. Tempos are compared as shown, to 0.1
    BPM: a track listed at "128.0" (127.96) passes 128-130."""
    if label is not None and (row["label"] or "") != label:
        return False
    if bpm is not None:
        b = row_bpm(row)
        factors = (1.0, 0.5, 2.0) if half_double else (1.0,)
        if b is None or not any(bpm[0] <= round(b, 1) * f <= bpm[1] for f in factors):
            return False
    if key_compatible is not None:
        k = row_key(row)
        if k is None or not compatible(key_compatible, k):
            return False
    return True


def within_bpm(query: float | None, other: float | None, pct: float) -> bool:
    """``other`` within ``pct`` % of ``query``, half and double time allowed; False when either is unknown."""
    from musicemb_core.analysis.set_order import bpm_gap_percent  # numba: not imported by listings (0.3 s)

    return bool(query and other) and bpm_gap_percent(query, other) <= pct


def track_rows(lib: Library, *, bpm: tuple[float, float] | None = None, key_compatible: Key | None = None,
               label: str | None = None) -> list[dict]:
    """Rows of :func:`track_row` of the tracks passing the filters (:func:`keep`), by id."""
    sounds = library_sounds(lib)
    rows = (track_row(t, sounds.get(t.id)) for t in lib.tracks())
    return [r for r in rows if keep(r, bpm=bpm, key_compatible=key_compatible, label=label)]


def library_sounds(lib: Library) -> dict[int, list[tuple[str, float]]]:
    """:func:`~musicemb_core.inference.sounds_like` of the built-in similarity space; {} where it cannot say
    (not embedded yet, the model missing or damaged): the rows are still given, with that field empty."""
    from musicemb_core.analysis.tag_words import stored_likeliest_tags

    try:
        kept = stored_likeliest_tags(lib)  # no model, no torch: a listing starts in a fraction of a second
        if kept is not None:
            return kept
        # a library embedded before the probabilities were kept: computed from the tagger's raw values
        from musicemb_core.inference import sounds_like

        return sounds_like(lib)
    except MusicEmbError:
        return {}


def resolve_tracks(lib: Library, refs: list[str]) -> list[Track]:
    """Tracks named by path, else by id (the order kept, repeats dropped): a file named "12" in the current folder
    that is not a track does not hide track 12. Raises :class:`LibraryError` naming the first reference that is
    neither."""
    tracks = lib.tracks()
    by_path, by_id = {t.path: t for t in tracks}, {t.id: t for t in tracks}
    out: dict[int, Track] = {}
    for ref in refs:
        text = str(ref)
        try:
            t = by_path.get(str(user_path(text).resolve()))
        except (OSError, RuntimeError):  # a symlink loop: not an imported file
            t = None
        if t is None and text.strip().isdecimal():  # not isdigit: int("²") fails
            t = by_id.get(int(text))
        if t is None:
            raise LibraryError(f"{lib.root}: {text.strip()}: not a track of this library (give a track id or the "
                               "path of an imported file)")
        out.setdefault(t.id, t)
    return list(out.values())


# -- exports ---------------------------------------------------------------------------------------------------

def _write_text(out: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``out`` atomically (:func:`~musicemb_core.common.paths.output_path`: through a symlink,
    keeping the file's permissions); an unwritable place is a one-line error."""
    with output_path(out, "export") as tmp:
        tmp.write_text(text, encoding=encoding, newline="\n")


def m3u8_text(rows: list[dict]) -> str:
    """Extended M3U (UTF-8): ``#EXTINF:seconds,Artist - Title`` then the absolute path, per track (a path with a
    line break as a ``file://`` URI: the playlist is one line per entry)."""
    lines = ["#EXTM3U"]
    for r in rows:
        who = f"{r['artist']} - {r['title']}" if r["artist"] else r["title"]
        path = Path(r["path"]).resolve()
        where = path.as_uri() if "\n" in str(path) or "\r" in str(path) else str(path)
        lines += [f"#EXTINF:{round(r['duration_s'])},{' '.join(who.split())}", where]
    return "\n".join(lines) + "\n"


def _rb_tonality(key: str | None) -> str:
    """rekordbox writes keys as "Am", "F#", "Bbm", and D flat as "Db"/"Dbm" (never "C#")."""
    if not key:
        return ""
    tonic, mode = key.rsplit(" ", 1)
    return {"C#": "Db"}.get(tonic, tonic) + ("m" if mode == "minor" else "")


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def rekordbox_xml(rows: list[dict], *, playlist: str = "musicemb") -> str:
    """rekordbox XML: ``DJ_PLAYLISTS`` with a ``COLLECTION`` of ``TRACK`` (Location as a file://localhost URI,
    Name, Artist, Album, Genre, AverageBpm, Tonality, TotalTime) and a ``PLAYLISTS`` node listing them in order."""
    from musicemb_core.resources import package_version

    root = ET.Element("DJ_PLAYLISTS", Version="1.0.0")
    ET.SubElement(root, "PRODUCT", Name="musicemb", Version=package_version(), Company="musicemb")
    coll = ET.SubElement(root, "COLLECTION", Entries=str(len(rows)))
    for i, r in enumerate(rows, 1):
        uri = Path(r["path"]).resolve().as_uri().replace("file:///", "file://localhost/", 1)
        bpm = row_bpm(r)
        key = r["key"] or r["tag_key"]
        ET.SubElement(coll, "TRACK", TrackID=str(i), Name=r["title"], Artist=r["artist"], Album=r["album"],
                      Genre=r["genre"], Kind=Path(r["path"]).suffix.lstrip(".").upper() + " File",
                      TotalTime=str(round(r["duration_s"])), AverageBpm=f"{bpm:.2f}" if bpm else "0.00",
                      Tonality=_rb_tonality(key), Location=uri)
    pls = ET.SubElement(root, "PLAYLISTS")
    top = ET.SubElement(pls, "NODE", Type="0", Name="ROOT", Count="1")
    node = ET.SubElement(top, "NODE", Name=playlist, Type="1", KeyType="0", Entries=str(len(rows)))
    for i in range(1, len(rows) + 1):
        ET.SubElement(node, "TRACK", Key=str(i))
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")  # without control characters (a tag's, a name's): not XML 1.0
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _NOT_XML.sub("", text) + "\n"


def csv_text(rows: list[dict]) -> str:
    """A table (header first, CRLF rows as in RFC 4180, so a field holding either line break is quoted; cells
    guarded by :func:`~musicemb_core.common.tables.csv_cell`): the position, every field of :func:`track_row`, then
    the fields the rows carry beyond it (a score, a finding's kind and times, a set's transition cost), in
    first-seen order."""
    fields = ["position", *TRACK_FIELDS]
    fields += list(dict.fromkeys(k for r in rows for k in r if k not in fields))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for i, r in enumerate(rows, 1):
        writer.writerow({"position": i, **{k: csv_cell(v) for k, v in r.items()}})
    return buf.getvalue()


def item_rows(tracks: Mapping[int, Track], items: Iterable[dict],
              sounds: Mapping[int, list[tuple[str, float]]] | None = None) -> list[dict]:
    """Rows to export from ``items`` (dicts with a ``track_id``, e.g. neighbours, findings, a set's steps): each
    item's track as :func:`track_row` (with what it sounds like, from ``sounds``: :func:`library_sounds`),
    followed by the item's own other fields. Items of unknown tracks are skipped."""
    sounds = sounds or {}
    return [{**track_row(tracks[t], sounds.get(t)), **{k: v for k, v in it.items() if k not in TRACK_FIELDS}}
            for it in items if (t := int(it["track_id"])) in tracks]


def _unique_tracks(rows: list[dict]) -> list[dict]:
    """The first row of each path: a playlist lists a track once."""
    seen: set[str] = set()
    out = []
    for r in rows:
        if r["path"] not in seen:
            seen.add(r["path"])
            out.append(r)
    return out


def export_target(out: str | Path) -> Path:
    """``out`` as a file to export to, checked before any work: a known format's suffix, not a folder, in a
    folder that is there and writable. Raises :class:`MusicEmbError` naming ``out`` and the problem."""
    out = user_path(out)
    suffix = out.suffix.lower()
    try:
        folder, there = out.is_dir(), out.parent.is_dir()
    except OSError as e:  # a name too long for the file system
        raise MusicEmbError(f"{out}: cannot write the export ({e.strerror or e})") from e
    if folder:
        raise MusicEmbError(f"{out}: is a folder; give a file name like set.m3u8, set.xml or set.csv")
    if not suffix:  # "set" or ".m3u8" (a name that is all suffix has none)
        raise MusicEmbError(f"{out}: name the file with its format, e.g. set.m3u8 (playlist), set.xml (rekordbox) "
                            "or set.csv (table)")
    if suffix not in EXPORT_SUFFIXES:
        raise MusicEmbError(f"{out}: export to .m3u8 (playlist), .xml (rekordbox) or .csv (table), not {suffix}")
    if not there:
        raise MusicEmbError(f"{out}: cannot write the export (no folder {out.parent})")
    check_output_folder(out, "export")
    return out


def export(rows: list[dict], out: str | Path, *, playlist: str = "musicemb") -> Path:
    """Write ``rows`` (in order) to ``out`` (:func:`export_target`): ``.m3u8``/``.m3u``, ``.xml`` (rekordbox) or
    ``.csv`` (every row, UTF-8 with a byte-order mark, without which Excel reads the accents as Latin-1; the
    playlists list each track once)."""
    out = export_target(out)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        text = csv_text(rows)
    elif suffix == ".xml":
        text = rekordbox_xml(_unique_tracks(rows), playlist=playlist)
    else:
        text = m3u8_text(_unique_tracks(rows))
    _write_text(out, text, encoding="utf-8-sig" if suffix == ".csv" else "utf-8")
    return out


# -- sets ------------------------------------------------------------------------------------------------------

def plan_set(lib: Library, tracks: list[Track], *, start: Track | None = None, model: str = "similarity") -> dict:
    """:func:`iter_plan_set` run to the end."""
    return drive(iter_plan_set(lib, tracks, start=start, model=model))


def iter_plan_set(lib: Library, tracks: list[Track], *, start: Track | None = None, model: str = "similarity",
                  cancel: CancelToken | None = None) -> JobGen[dict]:
    """Order ``tracks`` into a set of smooth transitions (see :mod:`musicemb_core.analysis.set_order`), saying
    how far the ordering is.

    Similarity from the library's ``model`` track vectors when it has them (else tempo and key alone, said in
    ``"similarity"``). Returns {"tracks": rows in set order, "cost", "given_cost", "random_cost", "steps",
    "similarity"}.
    """
    import numpy as np

    from musicemb_core.analysis.set_order import iter_order_set, transition_costs
    from musicemb_core.stored_vectors import model_folder

    if len(tracks) < 2:
        got = f"only track {tracks[0].id}" if tracks else "none"
        raise MusicEmbError(f"{lib.root}: a set needs at least 2 different tracks, got {got}")
    if len(tracks) > MAX_SET:
        raise MusicEmbError(f"{lib.root}: a set of {len(tracks)} tracks is too long to order (at most {MAX_SET}: "
                            "its costs grow with the square of its length); order a crate of it")
    vectors, note = None, model
    try:
        from musicemb_core.stored_vectors import load_track_vectors

        ids, V = load_track_vectors(lib, model)
        row_of = {int(t): i for i, t in enumerate(ids)}
        missing = [t.path for t in tracks if t.id not in row_of]
        if missing:
            note = f"none: {missing[0]} is not embedded (run `musicemb embed`)"
        else:
            vectors = np.asarray(V)[[row_of[t.id] for t in tracks]]
    except MusicEmbError as e:
        model_folder(lib, model)  # a model that does not exist at all is an error (a typo), not tempo and key alone
        note = f"none: {e}"
    yield Progress("set", 0, None, f"reading {len(tracks)} tracks")  # after what can fail: an error is one line
    sounds = library_sounds(lib)
    rows = [track_row(t, sounds.get(t.id)) for t in tracks]
    C = transition_costs(vectors, [row_bpm(r) for r in rows], [row_key(r) for r in rows])
    start_i = None if start is None else next(i for i, t in enumerate(tracks) if t.id == start.id)
    plan = yield from iter_order_set(C, start=start_i, cancel=cancel)
    order = plan.pop("order")
    steps = [round(float(C[a, b]), 4) for a, b in zip(order[:-1], order[1:], strict=True)]
    return {"tracks": [rows[i] for i in order], **plan, "steps": steps, "similarity": note}
