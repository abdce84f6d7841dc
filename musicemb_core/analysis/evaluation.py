"""Evaluation on arrays: leave-one-track-out kNN votes, top-k accuracy, confusion matrices, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicemb_core.analysis.checks import check_count, check_per_row, check_vectors
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.index.faiss_index import normalise, uninterrupted


def knn_track_votes(X: np.ndarray, labels: np.ndarray, track_ids: np.ndarray, *, k: int = 10) -> dict:
    """:func:`iter_knn_track_votes` run to the end."""
    return drive(iter_knn_track_votes(X, labels, track_ids, k=k))


def iter_knn_track_votes(X: np.ndarray, labels: np.ndarray, track_ids: np.ndarray, *, k: int = 10,
                         cancel: CancelToken | None = None) -> JobGen[dict]:
    """Each track's label predicted from the k nearest (cosine) labelled segments of *other* tracks, votes summed
    over the track's segments (leave-one-track-out, so a track never votes for itself); a track's own label is the
    most common of its segments' (a segment tag counts over its track's label). A track no labelled segment votes
    for is a miss. Exact; tracks are searched a block at a time, a progress event after each (``cancel`` checked
    between blocks).

    Returns
    -------
    dict: ``top1``, ``top2`` accuracy over labelled tracks, ``n_tracks``, and ``ranked`` {track: [label...]}.
    """
    X, k = check_vectors(X, dtype=None), check_count(k)
    labels = check_per_row(labels, len(X), "labels", integers=True)
    track_ids = check_per_row(track_ids, len(X), "track_ids")
    cancel = cancel or CancelToken()
    tracks, of = np.unique(track_ids, return_inverse=True)
    rows = np.argsort(of, kind="stable")  # rows and voters grouped by track: a track's voters are one slice
    row_at = np.searchsorted(of[rows], np.arange(len(tracks) + 1))
    voters = np.flatnonzero(labels >= 0)
    voters = voters[np.argsort(of[voters], kind="stable")]
    n_labels = int(labels.max()) + 1 if len(voters) else 1
    near, Q = _Voters(normalise(X[voters]), of[voters], len(tracks)), normalise(X)
    votes = np.zeros((len(tracks), n_labels))
    for a, b in _track_blocks(row_at):
        cancel.check()
        r = rows[row_at[a]:row_at[b]]
        nn = near.nearest(Q[r], of[r], k)
        hit = nn >= 0
        lab = labels[voters[nn[hit]]]
        votes[a:b] += np.bincount(np.repeat(of[r] - a, hit.sum(1)) * n_labels + lab,
                                  minlength=(b - a) * n_labels).reshape(b - a, n_labels)
        yield Progress("evaluate", int(row_at[b]), len(X), f"kNN votes of {len(tracks)} tracks")
    return _scores(votes, tracks, labels, of)


KNN_BLOCK_ROWS = 2048  # query segments searched at once (tracks are not split: an hour-long one is one block)


def _track_blocks(row_at: np.ndarray) -> list[tuple[int, int]]:
    """Runs [a, b) of consecutive tracks holding about :data:`KNN_BLOCK_ROWS` segments, from their row offsets."""
    blocks, a = [], 0
    for t in range(1, len(row_at)):
        if row_at[t] - row_at[a] >= KNN_BLOCK_ROWS or t == len(row_at) - 1:
            blocks.append((a, t))
            a = t
    return blocks


class _Voters:
    """Labelled segments grouped by track (unit rows ``V``, sorted by their ``track``; track t's are
    ``V[at[t]:at[t + 1]]``), with each track's centre and radius: no row of track t has an inner product with a
    unit query q above ``q . centre[t] + radius[t]``, so a track whose bound is below a query's k-th best so far
    needs no search (exact: a wide track is searched whenever it might hold a neighbour)."""

    def __init__(self, V: np.ndarray, track: np.ndarray, n_tracks: int):
        self.V, self.track = V, track
        self.at = np.searchsorted(track, np.arange(n_tracks + 1))
        size, starts = np.diff(self.at), self.at[:-1]
        held = size > 0
        self.centre = np.zeros((n_tracks, V.shape[1]), np.float32)
        self.radius = np.full(n_tracks, -np.inf)  # no rows: never searched
        if held.any():
            self.centre[held] = np.add.reduceat(V, starts[held]) / size[held, None]
            far = np.linalg.norm(V - self.centre[track], axis=1)
            self.radius[held] = np.maximum.reduceat(far, starts[held]) + BOUND_SLACK

    def nearest(self, Q: np.ndarray, q_track: np.ndarray, k: int) -> np.ndarray:
        """(len(Q), k) rows of ``V`` nearest each unit query among those of other tracks, best first (-1: none):
        first the tracks of nearest centre holding k rows for each query, then those whose bound reaches a
        query's k-th best of these."""
        centred = Q @ self.centre.T
        bound = centred + self.radius
        bound[np.arange(len(Q)), q_track] = -np.inf
        order = np.argsort(np.where(np.isfinite(bound), -centred, np.inf), axis=1, kind="stable")
        rows_before = np.cumsum(np.diff(self.at)[order], axis=1) - np.diff(self.at)[order]
        first = np.unique(order[(rows_before < k) & np.isfinite(np.take_along_axis(bound, order, 1))])
        s, i = self._search(Q, q_track, first, k)
        kth = s[:, k - 1] if s.shape[1] >= k else np.full(len(Q), -np.inf)
        rest = np.setdiff1d(np.flatnonzero(((bound >= kth[:, None]) & np.isfinite(bound)).any(axis=0)), first)
        if len(rest):
            s2, i2 = self._search(Q, q_track, rest, k)
            s, i = np.concatenate([s, s2], axis=1), np.concatenate([i, i2], axis=1)
            best = np.argsort(-s, axis=1, kind="stable")[:, :k]
            s, i = np.take_along_axis(s, best, 1), np.take_along_axis(i, best, 1)
        return np.where(np.isfinite(s), i, -1)

    def _search(self, Q: np.ndarray, q_track: np.ndarray, tracks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact k best rows of ``tracks`` (a query's own passed over), similarities and rows of ``V``."""
        rows = np.flatnonzero(np.isin(self.track, tracks))
        own = np.isin(tracks, q_track)  # in a block of several tracks, another query's own track may be searched
        extra = int(np.diff(self.at)[tracks[own]].max()) if own.any() else 0
        s, i = _knn(Q, self.V[rows], k + extra)
        i = np.where(i >= 0, rows[np.maximum(i, 0)], -1)
        s[(i >= 0) & (self.track[np.maximum(i, 0)] == q_track[:, None])] = -np.inf
        best = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(s, best, 1), np.take_along_axis(i, best, 1)


BOUND_SLACK = 1e-4  # added to each radius: float32 rounding of the inner products is far below it


def _knn(Q: np.ndarray, B: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search of unit rows: similarities and rows of ``B``, (len(Q), min(k, len(B)))."""
    import faiss

    k = min(k, len(B))
    if k == 0:
        return np.zeros((len(Q), 0), np.float32), np.zeros((len(Q), 0), np.int64)
    B = np.ascontiguousarray(B)
    return uninterrupted(lambda: faiss.knn(Q, B, k, metric=faiss.METRIC_INNER_PRODUCT))  # beside a build's cancel


def _scores(votes: np.ndarray, tracks: np.ndarray, labels: np.ndarray, of: np.ndarray) -> dict:
    """Top-1/top-2 accuracy of the ``votes`` (tracks, labels) against each track's most common own label."""
    known = labels >= 0
    own = np.bincount(of[known] * votes.shape[1] + labels[known], minlength=votes.size).reshape(votes.shape)
    ranked, hits1, hits2, n = {}, 0, 0, 0
    for t, v in enumerate(votes):
        order = [int(c) for c in np.argsort(-v, kind="stable") if v[c] > 0]
        ranked[int(tracks[t])] = order
        if own[t].any():
            truth = int(own[t].argmax())
            n += 1
            hits1 += int(order[:1] == [truth])
            hits2 += int(truth in order[:2])
    return {"top1": hits1 / n if n else float("nan"), "top2": hits2 / n if n else float("nan"),
            "n_tracks": n, "ranked": ranked}


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
