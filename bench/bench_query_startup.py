"""Start-up of the query and listing commands: wall and CPU time (user + system) of ``identify``, ``search``,
``classify``, ``tracks`` and ``export`` run as fresh processes on an indexed library, against a bare
``python -c 'import torch'`` measured in the same run (the ratios are what compare across machines and loads; on
shared cores the CPU time is the steadier), with the model loads each made (calls of ``checkpoint.load_encoder``) and
whether it imported torch and numba.

    nice .venv/bin/python bench/bench_query_startup.py LIB QUERY_AUDIO [--repeat 5] [--source DIR ...]

``--source``: the checkouts whose ``musicemb_core`` is run (default this one), e.g. this one and a copy of an older
revision: their runs alternate, so that both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, write_results  # noqa: E402

# Runs one command with checkpoint.load_encoder wrapped (counting, still loading) as soon as it is imported, then
# writes what the process loaded to $PROBE_OUT.
PROBE = r"""
import importlib.abc, importlib.machinery, json, os, sys
loads = []

class CountLoads(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "musicemb_core.models.checkpoint":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            real = module.load_encoder
            module.load_encoder = lambda *a, **kw: (loads.append(str(a[0])), real(*a, **kw))[1]

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, CountLoads())
from musicemb_core import cli
code = cli.main(sys.argv[1:])
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump({"loads": len(loads), "torch": "torch" in sys.modules, "numba": "numba" in sys.modules}, f)
sys.exit(code)
"""


def _times(argv: list[str], *, cwd: Path, env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _medians(argv: list[str], sources: list[Path], repeat: int, env: dict) -> dict[Path, tuple[float, float, dict]]:
    """Per source: median (wall, CPU) of ``argv`` over ``repeat`` runs after a warm-up (file cache, an index built
    if there was none), the sources alternating; and what its last run's probe wrote."""
    runs: dict[Path, list] = {s: [] for s in sources}
    probes = {}
    for i in range(repeat + 1):
        for s in sources:
            t = _times(argv, cwd=s, env=env)
            if i:
                runs[s].append(t)
            probe = Path(env["PROBE_OUT"])
            probes[s] = json.loads(probe.read_text()) if probe.exists() else {}
            probe.unlink(missing_ok=True)
    return {s: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r), probes[s])
            for s, r in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib")
    ap.add_argument("query")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per command (median; default 5)")
    ap.add_argument("--source", type=Path, nargs="+", default=[ROOT], help="checkouts to run (default: this one)")
    a = ap.parse_args()
    lib, query = str(Path(a.lib).resolve()), str(Path(a.query).resolve())
    work = Path(tempfile.mkdtemp(prefix="query-startup-"))
    env = {**os.environ, "PROBE_OUT": str(work / "probe.json"), "PYTHONDONTWRITEBYTECODE": "1"}
    commands = {"python -c 'import torch'": ["-c", "import torch"],
                "identify": ["-c", PROBE, "identify", lib, query, "--json", "-q"],
                "search": ["-c", PROBE, "search", lib, query, "--json", "-q"],
                "classify": ["-c", PROBE, "classify", lib, query, "--json", "-q"],
                "tracks": ["-c", PROBE, "tracks", lib, "--json", "-q"],
                "export": ["-c", PROBE, "export", lib, "--out", str(work / "crate.xml"), "-q"]}
    rows, torch_s = [], {}
    for name, argv in commands.items():
        for source, (wall, cpu, probe) in _medians([sys.executable, *argv], a.source, a.repeat, env).items():
            torch_s.setdefault(source, (wall, cpu))
            rows.append({"source": str(source), "command": name, "wall_s": round(wall, 2),
                         "wall_x_torch": round(wall / torch_s[source][0], 2), "cpu_s": round(cpu, 2),
                         "cpu_x_torch": round(cpu / torch_s[source][1], 2), "model_loads": probe.get("loads", 0),
                         "imports_torch": probe.get("torch", True), "imports_numba": probe.get("numba", False)})
    rows.sort(key=lambda r: a.source.index(Path(r["source"])))
    write_results("query-startup", rows, notes=f"median of {a.repeat} runs after a warm-up, the sources alternating")


if __name__ == "__main__":
    main()
