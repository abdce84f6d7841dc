"""Import + embed speed (both built-in spaces) on real tracks of the check games, before and after, in one run.

Each job runs in a fresh process (as a user's command would), on this checkout and on a baseline revision's
sources (``git archive``): import alone (``iter_ingest``, its default workers), embed alone on that library
(``iter_embed``), the two as one job (this checkout: ``iter_ingest_embed``, one decode), and decoding alone
(``load`` at the models' rate, one process), and the one pass with the tempo/key analysis off. Jobs alternate between the two trees so that the machine's load
falls on both alike. Reported: x real time by wall clock and per CPU-second (user + system of the process and its
workers), and the one-pass vectors against the two-pass ones.

    .venv/bin/python bench/bench_import_embed.py [--baseline REV] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, write_results  # noqa: E402
from bench.similarity_data import tracks  # noqa: E402

BASELINE = "3eaa739"  # before the one-pass import + embed and the hot-spot work
GAMES = ("wesnoth", "warzone2100")

JOB = r"""
import json, resource, sys, time
from musicemb_core.common.progress import drive
from musicemb_core.data.library import Library
kind, lib_dir, paths = sys.argv[1], sys.argv[2], sys.argv[3:]

def cpu():
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))

c0, t0 = cpu(), time.perf_counter()
if kind == "decode":
    from musicemb_core.audio.decode import load
    for p in paths:
        load(p, sr=16000)
else:
    with Library(lib_dir, create=True) as lib:
        if kind == "import":
            from musicemb_core.data.ingest import iter_ingest
            drive(iter_ingest(lib, paths))
        elif kind == "embed":
            from musicemb_core.inference import iter_embed
            drive(iter_embed(lib))
        else:
            from musicemb_core.workflows.ingest_embed import iter_ingest_embed
            drive(iter_ingest_embed(lib, paths, analyse=kind == "one-pass"))
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - c0}))
"""

COMPARE = r"""
import json, sys
import numpy as np
from musicemb_core.data.library import Library
from musicemb_core.inference import load_embeddings
out = {}
with Library(sys.argv[1]) as a, Library(sys.argv[2]) as b:
    for m in ("default", "similarity"):
        ea, eb = load_embeddings(a, m), load_embeddings(b, m)
        same = bool(np.array_equal(ea.ids, eb.ids))
        out[m] = {"same_ids": same, "segments": len(ea.ids),
                  "max_abs_diff": float(np.abs(np.asarray(ea.vectors) - np.asarray(eb.vectors)).max()) if same else None}
print(json.dumps(out))
"""


def run(src: Path, kind: str, lib: Path, paths: list[str], code: str = JOB) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", code, kind, str(lib), *paths], env=env, cwd=tempfile.gettempdir(),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default=BASELINE, help=f"revision measured as 'before' (default {BASELINE})")
    ap.add_argument("--per-game", type=int, default=10, help="tracks per game (first by name; default 10)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    rows_ = [r for g in GAMES for r in sorted((r for r in tracks("check") if r["label"] == g),
                                              key=lambda r: r["track_id"])[:args.per_game]]
    paths = [r["abspath"] for r in rows_]
    audio_s = sum(float(r["duration_s"]) for r in rows_)
    work = Path(tempfile.mkdtemp(prefix="musicemb-import-embed-"))
    base = work / "baseline"
    base.mkdir()
    archive = subprocess.run(["git", "archive", args.baseline, "musicemb_core", "resources"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    for path in paths:  # into the page cache: the first job measured must not pay for the disk
        Path(path).read_bytes()
    trees = {"before": base, "after": ROOT}
    times: dict[tuple[str, str], list[dict]] = {}
    try:
        for rep in range(args.repeat):
            for kind in ("decode", "import", "embed", "one-pass", "one-pass-off"):
                for name, src in trees.items():
                    if kind.startswith("one-pass") and name == "before":
                        continue
                    lib = work / f"{name}-{kind if kind.startswith('one-pass') else 'two'}-{rep}"
                    if kind in ("import", "one-pass", "one-pass-off"):
                        shutil.rmtree(lib, ignore_errors=True)
                    times.setdefault((name, kind), []).append(run(src, kind, lib, paths))
                    print(name, kind, times[(name, kind)][-1], file=sys.stderr)
        same = run(ROOT, str(work / "after-two-0"), work / "after-one-pass-0", [], code=COMPARE)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def best(name: str, kind: str) -> dict:
        return min(times[(name, kind)], key=lambda t: t["wall_s"])

    def row(name: str, what: str, t: dict) -> dict:
        return {"code": name, "job": what, "wall_s": round(t["wall_s"], 1), "cpu_s": round(t["cpu_s"], 1),
                "x_real_time": round(audio_s / t["wall_s"]), "x_real_time_per_cpu_s": round(audio_s / t["cpu_s"])}

    results = []
    for name in trees:
        i, e = best(name, "import"), best(name, "embed")
        two = {k: i[k] + e[k] for k in i}
        results += [row(name, "decode alone (1 process, 16 kHz mono)", best(name, "decode")),
                    row(name, "import alone (2 workers, tempo/key on)", i),
                    row(name, "embed alone (both spaces, one decode)", e),
                    row(name, "import + embed, two passes (ingest, then embed)", two)]
    results.append(row("after", "import + embed, one pass (ingest --embed)", best("after", "one-pass")))
    results.append(row("after", "import + embed, one pass, tempo/key off (--no-analysis)",
                       best("after", "one-pass-off")))
    old_two = results[3]["wall_s"]
    for r in results:
        r["speed-up vs before two passes"] = round(old_two / r["wall_s"], 2)
    notes = (f"{len(rows_)} tracks of the check games {' and '.join(GAMES)} ({audio_s / 3600:.2f} h: Ogg Vorbis "
             f"44.1 kHz and Opus 48 kHz, stereo), {os.cpu_count()} CPUs, best of {args.repeat}; "
             f"'before' = {args.baseline}. Tempo/key analysis on vs off in the one pass: "
             f"{best('after', 'one-pass')['wall_s'] / best('after', 'one-pass-off')['wall_s']:.2f}x the wall clock, "
             f"{best('after', 'one-pass')['cpu_s'] / best('after', 'one-pass-off')['cpu_s']:.2f}x the CPU time. "
             f"One pass vs two passes (this checkout): " + "; ".join(
                 f"{m}: {v['segments']} segments, same ids {v['same_ids']}, max |diff| {v['max_abs_diff']:.1e}"
                 for m, v in same.items()) + ".")
    write_results("import_embed", results, notes=notes)


if __name__ == "__main__":
    main()
