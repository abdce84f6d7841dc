"""Linear probes on embeddings: cross-validated by group (track), so no track is in both train and test."""

from __future__ import annotations

import warnings

import numpy as np

from musicemb_core.analysis.checks import check_count, check_per_row, check_vectors
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress, drive


def probe_scores(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, kind: str = "logistic",
                 n_splits: int = 5, random_state: int = 0) -> dict:
    """Out-of-fold predictions of a linear probe and their scores.

    Parameters
    ----------
    X : (n, dim) embeddings; labels : (n,) ints (-1 = unlabelled, skipped); groups : (n,) track ids.
    kind : ``logistic`` (logistic regression) or ``svm`` (linear SVM), on standardised embeddings.

    Returns
    -------
    dict with ``accuracy``, ``macro_f1``, ``n``, ``folds`` and ``predictions`` (n,) (-1 where not scored).
    """
    return drive(iter_probe_scores(X, labels, groups, kind=kind, n_splits=n_splits, random_state=random_state))


def iter_probe_scores(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, kind: str = "logistic",
                      n_splits: int = 5, random_state: int = 0, cancel: CancelToken | None = None) -> JobGen[dict]:
    """:func:`probe_scores` as a job: a Progress event per fold, ``cancel`` checked between folds (a fold of
    400,000 segments trains for minutes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    from threadpoolctl import threadpool_limits

    X = check_vectors(X, dtype=None)
    labels, groups = check_per_row(labels, len(X), "labels", integers=True), check_per_row(groups, len(X), "groups")
    known = np.flatnonzero(labels >= 0)
    y, g = labels[known], groups[known]
    n_splits = min(check_count(n_splits, "n_splits", least=2), len(np.unique(g)))
    if n_splits < 2 or len(np.unique(y)) < 2:
        raise ConfigError("a probe needs at least 2 labels and 2 labelled tracks")
    clf = {"logistic": lambda: LogisticRegression(max_iter=2000),
           "svm": lambda: LinearSVC(max_iter=5000, random_state=random_state)}.get(kind)
    if clf is None:
        raise ConfigError(f"probe kind must be 'logistic' or 'svm', got {kind!r}")
    pred = np.full(len(labels), -1)
    # stratified where every label is on enough tracks for it; a label on fewer tracks than folds is a miss
    # wherever its tracks are held out, and a fold that trains on one label predicts that label
    stratified = min(len(np.unique(g[y == c])) for c in np.unique(y)) >= n_splits
    folds = (StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state) if stratified
             else GroupKFold(n_splits=n_splits))
    clock = EtaClock()
    with threadpool_limits(1):  # BLAS threads on these small matrices fight each other (50x slower on 2 cores)
        for fold, (tr, te) in enumerate(folds.split(X[known], y, g)):
            yield Progress("probe", fold, n_splits, f"{kind} probe: fold {fold + 1} of {n_splits}, "
                           f"{len(known):,} labelled segments", eta_s=clock.eta(fold, n_splits))
            if cancel is not None:
                cancel.check()
            if len(np.unique(y[tr])) == 1:
                pred[known[te]] = y[tr][0]
                continue
            with warnings.catch_warnings():  # many labels of a segment or two each: "a regression problem?"
                warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
                model = make_pipeline(StandardScaler(), clf()).fit(X[known][tr], y[tr])
            pred[known[te]] = model.predict(X[known][te])
    return {"accuracy": float(accuracy_score(y, pred[known])),
            "macro_f1": float(f1_score(y, pred[known], average="macro")), "n": int(len(known)),
            "folds": n_splits, "predictions": pred}
