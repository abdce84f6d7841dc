"""``evaluate`` at scale: the leave-one-track-out kNN vote searched a block of tracks at a time, only the tracks
that may hold a neighbour (exact, with progress and a cancel check between blocks); every step says how far it is."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.analysis import evaluation
from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.workflows import evaluate


def _library_like(seed: int = 0, n_tracks: int = 40):
    """Segments of tracks of very different lengths (1 to 60 segments), some unlabelled, some tagged otherwise."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 61, n_tracks)
    tracks = np.repeat(np.arange(100, 100 + n_tracks), sizes)
    centres, label_of = rng.standard_normal((n_tracks, 12)), rng.integers(0, 4, n_tracks)
    X = (centres[tracks - 100] + rng.standard_normal((len(tracks), 12))).astype(np.float32)
    labels = label_of[tracks - 100].copy()
    labels[rng.random(len(tracks)) < 0.1] = 3  # segment tags
    labels[np.isin(tracks, [103, 111])] = -1  # unlabelled tracks
    order = rng.permutation(len(tracks))  # rows not grouped by track, as segments cut again are not
    return X[order], labels[order], tracks[order]


def _by_hand(X, labels, tracks, k):
    """The vote as documented, by brute force: per segment, the k most cosine-similar labelled segments of other
    tracks; per track, the labels of its segments' neighbours counted."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    S[:, labels < 0] = -np.inf
    S[tracks[:, None] == tracks[None, :]] = -np.inf
    ranked = {}
    for t in np.unique(tracks):
        votes = np.zeros(labels.max() + 1)
        for r in np.flatnonzero(tracks == t):
            near = [j for j in np.argsort(-S[r], kind="stable")[:k] if np.isfinite(S[r, j])]
            np.add.at(votes, labels[near], 1)
        ranked[int(t)] = [int(c) for c in np.argsort(-votes, kind="stable") if votes[c] > 0]
    return ranked


@pytest.mark.parametrize("block", [1, 50, 10_000])  # a track a block, several, all at once
@pytest.mark.parametrize("k", [1, 10, 400])  # 400: more than the other tracks' labelled segments of some
def test_knn_votes_by_blocks_equal_the_brute_force_vote(monkeypatch, block, k):
    """Before: one search of k + the longest track's segments for every segment at once (an hour-long recording
    made that 1,000 neighbours of each of 245,796 segments, then a Python loop over them: minutes without a
    word). Searched a block of tracks at a time, the votes are those of the brute-force rule."""
    X, labels, tracks = _library_like()
    monkeypatch.setattr(evaluation, "KNN_BLOCK_ROWS", block)
    got = evaluation.knn_track_votes(X, labels, tracks, k=k)
    assert got["ranked"] == _by_hand(X, labels, tracks, k)
    truth = {int(t): np.bincount(labels[(tracks == t) & (labels >= 0)], minlength=4).argmax()
             for t in np.unique(tracks) if ((tracks == t) & (labels >= 0)).any()}
    assert got["n_tracks"] == len(truth) == 38
    assert got["top1"] == pytest.approx(np.mean([got["ranked"][t][:1] == [c] for t, c in truth.items()]))
    assert got["top2"] == pytest.approx(np.mean([c in got["ranked"][t][:2] for t, c in truth.items()]))


def test_knn_votes_search_only_the_tracks_that_may_hold_a_neighbour(monkeypatch):
    """Tracks whose every row is farther from a query than its k-th best so far are not searched (on 245,796
    segments in 300 tracks, about a tenth of them per query); a far track with one row right beside the query is."""
    rng = np.random.default_rng(1)
    centres = 5 * np.eye(8)[np.arange(40) % 8] + rng.standard_normal((40, 8))
    tracks = np.repeat(np.arange(40), 20)
    X = (centres[tracks] + 0.3 * rng.standard_normal((800, 8))).astype(np.float32)
    X[799] = X[0] + 0.01  # the last row of track 39 (far from track 0) beside track 0's first row
    labels = tracks % 3
    searched = []
    real = evaluation._knn

    def counted(Q, B, k):
        searched.append(len(Q) * len(B))
        return real(Q, B, k)

    monkeypatch.setattr(evaluation, "_knn", counted)
    monkeypatch.setattr(evaluation, "KNN_BLOCK_ROWS", 20)  # a track a block
    got = evaluation.knn_track_votes(X, labels, tracks, k=5)
    assert got["ranked"] == _by_hand(X, labels, tracks, 5)
    assert sum(searched) < 0.4 * 800 * 780  # all other tracks' rows for every row: 800 x 780
    nn = evaluation._Voters(X[tracks != 0] / np.linalg.norm(X[tracks != 0], axis=1, keepdims=True),
                            tracks[tracks != 0], 40).nearest(X[:1] / np.linalg.norm(X[0]), np.array([0]), 1)
    assert nn.tolist() == [[779]]  # row 799 of X, the last of the other tracks' rows


def test_knn_votes_say_their_progress_and_stop_when_cancelled(monkeypatch):
    X, labels, tracks = _library_like()
    monkeypatch.setattr(evaluation, "KNN_BLOCK_ROWS", 200)
    events = []
    drive(evaluation.iter_knn_track_votes(X, labels, tracks), events.append)
    done = [e.done for e in events]
    assert len(events) >= len(X) // 200 - 1 and done == sorted(done) and done[-1] == len(X)
    assert {e.total for e in events} == {len(X)} and "kNN votes of 40 tracks" in events[0].message
    token = CancelToken()
    job = evaluation.iter_knn_track_votes(X, labels, tracks, cancel=token)
    next(job)
    token.cancel()
    with pytest.raises(Cancelled):
        next(job)


def test_evaluate_says_each_step_and_stops_when_cancelled(tmp_path):
    """Before: "probes", then nothing through the probes, the kNN vote and k-means (297 s without a word on
    245,796 segments, and a cancel waited for all of them); now each probe fold, each block of the vote and each
    k of k-means is an event, and a cancel stops at the next."""
    from musicemb_core.data.library import Library
    from musicemb_core.inference import iter_embed
    from tests.conftest import labelled_tones

    with Library(labelled_tones(tmp_path)) as lib:
        drive(iter_embed(lib))
        events = []
        result = drive(evaluate.iter_evaluate(lib, reid_n=0), events.append)
        said = [(e.stage, e.message) for e in events]
        assert ("evaluate", "kNN votes of 4 tracks") in said
        assert any(m.startswith("logistic probe: fold 1 of") for _, m in said)
        assert any(m.startswith("svm probe: fold 1 of") for _, m in said)
        assert [m for st, m in said if st == "clusters"][0].startswith("k-means with k=2 of")
        assert result["knn_tracks"]["n_tracks"] == 4
        token = CancelToken()
        job = evaluate.iter_evaluate(lib, reid_n=0, cancel=token)
        for event in job:
            if event.message.startswith("kNN votes"):
                token.cancel()
                break
        with pytest.raises(Cancelled):
            next(job)
