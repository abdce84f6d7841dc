"""Scale-out figures in one run: embedding throughput of the local path vs Ray (a local 2-CPU cluster) on the same
library of real tracks, on-disk IVF-PQ on their real embeddings (recall@10 against exact search) and on 1M (and,
with --ten-million, 10M) synthetic clustered vectors (build time, query time, bytes per vector, memory while
searching), and an estimate of the cluster size and hours needed for 1M tracks.

    nice .venv/bin/python bench/bench_scale.py [--hop 1.5] [--n 1000000] [--ten-million] [--work DIR]

Needs the dev corpus (../shared/bench/build.sh) and the cluster extra (pip install 'musicemb[cluster]').
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # OpenMP threads spinning on shared cores cost more than they give

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import manifest, write_results  # noqa: E402
from musicemb_core.common.config import SegmentConfig  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.index import EmbeddingIndex  # noqa: E402
from musicemb_core.index.ondisk import iter_build_ondisk  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.inference_ray import connect, iter_embed_ray  # noqa: E402
from musicemb_core.stored_vectors import load_embeddings  # noqa: E402

HOURS_1M_TRACKS = 70_000  # ~1M tracks of ~4.2 min
THREADS = 1  # FAISS build threads: on these 2 busy shared cores 1 thread trained faster than 2 (54 s vs 84 s)

MEASURE = """
import json, os, sys, time, numpy as np
from musicemb_core.index import EmbeddingIndex
def rss():
    out, name = {'ivfdata': 0, 'npy': 0}, ''
    for line in open('/proc/self/smaps'):
        f = line.split()
        if f and not f[0].endswith(':'):  # a mapping's header: address perms offset dev inode [path]
            name = f[5] if len(f) > 5 else ''
        elif f and f[0] == 'Rss:':
            for ext in out:
                out[ext] += int(f[1]) * 1024 if name.endswith('.' + ext) else 0
    st = {l.split(':')[0]: int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('Rss')}
    return {**out, 'anon': st['RssAnon'], 'file': st['RssFile']}
path, vectors, nq = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.load(vectors, mmap_mode='r')
rng = np.random.default_rng(7)
Q = np.load(vectors, mmap_mode='r')[np.sort(rng.choice(len(X), nq, replace=False))] + 0.02  # another map
ids = np.arange(len(X), dtype=np.int64)
for f in (path + '.json', vectors):  # out of the page cache: what gets mapped is what the queries read
    data = json.load(open(f))['data'] if f.endswith('.json') else f
    fd = os.open(os.path.join(os.path.dirname(path), os.path.basename(data)), os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
base = rss()
t = time.perf_counter()
index = EmbeddingIndex.load(path).refine_with(X, ids)
load_s = time.perf_counter() - t
lat = []
for q in Q:
    t = time.perf_counter()
    index.search(q, 10, threads=1)
    lat.append(time.perf_counter() - t)
    first = first if len(lat) > 1 else rss()
after = rss()
print(json.dumps({"load_s": load_s, "query_ms": 1000 * float(np.median(lat)),
                  **{k: after[k] - base.get(k, 0) for k in ('anon', 'file', 'ivfdata', 'npy')},
                  **{k + '1': first[k] - base.get(k, 0) for k in ('anon', 'ivfdata', 'npy')}}))
"""


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(t)) / truth.shape[1] for g, t in zip(got, truth, strict=True)]))


def embed_rows(work: Path, hop: float) -> tuple[list[dict], np.ndarray, float]:
    """Local vs Ray embedding of the real dev tracks; returns rows, the embeddings and Ray's x real time."""
    tracks = manifest("real_dev")
    audio_s = sum(float(t["duration_s"]) for t in tracks)
    lib = Library(work / "lib", create=True)
    drive(iter_ingest(lib, [t["abspath"] for t in tracks], segments=SegmentConfig(window_s=3.0, hop_s=hop), jobs=2))
    n_seg = len(lib.segments()["id"])
    t0 = time.perf_counter()
    drive(iter_embed(lib))
    local_s = time.perf_counter() - t0
    ref = load_embeddings(lib)
    ref_vecs = np.array(ref.vectors)
    shutil.rmtree(lib.root / "embeddings")
    t0 = time.perf_counter()
    ray, _ = connect("local", num_cpus=2)
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        report = drive(iter_embed_ray(lib, address=None))
        ray_s = time.perf_counter() - t0
    finally:
        ray.shutdown()
    got = load_embeddings(lib)
    diff = float(np.abs(np.asarray(got.vectors) - ref_vecs).max())
    assert np.array_equal(got.ids, ref.ids) and report.computed == n_seg
    lib.close()
    what = f"{len(tracks)} real tracks, {audio_s / 3600:.2f} h, {n_seg} segments (3 s every {hop:g} s)"
    rows = [
        {"what": "embed, local path (torch, 2 threads)", "value": audio_s / local_s, "unit": "x real time",
         "detail": f"{local_s:.1f} s, {n_seg / local_s:.0f} segments/s; {what}"},
        {"what": "embed, Ray Data, local cluster of 2 CPUs", "value": audio_s / ray_s, "unit": "x real time",
         "detail": f"{ray_s:.1f} s with actor start and model load, {n_seg / ray_s:.0f} segments/s; "
                   f"max |diff| vs local {diff:.1e}"},
        {"what": "Ray local cluster start", "value": start_s, "unit": "s", "detail": "ray.init, before the job"},
    ]
    return rows, ref_vecs, audio_s / ray_s


def real_index_rows(X: np.ndarray, work: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    held = rng.choice(len(X), min(500, len(X) // 10), replace=False)
    base = np.setdiff1d(np.arange(len(X)), held)
    _, truth = EmbeddingIndex("flat").fit(X[base], base).search(X[held], 10, threads=2)
    np.save(work / "real.npy", X)
    index = drive(iter_build_ondisk(np.load(work / "real.npy", mmap_mode="r")[base], base, work / "real.faiss",
                                    threads=THREADS))
    rows = []
    for refine in (False, True):
        index.refine_ = None
        if refine:
            index.refine_with(np.load(work / "real.npy", mmap_mode="r"), np.arange(len(X)))
        lat, got = [], []
        for q in X[held]:
            t = time.perf_counter()
            got.append(index.search(q, 10, threads=1)[1][0])
            lat.append(time.perf_counter() - t)
        rows.append({"what": "IVF-PQ on disk, real embeddings" + (" + re-rank from vectors.npy" if refine else ""),
                     "value": recall(np.array(got), truth), "unit": "recall@10",
                     "detail": f"{len(base)} vectors, nlist {index.meta_['nlist']}, PQ{index.meta_['pq_m']}, nprobe "
                               f"{index.nprobe}; {1000 * float(np.median(lat)):.2f} ms/query (1 thread); "
                               f"{len(held)} held-out queries"})
    return rows


def synthetic(path: Path, n: int, *, dim: int = 128, seed: int = 0) -> np.memmap:
    """Clustered vectors like embeddings (1000 clusters in a 16-d latent space lifted to ``dim``), on disk."""
    rng = np.random.default_rng(seed)
    lift = rng.standard_normal((16, dim)).astype(np.float32)
    centres = 2 * rng.standard_normal((1000, 16)).astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for a in range(0, n, 500_000):
        m = min(500_000, n - a)
        z = centres[rng.integers(0, 1000, m)] + rng.standard_normal((m, 16)).astype(np.float32)
        X[a:a + m] = z @ lift + 0.5 * rng.standard_normal((m, dim)).astype(np.float32)
    X.flush()
    return np.load(path, mmap_mode="r")


def synthetic_rows(n: int, work: Path) -> list[dict]:
    X = synthetic(work / f"syn{n}.npy", n)
    path = work / f"syn{n}.faiss"
    t0 = time.perf_counter()
    stages = {}
    index = drive(iter_build_ondisk(X, np.arange(n), path, threads=THREADS),
                  lambda ev: ev.message == "trained" and stages.setdefault("train", time.perf_counter() - t0))
    build_s = time.perf_counter() - t0
    data = next(work.glob(f"syn{n}.faiss.*.ivfdata")).stat().st_size
    header = path.stat().st_size
    m = json.loads(subprocess.run([sys.executable, "-c", MEASURE, str(path), str(X.filename), "200"],
                                  capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    rng = np.random.default_rng(7)  # the same queries as MEASURE, for recall
    Q = np.asarray(X[np.sort(rng.choice(n, 200, replace=False))]) + 0.02
    truth = _exact(X, Q)
    r_pq = recall(index.search(Q, 10)[1], truth)
    r_ref = recall(index.refine_with(X, np.arange(n)).search(Q, 10)[1], truth)
    nl, pq = index.meta_["nlist"], index.meta_["pq_m"]
    return [
        {"what": f"IVF-PQ on disk, {n:,} synthetic clustered vectors: build", "value": build_s, "unit": "s",
         "detail": f"{THREADS} thread, nlist {nl}, PQ{pq}; training {stages.get('train', 0):.0f} s on a {min(n, max(40 * nl, 10_000)):,} "
                   f"sample, then filled in 250k chunks and merged"},
        {"what": f"IVF-PQ on disk, {n:,}: bytes per vector", "value": data / n, "unit": "B",
         "detail": f".ivfdata {data / 2**20:.1f} MiB + header {header / 2**20:.1f} MiB (centroids, codebooks); "
                   f"raw float32 vectors: {X.shape[1] * 4} B"},
        {"what": f"IVF-PQ on disk, {n:,}: query + re-rank", "value": m["query_ms"], "unit": "ms",
         "detail": f"single query, 1 thread, nprobe 32, 160 candidates re-ranked; recall@10 {r_ref:.3f} "
                   f"(PQ alone {r_pq:.3f}); open {m['load_s']:.2f} s"},
        {"what": f"IVF-PQ on disk, {n:,}: memory growth, open + 200 queries", "value": m["anon"] / 2**20,
         "unit": "MiB private", "detail": f"file pages mapped (page cache, reclaimable): index lists {m['ivfdata'] / 2**20:.1f} of {data / 2**20:.1f} MiB, vectors "
         f"{m['npy'] / 2**20:.0f} of {n * X.shape[1] * 4 / 2**20:.0f} MiB; after the first query: private "
         f"{m['anon1'] / 2**20:.1f} MiB, lists {m['ivfdata1'] / 2**20:.1f} MiB, vectors {m['npy1'] / 2**20:.1f} MiB"},
    ]


def _exact(X, Q, k: int = 10, chunk: int = 1_000_000) -> np.ndarray:
    """Exact cosine top-k of ``Q`` over ``X`` (a memory map), chunk by chunk."""
    best_s, best_i = None, None
    for a in range(0, len(X), chunk):
        s, i = EmbeddingIndex("flat").fit(X[a:a + chunk], np.arange(a, min(len(X), a + chunk))).search(Q, k, threads=2)
        if best_s is None:
            best_s, best_i = s, i
        else:
            s, i = np.hstack([best_s, s]), np.hstack([best_i, i])
            o = np.argsort(-s, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(s, o, 1), np.take_along_axis(i, o, 1)
    return best_i


def estimate(ray_xrt: float, cpus: int, hop: float) -> str:
    """Cluster size and hours for 1M tracks from Ray's measured throughput per CPU."""
    per_cpu = ray_xrt / cpus
    audio_s = HOURS_1M_TRACKS * 3600
    segs = audio_s / hop
    lines = [f"Estimate for 1M tracks (~{HOURS_1M_TRACKS:,} h of audio, ~{segs / 1e6:.0f}M segments of 3 s every "
             f"{hop:g} s): Ray measured {ray_xrt:.0f}x real time on {cpus} CPUs, i.e. {per_cpu:.0f}x per CPU "
             "(decode + log-mel + CNN; CPU actors, no GPU), assumed to scale linearly with CPUs "
             "(tasks and actors share nothing but the object store):"]
    for n_cpu in (64, 256, 1024):
        hours = audio_s / (per_cpu * n_cpu) / 3600
        lines.append(f"- {n_cpu} CPUs: ~{hours:.1f} h; the audio read at ~{per_cpu * n_cpu * 16e3 / 1e6:.0f} MB/s "
                     "from the shared filesystem (128 kbit/s files)")
    lines.append(f"Outputs: vectors {segs * 128 * 4 / 1e9:.0f} GB float32 (128-d), IVF-PQ {segs * 24 / 1e9:.1f} GB "
                 "on disk (24 B/vector); the driver receives 512 B per segment and writes 4096-vector shards.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hop", type=float, default=3.0, help="segment hop of the real library (default 3 s, as a "
                    "new library)")
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic vectors for the IVF-PQ figures")
    ap.add_argument("--ten-million", action="store_true", help="also 10M vectors (~5.5 GB of disk, long)")
    ap.add_argument("--skip-embed", action="store_true", help="only the synthetic index figures")
    ap.add_argument("--work", help="scratch folder (default: a temporary one, removed at the end)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="musicemb-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows, notes = [], ""
    try:
        if not args.skip_embed:
            emb_rows, X, ray_xrt = embed_rows(work, args.hop)
            rows += emb_rows
            print(json.dumps(emb_rows, indent=1), file=sys.stderr)
            rows += real_index_rows(X, work)
            notes = estimate(ray_xrt, 2, args.hop)
        for n in [args.n] + ([10_000_000] if args.ten_million else []):
            rows += synthetic_rows(n, work)
            print(json.dumps(rows[-4:], indent=1), file=sys.stderr)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    write_results("scale", rows, notes=notes + "\n\nOne run on this machine (2 shared CPUs); OMP_WAIT_POLICY=PASSIVE.")


if __name__ == "__main__":
    main()
