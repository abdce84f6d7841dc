"""``iter_inspect``: mislabelled tracks and segments, outliers, near-duplicates (from a model's embeddings) and
faulty-recording segments (from the signal), stored in the library's ``findings`` table.

Re-running replaces the findings of the kinds computed; a finding accepted or dismissed before keeps its
status when it turns up again. A cancelled run stores nothing.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicemb_core.analysis import fault_judge, faults, inspection
from musicemb_core.audio.decode import load
from musicemb_core.common.errors import AudioError, Cancelled, ConfigError, LibraryError
from musicemb_core.common.paths import check_output_folder, output_path
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.common.tables import check_table_path, write_table
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.stored_vectors import (
    SIMILARITY_MODEL,
    DamagedEmbeddings,
    StaleEmbeddings,
    check_finite,
    check_weights,
    load_embeddings,
    load_track_vectors,
    model_folder,
)
from musicemb_core.workflows.evaluate import segment_labels

EMBEDDING_KINDS = ("label", "outlier", "duplicate")
KINDS = (*EMBEDDING_KINDS, *faults.KINDS)
CHUNK_S = 300.0  # decode long files this many seconds at a time


@dataclass
class InspectReport:
    """``findings``: the stored rows of the kinds computed (see :meth:`Library.findings`)."""

    findings: list[dict]
    kinds: list[str]
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False


def as_json(row: dict) -> dict:
    """A stored finding as in the CLI contract; ``label`` findings also carry ``given`` and ``suggested``."""
    out = {k: row[k] for k in ("kind", "path", "track_id", "start_s", "end_s", "score", "reason", "segment_id",
                               "id", "status")}
    if row["kind"] == "label":
        out["given"], out["suggested"] = row["details"]["given"], row["details"]["suggested"]
    return {**out, "details": row["details"]}


def _segment_audio(path: str, starts: np.ndarray, durations: np.ndarray):
    """(channels, n) audio of each segment at the file's own rate, decoding ``CHUNK_S`` at a time; and the rate."""
    out, sr = [None] * len(starts), 0
    chunk_of = np.floor(starts / CHUNK_S)
    for c in np.unique(chunk_of):
        rows = np.flatnonzero(chunk_of == c)
        t0 = float(starts[rows].min())
        y, sr = load(path, mono=False, offset=t0, duration=float((starts[rows] + durations[rows]).max()) - t0)
        y = np.atleast_2d(y)
        for r in rows:
            a = int(round((starts[r] - t0) * sr))
            out[r] = y[:, a:a + int(round(durations[r] * sr))]
    return out, sr


def _fault_rows(lib: Library, kinds: set[str], thresholds: dict | None, cancel: CancelToken,
                failed: list) -> JobGen[list[dict]]:
    seg = lib.segments()
    tracks = {t.id: t for t in lib.tracks()}
    tids = np.unique(seg["track_id"])
    by_track = dict(zip(tids.tolist(), inspection.rows_by_track(seg["track_id"], tids), strict=True))
    order = tids.tolist()

    def decode(tid: int):
        rows = by_track[tid]
        try:
            audio, sr = _segment_audio(tracks[tid].path, seg["start_s"][rows], seg["duration_s"][rows])
        except AudioError as e:
            return tid, rows, None, 0, e.reason
        if sr < faults.MIN_SR:  # one such file is left out, not the whole library's checks
            return tid, rows, None, 0, f"its sample rate ({sr} Hz) is below the {faults.MIN_SR} Hz the fault checks need"
        return tid, rows, audio, sr, ""

    judged: list[tuple[int, np.ndarray, dict]] = []
    clock = EtaClock()
    dead = {**faults.THRESHOLDS, **(thresholds or {})}["dead"]
    yield Progress("inspect", 0, len(order), f"signal faults in {len(seg['id'])} segments")
    with ThreadPoolExecutor(1) as pool:  # decode the next track while this one is measured
        for done, (tid, rows, audio, sr, err) in enumerate(pool.map(decode, order), 1):
            cancel.check()
            if audio is None:
                failed.append((tracks[tid].path, err))
                continue
            values = fault_judge.track_values([faults.measure(y, sr) for y in audio], starts=seg["start_s"][rows],
                                              dead_db=dead)
            judged.append((tid, rows, values))
            yield Progress("inspect", done, len(order), tracks[tid].path, clock.eta(done, len(order)))
    reference = fault_judge.LibraryReference.fit([v for _, _, v in judged])
    out: list[dict] = []
    for tid, rows, values in judged:
        found = fault_judge.decide(values, reference=reference, thresholds=thresholds)
        for r, fs in zip(rows, found, strict=True):
            out += [{"kind": f.kind, "segment_id": int(seg["id"][r]), "track_id": tid,
                     "start_s": float(seg["start_s"][r]), "end_s": float(seg["start_s"][r] + seg["duration_s"][r]),
                     "score": f.score, "reason": f.reason, "details": f.details} for f in fs if f.kind in kinds]
    return out


MIXED_SHARE = 0.25  # a track keeping its label with this share of its segments voting otherwise is mixed


def _carried_labels(labels: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """``labels`` renumbered over the ``names`` some row carries, and those names: a label only on tracks not
    embedded is no class to vote for (its index had no column, or every vote's prior divided by zero)."""
    used = np.unique(labels[labels >= 0])
    return np.where(labels >= 0, np.searchsorted(used, labels), -1), [names[i] for i in used]


def _label_rows(lib, X, ids, track_ids, seg_pos, seg, model, skipped, labels, names, index,
                cancel) -> JobGen[list[dict]]:
    """One finding per track whose label looks wrong (the labels of the most similar other tracks, by the model's
    track vectors, name another label; score: how far its label's probability falls below that of the label's
    typical track),
    carrying the segments that argue most for
    the suggested label; segment findings only in *mixed* tracks (the label holds overall, for the track and for
    the mean of its segments, but at least :data:`MIXED_SHARE` of the segments confidently vote otherwise), scored by that share and ranked below every
    track finding."""
    labelled = np.unique(track_ids[labels >= 0])
    if len(names) < 2 or len(labelled) < 2:
        skipped.append("label: needs at least 2 labels on at least 2 tracks")
        return []
    try:
        res = yield from inspection.iter_label_issues(X, labels, track_ids, track_vectors=load_track_vectors(
            lib, model), index=index, cancel=cancel)
    except ConfigError as e:
        skipped.append(f"label: {e}")
        return []
    tracks = {t.id: t for t in lib.tracks()}
    seg_track = track_ids[res["rows"]]

    def where(j: int) -> dict:
        p = seg_pos[int(ids[res["rows"][j]])]
        return {"segment_id": int(ids[res["rows"][j]]), "start_s": float(seg["start_s"][p]),
                "end_s": float(seg["start_s"][p] + seg["duration_s"][p])}

    out = []
    by_track = inspection.rows_by_track(seg_track, res["tracks"])
    carriers = np.bincount(res["track_label"], minlength=len(names))
    for i, tid in enumerate(res["tracks"]):
        given, best = int(res["track_label"][i]), int(res["track_suggested"][i])
        mine = by_track[i]
        if best != given:
            arguing = mine[np.argsort(-res["probs"][mine, best], kind="stable")[:5]]
            share = res["track_probs"][i, best]
            out.append({"kind": "label", "segment_id": None, "track_id": int(tid), "start_s": 0.0,
                        "end_s": float(tracks[int(tid)].duration_s),
                        "score": round(float(res["track_score"][i]), 4),
                        "reason": (f"only track labelled {names[given]!r} (no other track to compare it with); "
                                   f"it sounds most like {names[best]!r} ({100 * share:.0f} %)"
                                   if carriers[given] == 1 else
                                   f"label looks wrong: {names[given]!r}, probably {names[best]!r} "
                                   f"({100 * share:.0f} % probability, {100 * res['track_disagree'][i]:.0f} % of "
                                   "its segments disagree)"),
                        "details": {"given": names[given], "suggested": names[best], "scope": "track",
                                    "model": model, "confident": bool(res["track_issue"][i]),
                                    "example_segment_id": where(int(arguing[0]))["segment_id"],
                                    "segments": [{**where(int(j)), "p": round(float(res["probs"][j, best]), 4)}
                                                 for j in arguing],
                                    "quality": round(float(res["track_quality"][i]), 4),
                                    "mistakenness": round(float(res["track_mistakenness"][i]), 4),
                                    "probs": {n: round(float(p), 4) for n, p in zip(names, res["track_probs"][i],
                                                                                      strict=True)}}})
            continue
        if int(np.argmax(res["track_segment_probs"][i])) != given:  # its segments as a whole disagree, but the
            continue  # tracks most like it (a fuller view) keep its label: not mixed, just a weaker view
        off = mine[res["issue"][mine] & (np.argmax(res["probs"][mine], axis=1) != given)]
        mixed = len(off) / max(len(mine), 1)
        if len(off) < 2 or mixed < MIXED_SHARE:
            continue
        for j in off:
            other = int(np.argmax(res["probs"][j]))
            out.append({"kind": "label", **where(int(j)), "track_id": int(tid),
                        "score": round((1 - float(res["quality"][j])) * mixed, 4),
                        "reason": f"mixed track: this segment sounds like {names[other]!r}, not its track's "
                                  f"{names[given]!r} ({100 * res['probs'][j, other]:.0f} %; {100 * mixed:.0f} % of "
                                  "the track's segments do)",
                        "details": {"given": names[given], "suggested": names[other], "scope": "segment",
                                    "model": model, "mixed_share": round(mixed, 4),
                                    "quality": round(float(res["quality"][j]), 4),
                                    "mistakenness": round(float(res["mistakenness"][j]), 4)}})
    whole = [r["score"] for r in out if r["segment_id"] is None]
    floor = min(whole, default=1.0)
    for r in out:  # parts of mixed tracks rank below every whole-track finding
        if r["segment_id"] is not None:
            r["score"] = round(r["score"] * floor, 4)
    return out


def _neighbour_rows(lib, X, ids, track_ids, seg_pos, seg, kinds, model, skipped, index,
                    cancel) -> JobGen[list[dict]]:
    if len(np.unique(track_ids)) < 2:
        skipped.append("outlier/duplicate: need at least 2 tracks")
        return []
    tracks = {t.id: t for t in lib.tracks()}
    dist, nbr = yield from inspection.iter_other_track_neighbours(X, track_ids, k=min(10, len(X) - 1), index=index,
                                                                  cancel=cancel)

    def where(row):
        p = seg_pos[int(ids[row])]
        return {"segment_id": int(ids[row]), "track_id": int(track_ids[row]), "start_s": float(seg["start_s"][p]),
                "end_s": float(seg["start_s"][p] + seg["duration_s"][p])}

    out = []
    if "outlier" in kinds:
        lib_o, own = inspection.outliers(dist), inspection.track_outliers(X, track_ids)
        for row in np.flatnonzero(lib_o["flag"] | own["flag"]):
            reasons, sev = [], 0.0
            if lib_o["flag"][row]:
                sev = lib_o["z"][row] / lib_o["threshold"]
                reasons.append(f"unlike the rest of the library: mean distance {lib_o['mean_dist'][row]:.3f} to its "
                               f"nearest segments of other tracks (typical {lib_o['median']:.3f})")
            if own["flag"][row]:
                sev = max(sev, own["z"][row] / own["threshold"])
                reasons.append(f"far from its own track: distance {own['dist'][row]:.3f} to the track's centre "
                               f"(typical {own['track_median'][row]:.3f})")
            out.append({"kind": "outlier", **where(row), "score": round(float(sev), 4), "reason": "; ".join(reasons),
                        "details": {"model": model, "library_z": round(float(lib_o["z"][row]), 3),
                                    "track_z": round(float(own["z"][row]), 3)}})
    if "duplicate" in kinds:
        dup = inspection.near_duplicates(dist, nbr)
        for row, other, d in dup["pairs"]:
            o = where(other)
            path = tracks[o["track_id"]].path
            out.append({"kind": "duplicate", **where(row), "score": round(1 - d / max(dup["limit"], 1e-9), 4),
                        "reason": f"near-duplicate of {path} at {o['start_s']:.1f} s (cosine distance {d:.4f}, "
                                  f"typical nearest {dup['median']:.3f})",
                        "details": {"model": model, "other_segment_id": o["segment_id"],
                                    "other_track_id": o["track_id"], "other_path": path,
                                    "other_start_s": o["start_s"], "distance": round(d, 6)}})
    return out


@layout.writes_library("inspect")
def iter_inspect(lib: Library, *, model: str = SIMILARITY_MODEL, kinds: str | list[str] | tuple[str, ...] | None = None,
                 thresholds: dict | None = None, cancel: CancelToken | None = None) -> JobGen[InspectReport]:
    """Compute the findings of ``kinds`` (default all of :data:`KINDS`) and store them; yields progress per track.

    Embedding kinds need ``model``'s embeddings (``musicemb embed``); without them they are skipped and named
    in the report's ``skipped``. ``thresholds`` overrides :data:`faults.THRESHOLDS`.
    """
    cancel = cancel or CancelToken()
    kinds = list(dict.fromkeys(KINDS if kinds is None else [kinds] if isinstance(kinds, str) else kinds))  # one
    # kind alone; a kind named twice is computed once (its findings were listed once per naming)
    if not kinds:
        raise ConfigError(f"no finding kind named; kinds: {', '.join(KINDS)}")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown finding kind {unknown[0]!r}; kinds: {', '.join(KINDS)}")
    for name, value in (thresholds or {}).items():  # an unknown name was ignored, a NaN found nothing
        if name not in faults.THRESHOLDS:
            raise ConfigError(f"thresholds: unknown fault kind {name!r}; kinds: {', '.join(faults.THRESHOLDS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"thresholds: {name} must be a finite number, got {value!r}")
    report = InspectReport([], kinds)
    rows: list[dict] = []
    seg = lib.segments()
    seg_pos = {int(s): i for i, s in enumerate(seg["id"])}
    try:
        emb_kinds = [k for k in kinds if k in EMBEDDING_KINDS]
        if emb_kinds:
            yield Progress("inspect", 0, None, f"label issues, outliers and duplicates ({model})")
            try:
                check_weights(lib, model)  # vectors of weights trained over since judge nothing
                emb = load_embeddings(lib, model)
            except LibraryError as e:
                model_folder(lib, model)  # a model that does not exist at all is an error, not a skip
                emb = None
                why = f"its embeddings were {e.why}" if isinstance(e, StaleEmbeddings) else "no embeddings"
                report.skipped.append(f"{'/'.join(emb_kinds)}: {e}" if isinstance(e, DamagedEmbeddings) else  # names
                                      f"{'/'.join(emb_kinds)}: {why} for model {model!r}; run `musicemb embed` first")
                report.kinds = [k for k in kinds if k not in EMBEDDING_KINDS]
            if emb is not None and len(seg["id"]) and not any(int(i) in seg_pos for i in emb.ids):
                report.skipped.append(f"{'/'.join(emb_kinds)}: none of the segments embedded with {model!r} is in "
                                      "the library now (cut again since); run `musicemb embed` first")
                report.kinds = [k for k in kinds if k not in EMBEDDING_KINDS]  # (they said "need 2 tracks")
                emb = None
            if emb is not None:
                keep = np.array([int(i) in seg_pos for i in emb.ids], dtype=bool)
                ids = emb.ids[keep]
                X = np.asarray(emb.vectors)[keep].astype(np.float32)
                check_finite(lib, model, ids, X)
                track_ids = seg["track_id"][[seg_pos[int(i)] for i in ids]]
                labels, names = _carried_labels(*segment_labels(lib, track_ids)) if "label" in kinds else (None, [])
                near = {"outlier", "duplicate"} & set(kinds)
                index = None  # one index for both searches when they search the same rows (every one labelled)
                if "label" in kinds and near and (labels >= 0).all() and len(np.unique(track_ids)) > 1:
                    index = yield from inspection.iter_neighbour_index(X, cancel=cancel)
                if "label" in kinds:
                    rows += yield from _label_rows(lib, X, ids, track_ids, seg_pos, seg, model, report.skipped,
                                                   labels, names, index, cancel)
                cancel.check()
                if near:
                    rows += yield from _neighbour_rows(lib, X, ids, track_ids, seg_pos, seg, set(kinds), model,
                                                       report.skipped, index, cancel)
        fault_kinds = {k for k in kinds if k in faults.KINDS}
        if fault_kinds:
            rows += yield from _fault_rows(lib, fault_kinds, thresholds, cancel, report.failed)
    except Cancelled:
        report.cancelled = True
        return report
    lib.replace_findings(rows, kinds=report.kinds)
    report.findings = lib.findings(kinds=report.kinds)
    return report


def check_findings_path(path: str | Path) -> None:
    """Refuse, before the inspection runs, an ``--out`` that :func:`export_findings` cannot write."""
    if Path(path).suffix.lower() not in (".json", ".csv", ".parquet"):
        raise ConfigError(f"{path}: write the findings to .csv, .parquet or .json")
    if Path(path).suffix.lower() != ".json":
        check_table_path(path)
    else:
        check_output_folder(path, "findings")


def export_findings(rows: list[dict], path: str | Path) -> None:
    """Write :func:`as_json` rows to ``.json`` (``{"findings": [...]}``) or ``.csv`` (details as JSON text)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        with output_path(path, "findings") as tmp:
            tmp.write_text(json.dumps({"findings": rows}, indent=2), encoding="utf-8")
        return
    cols = ["kind", "score", "reason", "path", "track_id", "segment_id", "start_s", "end_s", "given", "suggested",
            "status", "id", "details"]
    write_table([{c: json.dumps(r[c]) if c == "details" else r.get(c, "") for c in cols} for r in rows], path,
                columns=cols)
