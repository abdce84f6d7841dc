"""Evaluation on arrays: leave-one-track-out kNN votes, top-k accuracy, confusion matrices, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicemb_core.analysis.checks import check_count, check_per_row, check_vectors
from musicemb_core.index import EmbeddingIndex


def knn_track_votes(X: np.ndarray, labels: np.ndarray, track_ids: np.ndarray, *, k: int = 10) -> dict:
    """Each track's label predicted from the k nearest labelled segments of *other* tracks, votes summed over the
    track's segments (leave-one-track-out, so a track never votes for itself); a track's own label is the most
    common of its segments' (a segment tag counts over its track's label). A track no labelled segment votes
    for is a miss.

    Returns
    -------
    dict: ``top1``, ``top2`` accuracy over labelled tracks, ``n_tracks``, and ``ranked`` {track: [label...]}.
    """
    X, k = check_vectors(X, dtype=None), check_count(k)
    labels = check_per_row(labels, len(X), "labels", integers=True)
    track_ids = check_per_row(track_ids, len(X), "track_ids")
    voters = np.flatnonzero(labels >= 0)
    nn = _nearest_voters(X, voters, track_ids, k)
    ranked, hits1, hits2, n = {}, 0, 0, 0
    for t in np.unique(track_ids):
        rows = np.flatnonzero(track_ids == t)
        votes = np.zeros(int(labels.max()) + 1 if len(voters) else 1)
        for r in rows:
            for j in [j for j in nn[r] if j >= 0 and track_ids[j] != t][:k]:
                votes[labels[j]] += 1.0
        order = [int(c) for c in np.argsort(-votes, kind="stable") if votes[c] > 0]
        ranked[int(t)] = order
        own = labels[rows][labels[rows] >= 0]
        if len(own):
            truth = int(np.bincount(own).argmax())
            n += 1
            hits1 += int(order[:1] == [truth])
            hits2 += int(truth in order[:2])
    return {"top1": hits1 / n if n else float("nan"), "top2": hits2 / n if n else float("nan"),
            "n_tracks": n, "ranked": ranked}


def _nearest_voters(X: np.ndarray, voters: np.ndarray, track_ids: np.ndarray, k: int) -> np.ndarray:
    """(n, kk) rows of ``voters`` nearest each row of ``X``: enough that k of other tracks remain (-1: none)."""
    if not len(voters):
        return np.full((len(X), 0), -1)
    index = EmbeddingIndex("flat").fit(X[voters], voters)
    kk = min(len(voters), k + int(np.bincount(np.unique(track_ids[voters], return_inverse=True)[1]).max()))
    return index.search(X, kk)[1]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): rows are true labels, columns predictions."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


CM_MAX_INCHES = 20.0  # the heatmap's side: 0.6 in a label up to ~30 labels, then smaller cells (300 labels
# drew a 20,000-pixel square, some 16 GB)
CM_COUNTS_UP_TO = 30  # labels up to which counts are written in the cells (more are too small to read them)


def plot_confusion(cm: np.ndarray, names: list[str], path: str | Path, *, title: str = "") -> None:
    """Heatmap of a confusion matrix (row-normalised colours, counts written in the cells of a small one) as PNG,
    at most :data:`CM_MAX_INCHES` a side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    side = min(1.2 + 0.6 * n, CM_MAX_INCHES)
    fig, ax = plt.subplots(figsize=(side, side - 0.2))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    font = min(10.0, 72 * 0.6 * (side - 1.2) / max(n, 1))  # points: tick labels no taller than their cell
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=font)
    ax.set_yticks(range(n), names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n if n <= CM_COUNTS_UP_TO else 0):
        for j in range(n):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of row")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history: list[dict], path: str | Path, *, title: str = "") -> None:
    """Loss (and accuracy where present) per epoch, train and validation, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    acc_keys = [k for k in ("acc", "val_acc") if any(k in h for h in history)]
    fig, axes = plt.subplots(1, 1 + bool(acc_keys), figsize=(5 + 4 * bool(acc_keys), 3.5))
    axes = np.atleast_1d(axes)
    for key in ("loss", "val_loss"):
        axes[0].plot(epochs, [h.get(key) for h in history], marker="o", label=key)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for key in acc_keys:
        axes[1].plot(epochs, [h.get(key) for h in history], marker="o", label=key)
    if acc_keys:
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("accuracy")
        axes[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
