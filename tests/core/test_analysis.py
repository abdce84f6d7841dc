"""Projection, clustering, probes and kNN votes give the numbers scikit-learn gives when asked directly."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from musicemb_core.analysis.clustering import composition, kmeans_select, purity
from musicemb_core.analysis.evaluation import confusion, knn_track_votes
from musicemb_core.analysis.probes import probe_scores
from musicemb_core.analysis.projection import Projector
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import drive


@pytest.fixture(scope="module")
def blobs():
    """3 labels x 6 tracks x 8 segments; each track a small blob near its label's centre."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16)) * 3
    X, labels, tracks = [], [], []
    for lab in range(3):
        for t in range(6):
            tc = centres[lab] + rng.standard_normal(16)
            X.append(tc + 0.3 * rng.standard_normal((8, 16)))
            labels += [lab] * 8
            tracks += [lab * 6 + t] * 8
    return np.vstack(X).astype(np.float32), np.array(labels), np.array(tracks)


def test_probe_matches_sklearn_directly(blobs):
    X, y, g = blobs
    got = probe_scores(X, y, g, kind="logistic", n_splits=3, random_state=0)
    pred = np.empty_like(y)
    for tr, te in StratifiedGroupKFold(3, shuffle=True, random_state=0).split(X, y, g):
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X[tr], y[tr])
        pred[te] = m.predict(X[te])
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert np.array_equal(got["predictions"], pred)
    assert confusion(y, pred, 3).sum() == len(y)


def test_probe_skips_unlabelled_and_rejects_one_label(blobs):
    X, y, g = blobs
    y2 = y.copy()
    y2[:8] = -1
    assert probe_scores(X, y2, g, n_splits=3)["n"] == len(y) - 8
    with pytest.raises(ConfigError):
        probe_scores(X, np.zeros_like(y), g)


@pytest.mark.parametrize("tracks_of_a", [1, 2])
def test_probe_scores_a_label_on_fewer_tracks_than_folds(blobs, tracks_of_a):
    """A label on one or two tracks (a fold then trains without it, or on one label only) is scored, not a
    scikit-learn error: its held-out tracks count as misses, the other labels are still predicted."""
    X, y, g = blobs
    keep = (y > 0) | np.isin(g, np.unique(g[y == 0])[:tracks_of_a])
    got = probe_scores(X[keep], y[keep], g[keep], n_splits=5)
    assert got["n"] == keep.sum() and (got["predictions"] >= 0).all()
    assert np.mean(got["predictions"][y[keep] > 0] == y[keep][y[keep] > 0]) > 0.9
    two = np.isin(g, [0, 6])  # one track of each of two labels: each fold trains on the other label only
    assert probe_scores(X[two], y[two], g[two])["accuracy"] == 0.0


def test_knn_votes_leave_the_track_out(blobs):
    X, y, g = blobs
    r = knn_track_votes(X, y, g, k=5)
    assert r["n_tracks"] == 18 and r["top1"] == 1.0 and r["top2"] == 1.0
    # with a track's own segments allowed, a lone mislabelled track would vote for itself; left out, it cannot
    y_bad = y.copy()
    y_bad[g == 0] = 2
    assert knn_track_votes(X, y_bad, g, k=5)["ranked"][0][0] == 0


def test_knn_votes_come_from_labelled_segments_only():
    """Unlabelled neighbours took the vote's places: a track none of whose k nearest was labelled got no vote and
    was scored as predicting the first label, a hit when that was its own."""
    a, b = np.eye(4)[0], np.eye(4)[1]
    near_a = [a + 0.01 * i * np.eye(4)[2] for i in range(1, 5)]  # tracks 1, 2: unlabelled, right beside track 0
    X = np.array([a, a, *near_a, b, b + 0.01 * np.eye(4)[3]], np.float32)
    labels, tracks = np.array([0, 0, -1, -1, -1, -1, 1, 1]), np.array([0, 0, 1, 1, 2, 2, 3, 4])
    r = knn_track_votes(X, labels, tracks, k=1)
    # by hand: track 0's nearest labelled segment of another track is label 1's: a miss; tracks 3, 4 vote for each
    # other (before: track 0's nearest was unlabelled, no vote, and it counted as predicting label 0)
    assert r["ranked"][0] == [1] and r["ranked"][3] == [1] and r["ranked"][4] == [1]
    assert r["n_tracks"] == 3 and r["top1"] == pytest.approx(2 / 3) and r["top2"] == pytest.approx(2 / 3)


def test_knn_votes_judge_a_track_by_its_segments_label():
    """A track's own label was its first segment's: a tagged first segment decided it, and a track whose only
    labels were tags on later segments was left out."""
    X = np.array([[1, 0], [1, 0.1], [1, 0.2], [0.9, 0.1], [0, 1], [0.1, 1]], np.float32)
    tracks = np.array([0, 0, 0, 1, 2, 2])
    labels = np.array([1, 0, 0, 0, 1, 1])  # track 0 is 0, its first segment tagged 1
    r = knn_track_votes(X, labels, tracks, k=1)
    assert r["n_tracks"] == 3 and r["top1"] == pytest.approx(2 / 3)  # tracks 0 and 1 vote for each other: 0
    r = knn_track_votes(X, np.array([-1, 0, 0, 0, 1, 1]), tracks, k=1)
    assert r["n_tracks"] == 3


def test_confusion_plot_of_many_labels_stays_readable_in_size(tmp_path):
    """Each label added 0.6 inch: 300 labels drew a 20,000-pixel square (some 16 GB) with 90,000 counts."""
    import matplotlib.image

    from musicemb_core.analysis.evaluation import CM_MAX_INCHES, plot_confusion

    n = 60
    cm = np.random.default_rng(0).integers(0, 5, (n, n))
    plot_confusion(cm, [f"label {i}" for i in range(n)], tmp_path / "cm.png")
    h, w = matplotlib.image.imread(tmp_path / "cm.png").shape[:2]
    assert max(h, w) <= CM_MAX_INCHES * 110


def test_kmeans_of_identical_points_is_a_config_error():
    """A model that collapsed (every segment the same vector): silhouette_score raised an unexpected ValueError."""
    X = np.vstack([np.ones((20, 8)), np.zeros((1, 8)) + [1, 0, 0, 0, 0, 0, 0, 0]])
    assert kmeans_select(X)["k"] == 2  # two distinct points: k = 3.. fit 2 clusters and are left out
    with pytest.raises(ConfigError, match="all 20 points are the same vector"):
        kmeans_select(np.ones((20, 8)))


def test_kmeans_leaves_out_a_k_above_the_distinct_points():
    """Two distinct vectors: k = 3..10 each found 2 clusters, and were kept in the silhouette and elbow curves with
    k = 2's figures, sklearn printing a ConvergenceWarning for each."""
    X = np.vstack([np.ones((10, 4)), np.tile([1.0, 0, 0, 0], (10, 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = kmeans_select(X)
    assert r["ks"] == [2] and len(r["silhouette"]) == len(r["inertia"]) == 1
    assert sorted(np.bincount(r["labels"])) == [10, 10]


def test_kmeans_selection_and_purity(blobs):
    X, y, _ = blobs
    r = kmeans_select(X, ks=range(2, 7))
    assert r["k"] == 3 and len(r["silhouette"]) == 5 and r["inertia"] == sorted(r["inertia"], reverse=True)
    direct = KMeans(3, n_init=4, random_state=0).fit(X / np.linalg.norm(X, axis=1, keepdims=True))
    assert np.array_equal(np.unique(r["labels"], return_counts=True)[1],
                          np.unique(direct.labels_, return_counts=True)[1])
    assert purity(r["labels"], y) == 1.0
    comp = composition(r["labels"], y, ["a", "b", "c"])
    assert sorted(c["size"] for c in comp) == [48, 48, 48] and all(len(c["labels"]) == 1 for c in comp)
    assert purity(np.zeros_like(y), y) == pytest.approx(1 / 3)


def test_kmeans_of_many_points_compares_k_on_a_sample_and_fits_the_chosen_k_once_on_all(blobs, monkeypatch):
    """400,000 segments: every k was fitted on every point, 4 restarts each (about 3 min); now the k are compared
    on a sample and only the chosen one is fitted on all points, with the same clusters and elbow curve."""
    from sklearn import cluster

    from musicemb_core.analysis import clustering

    X, y, _ = blobs
    X = np.repeat(X, 5, axis=0) + 0.01 * np.random.default_rng(1).standard_normal((5 * len(X), X.shape[1]))
    y = np.repeat(y, 5)
    sizes, fit = [], cluster.KMeans.fit

    def counted(self, data, *a, **kw):
        sizes.append(len(data))
        return fit(self, data, *a, **kw)

    monkeypatch.setattr(cluster.KMeans, "fit", counted)
    events = []
    r = drive(clustering.iter_kmeans_select(X, ks=range(2, 7), fit_sample=200), events.append)
    assert sizes == [200] * 5 + [len(X)]  # one fit of every point, the chosen k's
    assert r["k"] == 3 and purity(r["labels"], y) == 1.0 and len(r["labels"]) == len(X)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    full = [fit(cluster.KMeans(k, n_init=4, random_state=0), unit).inertia_ for k in range(2, 7)]
    assert np.allclose(r["inertia"], full, rtol=0.1)  # the curve is over every point (the sample: 0.28 of it)
    assert [e.done for e in events] == list(range(7)) and all(e.total == 6 for e in events)
    assert "of all 720 points" in events[5].message


@pytest.mark.parametrize("method", ["pca", "umap", "tsne"])
def test_projection_shapes_determinism_and_structure(blobs, method):
    X, y, _ = blobs
    a = Projector(method, random_state=0).fit(X).embedding_
    b = Projector(method, random_state=0).fit(X).embedding_
    assert a.shape == (len(X), 2) and a.dtype == np.float32 and np.allclose(a, b, atol=1e-4)
    # labels stay apart on the map: each point's nearest map neighbour shares its label
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert np.mean(y[d.argmin(1)] == y) > 0.95


@pytest.mark.parametrize("n", [3, 4])
def test_umap_maps_the_smallest_libraries(n):
    """UMAP's spectral start fails on 3 points in 2-d; so few points start at random instead."""
    X = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    emb = Projector("umap").fit(X).embedding_
    assert emb.shape == (n, 2) and np.isfinite(emb).all()


def test_large_umap_maps_start_from_pca(blobs, monkeypatch):
    """The spectral start took 65 s of a 100k-point map's 160 s (bench/bench_umap.py): above SPECTRAL_UP_TO points
    the map starts from PCA, deterministic and keeping the labels apart as the spectral one does."""
    from musicemb_core.analysis import projection

    X, y, _ = blobs
    assert projection.umap_init(3) == "random" and projection.umap_init(4) == "spectral"
    assert projection.umap_init(projection.SPECTRAL_UP_TO + 1) == "pca"
    monkeypatch.setattr(projection, "SPECTRAL_UP_TO", len(X) - 1)
    a, b = (Projector("umap", random_state=0).fit(X) for _ in range(2))
    assert a.model_.init == "pca" and np.allclose(a.embedding_, b.embedding_, atol=1e-4)
    d = ((a.embedding_[:, None] - a.embedding_[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert np.mean(y[d.argmin(1)] == y) > 0.95


def test_a_map_of_identical_points_is_a_config_error():
    """t-SNE of identical vectors (a collapsed model) killed the process with a segmentation fault: run it in a
    child, so that a regression fails this test instead of the whole run."""
    code = ("import numpy as np\nfrom musicemb_core.analysis.projection import Projector\n"
            "from musicemb_core.common.errors import ConfigError\n"
            "for method in ('pca', 'umap', 'tsne'):\n"
            "    try:\n        Projector(method).fit(np.ones((5, 8)))\n"
            "    except ConfigError as e:\n        print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == ["a map needs points that differ: all 5 are the same vector"] * 3


def test_transform_places_new_points(blobs):
    X, _, _ = blobs
    pca = Projector("pca").fit(X)
    assert np.allclose(pca.transform(X[:5]), pca.embedding_[:5], atol=1e-4)
    umap_p = Projector("umap").fit(X)
    near = umap_p.transform(X[:3] + 0.01)
    assert np.linalg.norm(near - umap_p.embedding_[:3], axis=1).max() < 2.0
    with pytest.raises(ConfigError, match="t-SNE"):
        Projector("tsne").fit(X).transform(X[:2])


def test_probes_of_hundreds_of_labels_print_no_warning():
    """A label per track or two (hundreds of labels): each fold's fit printed sklearn's "The number of unique
    classes is greater than 50% of the number of samples" to the user."""
    from musicemb_core.analysis.inspection import out_of_fold_probs

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y, g = np.arange(200) // 2, np.arange(200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert probe_scores(X, y, g)["n"] == 200
        assert out_of_fold_probs(X, y, g).shape == (200, 100)
