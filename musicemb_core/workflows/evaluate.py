"""``iter_evaluate``: probes, kNN votes, clustering, song re-identification from held-out snippets, plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from musicemb_core.analysis.clustering import AUTO_KS, composition, iter_kmeans_select, purity
from musicemb_core.analysis.evaluation import confusion, iter_knn_track_votes, plot_confusion, plot_history
from musicemb_core.analysis.probes import iter_probe_scores
from musicemb_core.audio.decode import load
from musicemb_core.common.errors import AudioError, ConfigError
from musicemb_core.common.progress import CancelToken, JobGen, Progress
from musicemb_core.data import edits
from musicemb_core.data.library import Library
from musicemb_core.search.knn import Searcher
from musicemb_core.stored_vectors import DEFAULT_MODEL, check_finite, check_weights, load_embeddings


def segment_labels(lib: Library, track_ids: np.ndarray, *, segment_ids: np.ndarray | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """Label index per segment (-1 = unlabelled) and the sorted names of the labels these segments carry; with
    ``segment_ids``, a segment's tag counts over its track's label (a track label every segment of which is tagged
    otherwise, or one only on other tracks, is no class)."""
    if segment_ids is None:
        tracks = lib.labels()
        labels = [tracks.get(int(t)) for t in track_ids]
    else:
        labels = edits.labels_of_segments(lib, segment_ids, track_ids)
    names = sorted({v for v in labels if v})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index.get(lab, -1) for lab in labels], dtype=np.int64), names


def reid_snippets(lib: Library, searcher: Searcher, *, n: int, snippet_s: float, rng: np.random.Generator,
                  cancel: CancelToken) -> JobGen[dict]:
    """Top-1/top-2 song re-identification of ``n`` snippets cut at random (not segment-aligned) offsets; snippets
    of tracks whose file cannot be read now are left out (``n`` counts those scored; top-1/top-2 None when none
    was), their paths listed."""
    tracks = long_enough(lib, snippet_s)
    hits1 = hits2 = done = 0
    unreadable: set[str] = set()
    for i in range(n):
        cancel.check()
        t = tracks[rng.integers(len(tracks))]
        start = float(rng.uniform(0, t.duration_s - snippet_s))
        try:
            y, _ = load(t.path, sr=searcher.embedder.sr, offset=start, duration=snippet_s)
        except AudioError:
            unreadable.add(t.path)
            continue
        ranked = searcher.identify(searcher.embed_audio(y), top=2)
        hits1 += bool(ranked) and ranked[0]["track_id"] == t.id
        hits2 += any(r["track_id"] == t.id for r in ranked[:2])
        done += 1
        yield Progress("evaluate", i + 1, n, f"re-identification {i + 1}/{n}")
    return {"snippet_s": snippet_s, "n": done, "top1": hits1 / done if done else None,  # none read: no figure
            "top2": hits2 / done if done else None, "unreadable": sorted(unreadable)}


def long_enough(lib: Library, snippet_s: float) -> list:
    """The tracks a ``snippet_s`` snippet can be cut from; none is a :class:`ConfigError`."""
    tracks = [t for t in lib.tracks() if t.duration_s >= snippet_s]
    if not tracks:
        longest = max((t.duration_s for t in lib.tracks()), default=0.0)
        raise ConfigError(f"re-identification snippets of {snippet_s:g} s: no track is that long (the longest is "
                          f"{longest:.1f} s); give a shorter --snippet or --reid 0")
    return tracks


def iter_evaluate(lib: Library, *, model: str = DEFAULT_MODEL, plots: str | Path | None = None,
                  reid_n: int = 100, snippet_s: float = 3.0, random_state: int = 0,
                  cluster_ks: range | list[int] = AUTO_KS, cancel: CancelToken | None = None) -> JobGen[dict]:
    """Every figure of ``musicemb evaluate`` as one dict (JSON-ready); PNG/JSON files in ``plots`` if given.
    ``cluster_ks``: the k-means k tried (the best silhouette's kept; one k: that one)."""
    cancel = cancel or CancelToken()
    plots = None if plots is None else _plots_folder(plots)
    rng = np.random.default_rng(random_state)
    check_weights(lib, model)  # probes of vectors made by weights trained over since would measure nothing
    emb = load_embeddings(lib, model)
    track_of = dict(zip(*[lib.segments()[k].tolist() for k in ("id", "track_id")], strict=True))
    current = np.array([int(i) in track_of for i in emb.ids], dtype=bool)  # not segments cut again since the embed
    ids, X = emb.ids[current], np.asarray(emb.vectors)[current]
    check_finite(lib, model, ids, X)
    if len(X) < 3:
        raise ConfigError(f"{lib.root}: evaluation needs at least 3 segments embedded with {model!r}, found {len(X)}")
    if reid_n:
        long_enough(lib, snippet_s)
    track_ids = np.array([track_of[int(i)] for i in ids])
    labels, names = segment_labels(lib, track_ids, segment_ids=ids)
    out: dict = {"model": model, "segments": len(X), "tracks": int(len(np.unique(track_ids))), "labels": names}
    known = labels >= 0  # probes need 2 labels on 2 tracks among the embedded segments, not just in the catalogue
    if len(np.unique(labels[known])) >= 2 and len(np.unique(track_ids[known])) >= 2:
        logistic = yield from iter_probe_scores(X, labels, track_ids, kind="logistic", random_state=random_state,
                                                cancel=cancel)
        svm = yield from iter_probe_scores(X, labels, track_ids, kind="svm", random_state=random_state, cancel=cancel)
        out["probe_logistic"] = {k: v for k, v in logistic.items() if k != "predictions"}
        out["probe_svm"] = {k: v for k, v in svm.items() if k != "predictions"}
        cm = confusion(labels[known], logistic["predictions"][known], len(names))
        out["confusion"] = {"labels": names, "matrix": cm.tolist(), "source": "logistic probe, out of fold"}
        knn = yield from iter_knn_track_votes(X, labels, track_ids, cancel=cancel)
        out["knn_tracks"] = {k: knn[k] for k in ("top1", "top2", "n_tracks")}
    cancel.check()
    if min(cluster_ks) >= len(X):
        raise ConfigError(f"{lib.root}: {min(cluster_ks)} clusters need more than the {len(X)} segments embedded "
                          f"with {model!r}")
    clusters = yield from iter_kmeans_select(X, ks=cluster_ks, random_state=random_state, cancel=cancel)
    cancel.check()
    out["clustering"] = {"k": clusters["k"], "ks": clusters["ks"], "silhouette": clusters["silhouette"],
                         "inertia": clusters["inertia"], "composition": composition(clusters["labels"], labels, names),
                         "purity": purity(clusters["labels"], labels) if known.any() else None}
    if reid_n:
        searcher = Searcher(lib, model=model)
        out["reid"] = yield from reid_snippets(lib, searcher, n=reid_n, snippet_s=snippet_s, rng=rng, cancel=cancel)
    runs = [r for r in lib.runs(model) if r["history"]]
    if plots is not None:
        if "confusion" in out:
            plot_confusion(np.array(out["confusion"]["matrix"]), names, plots / "confusion.png",
                           title=f"{model}: logistic probe (out of fold)")
            (plots / "confusion.json").write_text(json.dumps(out["confusion"], indent=2))
        if runs:
            plot_history(runs[-1]["history"], plots / "training.png", title=f"{model}: training run {runs[-1]['id']}")
        _plot_k(out["clustering"], plots / "kmeans.png")
    return out


#: The files ``--plots`` writes.
PLOT_FILES = ("confusion.png", "confusion.json", "training.png", "kmeans.png")


def _plots_folder(plots: str | Path) -> Path:
    """The plots folder, made before the evaluation runs: a file there, a folder taking a plot's name, or a place
    it cannot be made, is an error."""
    plots = Path(plots)
    if plots.exists() and not plots.is_dir():
        raise ConfigError(f"{plots}: is a file; give a folder for the plots")
    taken = [name for name in PLOT_FILES if (plots / name).is_dir()]
    if taken:
        raise ConfigError(f"{plots / taken[0]}: is a folder; the plot {taken[0]} cannot be written there")
    try:
        plots.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{plots}: cannot make the plots folder ({e.strerror or e})") from e
    return plots


def _plot_k(c: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(c["ks"], c["silhouette"], marker="o", label="silhouette (cosine)")
    ax.axvline(c["k"], color="grey", ls="--")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    ax2 = ax.twinx()
    ax2.plot(c["ks"], c["inertia"], color="tab:orange", marker="s", label="inertia (elbow)")
    ax2.set_ylabel("inertia")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize=8)
    ax.set_title(f"k-means: k = {c['k']}" + (" by silhouette" if len(c["ks"]) > 1 else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
