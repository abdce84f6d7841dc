"""Query by humming: a library of songs rendered from melodies of the reserved (evaluation-only) collections,
hummed queries rendered with other seeds, ranked by each method; plus query latency on a 10,000-track index.

Methods: ``classifier`` (the seeds' baseline: a CNN trained on the library's song segments, one class per song,
applied to the hum), ``embedding`` (hum encoder -> song-side index), ``rerank`` (embedding candidates re-ranked by
melody alignment: the default of ``musicemb hum``) and ``melody`` (alignment against every song, no embedding).

    .venv/bin/python bench/bench_qbh.py [--songs 160] [--hums 2] [--method all] [--work /tmp/musicemb-qbh]

These songs come from the in-project synthesiser the model trained with; ``bench/qbh_check.py`` is the check split
that tests generalisation (another soundfont, other accompaniments, hums starting anywhere).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import melodies as mel  # noqa: E402
from musicemb_core.data.hum_synthesis import render_hum, render_melody_song  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.index import EmbeddingIndex  # noqa: E402
from musicemb_core.search.qbh import HumSearcher, MelodyStore, iter_build_qbh_index, sparse_melody  # noqa: E402

EVAL_COLLECTIONS = ("oneills1850", "essenFolksong/han")  # Irish fiddle tunes, Chinese (Han) folk songs
SR = 16000


def signature(m: mel.Melody, n: int = 12) -> tuple:
    return tuple(np.diff(m.pitch[:n + 1]).tolist())


def eval_melodies(n: int, seed: int) -> tuple[list[mel.Melody], int]:
    """``n`` distinct melodies of the reserved collections, none sharing its opening with a training melody."""
    train_sigs = {signature(m) for m in mel.load_collections(
        [c for c in mel.TRAINING_COLLECTIONS if c != "generated"], min_notes=13)}
    rng = np.random.default_rng(seed)
    per = {c: mel.load_collections([c], purpose="evaluate", min_notes=24) for c in EVAL_COLLECTIONS}
    chosen, seen, overlap = [], set(), 0
    pools = {c: [per[c][i] for i in rng.permutation(len(per[c]))] for c in per}
    quota = {"oneills1850": n // 2}  # half Irish tunes, half Chinese folk songs
    while len(chosen) < n:
        for c, pool in pools.items():
            if len(chosen) >= n or not pool or sum(m.name.startswith(c) for m in chosen) >= quota.get(c, n):
                continue
            m = pool.pop()
            sig = signature(m)
            if sig in train_sigs:
                overlap += 1
            elif sig not in seen:
                seen.add(sig)
                chosen.append(m)
    return chosen, overlap


def build_library(work: Path, melodies: list[mel.Melody], seed: int) -> tuple[Path, list[dict]]:
    audio = work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    songs = []
    for i, m in enumerate(melodies):
        path = audio / f"song{i:03d}.flac"
        y, timeline, style = render_melody_song(m, seed=seed * 10_000 + i, sr=SR, max_s=40.0)
        if not path.exists():
            sf.write(path, y, SR, subtype="PCM_16")
        songs.append({"path": str(path.resolve()), "melody": m.name, "style": style, "timeline": timeline,
                      "label": f"s{i:03d}"})
    lib_dir = work / "lib"
    with Library(lib_dir, create=True) as lib:
        drive(iter_ingest(lib, [s["path"] for s in songs], labels={Path(s["path"]).name: s["label"] for s in songs}))
    return lib_dir, songs


def make_hums(work: Path, songs: list[dict], n_per: int, seed: int, excerpt_s: float = 10.0) -> list[dict]:
    out = []
    for i, s in enumerate(songs):
        tl = s["timeline"]
        for j in range(n_per):
            rng = np.random.default_rng([seed, i, j])
            last = max(1, int(np.searchsorted(tl[:, 0], tl[-1, 0] - excerpt_s)))
            t0 = tl[rng.integers(0, last), 0]
            sel = tl[(tl[:, 0] >= t0) & (tl[:, 0] < t0 + excerpt_s)]
            notes = np.stack([sel[:, 0] - t0, sel[:, 1], sel[:, 2]], 1)
            h = render_hum(notes, seed=seed * 100_000 + 10 * i + j, sr=SR)
            out.append({"song": i, "y": h.y, "syllable": h.params["syllable"], "tempo": h.params["tempo"]})
    return out


def metrics(ranks: list[int]) -> dict:
    r = np.array(ranks, dtype=float)
    return {"top1": round(float(np.mean(r == 1)), 3), "top10": round(float(np.mean(r <= 10)), 3),
            "mrr": round(float(np.mean(1 / r)), 3)}


def rank_of(results: list[dict], track_id: int, n_tracks: int) -> int:
    ids = [r["track_id"] for r in results]
    return ids.index(track_id) + 1 if track_id in ids else n_tracks  # not returned: counted as last


def classifier_ranks(lib_dir: Path, hums: list[dict], track_of_song: dict, epochs: int) -> list[int]:
    """Train cnn2 on the song segments (one class per song), then rank songs by the mean softmax over the hum's
    3 s windows."""
    from musicemb_core.inference import Embedder
    from musicemb_core.models import ClassifierHead, ModelConfig
    from musicemb_core.models import checkpoint as ckpt
    from musicemb_core.training.config import TrainConfig
    from musicemb_core.training.loop import iter_fit

    with Library(lib_dir) as lib:
        res = drive(iter_fit(lib, name="qbh-classifier", model=ModelConfig(arch="cnn2", dim=64), train=TrainConfig(
            strategy="supervised", epochs=epochs, val_fraction=0.0, patience=0, lr=3e-3, batch_size=32)))
        label_of = {t.id: t.label for t in lib.tracks()}
    emb = Embedder(Path(res.folder))
    info = ckpt.read_info(res.folder)
    head = ClassifierHead(emb.encoder.dim, len(info.labels))
    head.load_state_dict(ckpt.module_state(ckpt.read_tensors(res.folder), "classifier"))
    head.eval()
    ranks = []
    for h in hums:
        y = h["y"]
        n = int(emb.window_s * SR)
        starts = range(0, max(1, len(y) - n + 1), SR)
        clips = np.stack([np.pad(y[a:a + n], (0, max(0, n - len(y[a:a + n])))) for a in starts])
        with torch.no_grad():
            p = torch.softmax(head(torch.from_numpy(emb(clips))), dim=1).mean(0).numpy()
        order = [info.labels[i] for i in np.argsort(-p)]
        ranks.append(order.index(label_of[track_of_song[h["song"]]]) + 1)
    return ranks, res


def latency(searcher: HumSearcher, hums: list[dict], n_tracks: int, seed: int) -> dict:
    """Median time from a finished recording to results on a synthetic index of ``n_tracks`` tracks: clustered
    random song-side vectors (13 segments per track) and random sparse melodies and top voices (40 s each)."""
    rng = np.random.default_rng(seed)
    dim = searcher.index.index_.d
    centres = rng.standard_normal((200, dim))
    seg_per = 13
    track_vec = centres[rng.integers(0, 200, n_tracks)] + 0.5 * rng.standard_normal((n_tracks, dim))
    X = np.repeat(track_vec, seg_per, axis=0) + 0.3 * rng.standard_normal((n_tracks * seg_per, dim))
    ids = np.arange(len(X), dtype=np.int64) + 1
    t0 = time.perf_counter()
    index = EmbeddingIndex("auto").fit(X.astype(np.float32), ids)
    build_s = time.perf_counter() - t0
    frames = int(40 * searcher.model.cfg.frame_rate)
    P = rng.dirichlet(np.full(13, 0.3), size=n_tracks * frames).T
    b, p = sparse_melody(P)
    top = (rng.integers(0, 12, (len(b), 1)).astype(np.uint8), (255 * (rng.random((len(b), 1)) < 0.8)).astype(np.uint8))
    store = MelodyStore(np.arange(n_tracks, dtype=np.int64) + 1, np.arange(n_tracks + 1) * frames, b, p,
                        *top)  # and a top voice per track, as indexed
    segments = {"id": ids, "track_id": np.repeat(np.arange(n_tracks) + 1, seg_per),
                "start_s": np.tile(np.arange(seg_per) * 3.0, n_tracks)}
    big = HumSearcher(searcher.model, index, store, segments, {t: {"path": f"t{t}", "label": None}
                                                              for t in range(1, n_tracks + 1)})
    big.query(hums[0]["y"], SR)  # warm-up (JIT)
    times = []
    for h in hums[:60]:
        t = time.perf_counter()
        big.query(h["y"], SR, k=10)
        times.append(time.perf_counter() - t)
    return {"tracks": n_tracks, "vectors": len(X), "index": index.kind_, "build_s": round(build_s, 1),
            "median_s": round(statistics.median(times), 3), "p90_s": round(float(np.percentile(times, 90)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=160)
    ap.add_argument("--hums", type=int, default=2, help="hummed queries per song")
    ap.add_argument("--model", default="qbh-default")
    ap.add_argument("--method", default="all", choices=("all", "classifier", "embedding", "rerank", "melody"))
    ap.add_argument("--candidates", type=int, default=50, help="tracks the re-rank aligns (as `musicemb hum`)")
    ap.add_argument("--classifier-epochs", type=int, default=15)
    ap.add_argument("--latency-tracks", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-qbh"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    melodies, overlap = eval_melodies(args.songs, args.seed)
    lib_dir, songs = build_library(args.work, melodies, args.seed)
    with Library(lib_dir) as lib:
        track_of_song = {i: lib.track_by_path(s["path"]).id for i, s in enumerate(songs)}
        t1 = time.perf_counter()
        drive(iter_build_qbh_index(lib, model=args.model))
        index_s = time.perf_counter() - t1
        searcher = HumSearcher.open(lib, model=args.model)
    hums = make_hums(args.work, songs, args.hums, args.seed + 1)
    print(f"{len(songs)} songs ({overlap} reserved melodies skipped: same opening as a training melody), "
          f"{len(hums)} hums; QBH index in {index_s:.1f} s", file=sys.stderr)
    methods = ["classifier", "embedding", "rerank", "melody"] if args.method == "all" else [args.method]
    rows = []
    for method in methods:
        t = time.perf_counter()
        if method == "classifier":
            ranks, _ = classifier_ranks(lib_dir, hums, track_of_song, args.classifier_epochs)
        else:
            # rerank as `musicemb hum` runs it: only the embedding's `candidates` best are aligned (asking for
            # more results than that would align them all); a song outside them counts as ranked last
            k = args.candidates if method == "rerank" else len(songs)
            ranks = [rank_of(searcher.query(h["y"], SR, k=k, method=method, candidates=args.candidates),
                             track_of_song[h["song"]], len(songs)) for h in hums]
        by_style = {}
        for st in sorted({s["style"] for s in songs}):
            sel = [r for r, h in zip(ranks, hums, strict=True) if songs[h["song"]]["style"] == st]
            by_style[st] = metrics(sel)["top1"]
        rows.append({"method": method, "songs": len(songs), "queries": len(hums), **metrics(ranks),
                     "s_per_query": round((time.perf_counter() - t) / len(hums), 3),
                     "top1_by_style": " ".join(f"{k} {v:.2f}" for k, v in by_style.items())})
        print(rows[-1], file=sys.stderr, flush=True)
    lat = latency(searcher, hums, args.latency_tracks, args.seed) if args.latency_tracks else {}
    notes = (f"Songs: {len(songs)} melodies of {', '.join(EVAL_COLLECTIONS)} (reserved for evaluation; {overlap} "
             f"skipped for sharing their opening with a training melody), rendered with the demo styles; "
             f"{args.hums} hums per song (10 s excerpts, another voice, key, tempo x0.75-1.33, intonation error, "
             f"room and mic noise). Model: {args.model}. QBH index of the library: {index_s:.1f} s. "
             + (f"Latency, end of recording -> results (`rerank`, k=10) on a synthetic index of "
                f"{lat['tracks']} tracks / {lat['vectors']} vectors ({lat['index']}): median {lat['median_s']} s, "
                f"p90 {lat['p90_s']} s." if lat else "")
             + f" Total bench time {(time.perf_counter() - t0) / 60:.1f} min.")
    write_results("qbh", rows, notes=notes)


if __name__ == "__main__":
    main()
