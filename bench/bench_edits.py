"""Label edits and their undo on a big catalogue: tagging a million segments, relabelling 5,000 tracks, reviewing
1,000 of 40,000 findings, each undone. The app makes these on its window's thread, so their time is time the
window is frozen. The same edits through a per-row reference (a query per value, as the edit log did before)
in the same run are the baseline.

    .venv/bin/python bench/bench_edits.py [--tracks 20000]

Uses bench/bench_library_ui.py's catalogue (made on first use), copied to a temporary folder. Writes
bench/results/edits.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.bench_library_ui import RESULTS, catalogue  # noqa: E402
from musicemb_core.data import edits  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402


def per_row_apply(lib: Library, description: str, changes: list) -> None:
    """The reference: one SELECT and one write per value, one finding lookup per logged finding."""
    with lib.transaction() as c:
        done = []
        for kind, key, after in changes:
            table, col, idcol, _ = edits.FIELDS[kind]
            row = c.execute(f"SELECT {col} FROM {table} WHERE {idcol}=?", (key,)).fetchone()
            before = row[0] if row else None
            if before != after:
                if kind != "segment_tag":
                    c.execute(f"UPDATE {table} SET {col}=? WHERE {idcol}=?", (after, key))
                elif after is None:
                    c.execute("DELETE FROM segment_labels WHERE segment_id=?", (key,))
                else:
                    c.execute("INSERT OR REPLACE INTO segment_labels VALUES (?, ?)", (key, after))
                done.append({"kind": kind, "id": key, "before": before, "after": after})
        c.execute("INSERT INTO edits (at, description, changes) VALUES (?, ?, ?)",
                  (time.time(), description, json.dumps(done)))


def per_row_undo(lib: Library, about: dict[int, tuple]) -> None:
    """The reference undo: per change, the finding about the same thing looked up, its value read and written."""
    with lib.transaction() as c:
        eid, changes = c.execute("SELECT id, changes FROM edits WHERE undone_at IS NULL ORDER BY id DESC").fetchone()
        for ch in reversed(json.loads(changes)):
            kind, key = ch["kind"], ch["id"]
            table, col, idcol, _ = edits.FIELDS[kind]
            if kind == "finding_status":
                key = c.execute("SELECT id FROM findings WHERE kind=? AND track_id=? AND start_s IS ? AND end_s IS ? "
                                "ORDER BY id != ? LIMIT 1", (*about[key], key)).fetchone()[0]
            row = c.execute(f"SELECT {col} FROM {table} WHERE {idcol}=?", (key,)).fetchone()
            if (row[0] if row else None) == ch["after"]:
                if kind != "segment_tag":
                    c.execute(f"UPDATE {table} SET {col}=? WHERE {idcol}=?", (ch["before"], key))
                elif ch["before"] is None:
                    c.execute("DELETE FROM segment_labels WHERE segment_id=?", (key,))
                else:
                    c.execute("INSERT OR REPLACE INTO segment_labels VALUES (?, ?)", (key, ch["before"]))
        c.execute("UPDATE edits SET undone_at=? WHERE id=?", (time.time(), eid))


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=20_000)
    ap.add_argument("--segments", type=int, default=1_000_000)
    args = ap.parse_args()
    source = catalogue(RESULTS / f"ui_library_{args.tracks}", args.tracks)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        shutil.copytree(source, root)
        with Library(root) as lib:
            seg = lib.segments()
            track_ids = [t.id for t in lib.tracks()]
            segs = [int(s) for s in seg["id"][:args.segments]]
            with lib.transaction() as c:  # 40,000 open findings, two per track
                c.executemany("INSERT INTO findings (kind, track_id, start_s, end_s, score) VALUES (?, ?, ?, ?, ?)",
                              [(k, t, 0.0, 3.0, 0.5) for t in track_ids for k in ("noise", "hum")])
            fids = [r[0] for r in lib.conn.execute("SELECT id FROM findings ORDER BY id")]
            about = {r[0]: r[1:] for r in lib.conn.execute("SELECT id, kind, track_id, start_s, end_s FROM findings")}
            picked = [int(f) for f in np.random.default_rng(0).choice(fids, 1000, replace=False)]
            cases = {f"tag {len(segs):,} segments": ("segment_tag", segs, "kick"),
                     "relabel 5,000 tracks": ("track_label", track_ids[:5000], "relabelled"),
                     "dismiss 1,000 of 40,000 findings": ("finding_status", picked, "dismissed")}
            result = {"tracks": len(track_ids), "segments": int(len(seg["id"]))}
            for name, (kind, keys, value) in cases.items():
                changes = [(kind, k, value) for k in keys]
                new = timed(edits.apply_edit, lib, name, changes)
                new_undo = timed(edits.undo_last, lib)
                ref = timed(per_row_apply, lib, name, changes)
                ref_undo = timed(per_row_undo, lib, about)
                result[name] = {"edit (s)": round(new, 3), "per-row edit (s)": round(ref, 3),
                                "edit speed-up": round(ref / new, 1), "undo (s)": round(new_undo, 3),
                                "per-row undo (s)": round(ref_undo, 3), "undo speed-up": round(ref_undo / new_undo, 1)}
                print(name, result[name], flush=True)
    (RESULTS / "edits.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
