"""Similarity neighbourhoods on the *check* games of the dev corpus (never used to train or tune the similarity
model): import + embed them with both built-in models (timed), then compare track-level neighbours of
- the similarity space (as `musicemb similar` uses it: the stored track vectors),
- the fingerprint space (mean of its segment vectors),
- MFCC/chroma/spectral statistics (librosa, 80 values per track, standardised over these tracks),
on style 1-NN (same game), precision@5, a logistic probe's macro-F1 (5-fold by track) and the rank of another
version of the same piece. Also `similar`'s query time at 100k tracks against a numpy brute-force baseline.

    .venv/bin/python bench/similarity_data.py && .venv/bin/python bench/bench_similarity.py
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from bench.similarity_data import load_cache, tracks, version_groups  # noqa: E402
from musicemb_core.analysis.track_vectors import aggregate, style_scores, version_ranks  # noqa: E402
from musicemb_core.audio.decode import load  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.index import EmbeddingIndex  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.search.fingerprints import iter_fingerprint  # noqa: E402
from musicemb_core.search.similar import SimilarTracks  # noqa: E402
from musicemb_core.stored_vectors import load_embeddings, load_track_vectors  # noqa: E402


def probe_f1(V: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    keep = np.isin(labels, [g for g in set(labels) if (labels == g).sum() >= 5])
    pred = cross_val_predict(LogisticRegression(max_iter=2000, C=1.0), V[keep], labels[keep],
                             cv=StratifiedKFold(5, shuffle=True, random_state=0))
    return float(f1_score(labels[keep], pred, average="macro"))


def row(name: str, V: np.ndarray, labels: np.ndarray, pieces: np.ndarray) -> dict:
    s = style_scores(V, labels)
    ranks = version_ranks(V, pieces)
    return {"space": name, "style_1nn": round(s["nn1"], 3), "p_at_5": round(s["p_at_k"], 3),
            "probe_macro_f1": round(probe_f1(V, labels), 3), "version_rank1": round(float((ranks == 1).mean()), 3),
            "version_median_rank": float(np.median(ranks)), "version_queries": len(ranks)}


def similar_ranks(space: SimilarTracks, labels: np.ndarray, pieces: np.ndarray) -> dict:
    """As ``similar`` ranks a library track's neighbours (versions sharing its audio first): style 1-NN, the rank of
    each version query's best-ranked other version, and how many tracks were marked as versions (how many
    wrongly)."""
    ranks, marked, wrong, nn1 = [], 0, 0, []
    ids = [int(t) for t in space.track_ids]
    for i, tid in enumerate(ids):
        found = space.similar_to(space.vectors[i], k=len(ids), exclude=[tid], versions=space.versions_of(str(tid), [tid]))
        rows = [space.row[r["track_id"]] for r in found]
        flags = [r["version"] for r in found]
        nn1.append(labels[rows[0]] == labels[i])
        marked += sum(flags)
        wrong += sum(f and (not pieces[i] or pieces[j] != pieces[i]) for f, j in zip(flags, rows, strict=True))
        if pieces[i]:
            ranks.append(next(k for k, j in enumerate(rows, 1) if pieces[j] == pieces[i]))
    ranks = np.array(ranks)
    return {"style_1nn": round(float(np.mean(nn1)), 3), "version_rank1": round(float((ranks == 1).mean()), 3),
            "version_median_rank": float(np.median(ranks)), "versions_marked": marked,
            "versions_marked_wrongly": wrong}


def query_speed(dim: int, n_tracks: int = 100_000, n_queries: int = 200) -> dict:
    rng = np.random.default_rng(0)
    V = rng.standard_normal((n_tracks, dim)).astype(np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    index = EmbeddingIndex("flat").fit(V, np.arange(n_tracks))
    Q = V[rng.integers(0, n_tracks, n_queries)]
    t0 = time.perf_counter()
    for q in Q:
        index.search(q[None, :], 11, threads=1)
    faiss_ms = (time.perf_counter() - t0) / n_queries * 1e3
    t0 = time.perf_counter()
    for q in Q:
        s = V @ q
        np.argpartition(-s, 11)[:11]
    numpy_ms = (time.perf_counter() - t0) / n_queries * 1e3
    return {"tracks": n_tracks, "dim": dim, "faiss_flat_ms": round(faiss_ms, 2), "numpy_ms": round(numpy_ms, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "musicemb-similarity")
    args = ap.parse_args()
    rows_ = tracks("check")
    audio_h = sum(float(r["duration_s"]) for r in rows_) / 3600
    lib_dir = args.work / "check-lib"
    fresh = not (lib_dir / "library.sqlite").exists()
    with Library(lib_dir, create=True) as lib:
        t0 = time.perf_counter()
        drive(iter_ingest(lib, [r["abspath"] for r in rows_]))
        t1 = time.perf_counter()
        drive(iter_embed(lib))
        t2 = time.perf_counter()
        drive(iter_fingerprint(lib))  # the landmarks, as `musicemb embed` builds them (versions in `similar`)
        t_marks = time.perf_counter() - t2
        by_path = {str(Path(r["abspath"]).resolve()): r for r in rows_}
        tid_row = {t.id: by_path[t.path] for t in lib.tracks()}
        sim_ids, sim_V = load_track_vectors(lib, "similarity")
        fp = load_embeddings(lib, "default")
        seg = lib.segments()
        track_of = dict(zip(seg["id"].tolist(), seg["track_id"].tolist(), strict=True))
        fp_ids, fp_V = aggregate(np.asarray(fp.vectors), np.array([track_of[i] for i in fp.ids.tolist()]),
                                 method="mean")
        space = SimilarTracks(lib)
    assert (sim_ids == fp_ids).all()
    meta = [tid_row[int(t)] for t in sim_ids]
    labels = np.array([r["label"] for r in meta])
    piece_of = version_groups(rows_)
    pieces = np.array([piece_of.get(r["track_id"], "") for r in meta], dtype=object)
    cache = load_cache(meta)
    base = np.stack([cache[r["track_id"]]["mfcc_stats"] for r in meta])
    base = (base - base.mean(0)) / (base.std(0) + 1e-9)
    results = [row("similarity (built-in, track vectors)", sim_V, labels, pieces),
               row("similarity as `similar` ranks (versions sharing audio first)", sim_V, labels, pieces)
               | similar_ranks(space, labels, pieces),
               row("fingerprint (built-in default, mean)", fp_V, labels, pieces),
               row("MFCC/chroma/spectral statistics (baseline)", base, labels, pieces)]
    speed = query_speed(sim_V.shape[1])
    t3 = time.perf_counter()
    for r in rows_:  # the baseline for the speed figures: decoding alone, at the models' rate
        load(r["abspath"], sr=16000)
    decode_s = time.perf_counter() - t3
    ingest_s, embed_s = t1 - t0, t2 - t1
    notes = (f"Check games only ({len(rows_)} tracks, {audio_h:.2f} h: {', '.join(sorted(set(labels)))}); "
             f"{len(set(pieces) - {''})} pieces with versions. "
             + (f"Import {audio_h * 3600 / ingest_s:.0f}x real time, embed (both spaces, one decode) "
                f"{audio_h * 3600 / embed_s:.0f}x, together {audio_h * 3600 / (ingest_s + embed_s):.0f}x real time; "
                f"decoding alone (one process) {audio_h * 3600 / decode_s:.0f}x in the same run. "
                if fresh else "Library reused: no import/embed timing. ")
             + (f"Landmarks {audio_h * 3600 / t_marks:.0f}x real time. " if fresh else "")
             + f"`similar` query at {speed['tracks']:,} tracks x {speed['dim']}: FAISS flat {speed['faiss_flat_ms']} ms "
             f"vs numpy brute force {speed['numpy_ms']} ms (1 thread).")
    write_results("similarity", results, notes=notes)
    with open(args.work / "version_pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows(sorted((k, v) for k, v in piece_of.items()))


if __name__ == "__main__":
    main()
