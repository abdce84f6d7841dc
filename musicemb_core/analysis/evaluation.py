"""Evaluation on arrays: leave-one-track-out kNN votes, top-k accuracy, confusion matrices, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicemb_core.index import EmbeddingIndex


def knn_track_votes(X: np.ndarray, labels: np.ndarray, track_ids: np.ndarray, *, k: int = 10) -> dict:
    """Each track's label predicted from the k nearest segments of *other* tracks, votes summed over the track's
    segments (leave-one-track-out, so a track never votes for itself).

    Returns
    -------
    dict: ``top1``, ``top2`` accuracy over labelled tracks, ``n_tracks``, and ``ranked`` {track: [label...]}.
    """
    index = EmbeddingIndex("flat").fit(X, np.arange(len(X)))
    n_lab = int(labels.max()) + 1 if len(labels) else 0
    kk = min(len(X), k + int(np.bincount(np.unique(track_ids, return_inverse=True)[1]).max()))
    _, nn = index.search(X, kk)
    ranked, hits1, hits2, n = {}, 0, 0, 0
    for t in np.unique(track_ids):
        rows = np.flatnonzero(track_ids == t)
        votes = np.zeros(max(n_lab, 1))
        for r in rows:
            others = [j for j in nn[r] if j >= 0 and track_ids[j] != t][:k]
            for j in others:
                if labels[j] >= 0:
                    votes[labels[j]] += 1.0
        order = list(np.argsort(-votes, kind="stable"))
        ranked[int(t)] = order
        truth = labels[rows[0]]
        if truth >= 0:
            n += 1
            hits1 += int(order[0] == truth)
            hits2 += int(truth in order[:2])
    return {"top1": hits1 / n if n else float("nan"), "top2": hits2 / n if n else float("nan"),
            "n_tracks": n, "ranked": ranked}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): rows are true labels, columns predictions."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def plot_confusion(cm: np.ndarray, names: list[str], path: str | Path, *, title: str = "") -> None:
    """Heatmap of a confusion matrix (row-normalised colours, counts written in the cells) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(names), 1.0 + 0.6 * len(names)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
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
