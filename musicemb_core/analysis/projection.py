"""2-D maps of embeddings: UMAP, t-SNE, PCA as estimator-like classes (``fit`` returns self, ``embedding_``).

UMAP and PCA place new points with ``transform`` (no re-fit when segments are added); t-SNE cannot.

sklearn is imported with this module and umap under a lock: two threads importing them lazily at the same time
(a PCA and a UMAP job) can see a half-initialised sklearn and fail with a circular-import error.
"""

from __future__ import annotations

import threading

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from musicemb_core.analysis.checks import check_count, check_vectors
from musicemb_core.common.errors import ConfigError
from musicemb_core.index.faiss_index import normalise as _unit  # cosine geometry for PCA

METHODS = ("umap", "tsne", "pca")
_UMAP_IMPORT = threading.Lock()
_umap = None  # the module, once imported by _import_umap
SPECTRAL_UP_TO = 10_000


def umap_init(n: int, n_components: int = 2) -> str:
    """UMAP's starting layout for ``n`` points: spectral (its default, the best start) up to
    :data:`SPECTRAL_UP_TO` points; above, PCA (the spectral start alone took 65 s of a 100k-point map's 160 s,
    for neighbourhoods kept about as well: ``bench/bench_umap.py``); random where a spectral start cannot be made
    (it needs more points than components + 1: 3 points in 2-d are an eigh error)."""
    if n <= n_components + 1:
        return "random"
    return "spectral" if n <= SPECTRAL_UP_TO else "pca"


def _import_umap():
    """umap, imported once under a lock, its compiled functions kept on disk (:func:`_keep_compiled`)."""
    global _umap
    with _UMAP_IMPORT:
        if _umap is None:
            import umap

            _keep_compiled(("umap", "pynndescent"))
            _umap = umap
    return _umap


def _keep_compiled(packages: tuple[str, ...]) -> None:
    """Have numba keep the compiled code of ``packages``' functions on disk (where ``cache=True`` would:
    ``__pycache__`` beside the package, else ``~/.cache/numba``), as ours do. UMAP compiled its functions again in
    every process: 12 s of a fresh process's 350-point map, and about 55 s the first time a large map places
    points with ``transform`` (a ``musicemb map`` draws in a child process of its own every time). A function
    numba cannot keep (two of pynndescent's use dynamic globals) is compiled as before, without a warning; a
    frozen app without sources keeps none."""
    import sys
    import warnings

    from numba.core.caching import NullCache
    from numba.core.errors import NumbaWarning
    from numba.core.registry import CPUDispatcher

    warnings.filterwarnings("ignore", r".*Cannot cache compiled function", NumbaWarning)  # after a colour code
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in packages:
            continue
        for f in list(vars(module).values()):
            if isinstance(f, CPUDispatcher) and isinstance(f._cache, NullCache):
                try:
                    f.enable_caching()
                except RuntimeError:  # no source file to key the cache on (a frozen app)
                    return


class Projector:
    """Parameters: ``method``, ``n_components`` (2), ``random_state``, ``n_neighbors`` (UMAP), ``perplexity``
    (t-SNE), ``metric`` (cosine). Fitted: ``embedding_`` (n, n_components) float32, ``model_``, ``n_features_in_``."""

    def __init__(self, method: str = "umap", *, n_components: int = 2, random_state: int = 0,
                 n_neighbors: int = 15, perplexity: float = 30.0, metric: str = "cosine"):
        if method not in METHODS:
            raise ConfigError(f"map method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method, self.n_components = method, check_count(n_components, "n_components")
        self.random_state = random_state
        self.n_neighbors, self.perplexity, self.metric = n_neighbors, perplexity, metric

    def fit(self, X: np.ndarray) -> Projector:
        X = check_vectors(X)
        self.n_features_in_ = X.shape[1]
        if len(X) < 3:
            raise ConfigError(f"a map needs at least 3 points, got {len(X)}")
        if not np.ptp(X, axis=0).any():  # t-SNE would crash the process (a segmentation fault)
            raise ConfigError(f"a map needs points that differ: all {len(X)} are the same vector")
        if self.method == "pca":
            self.model_ = PCA(self.n_components, random_state=self.random_state)
            self.embedding_ = self.model_.fit_transform(_unit(X))
        elif self.method == "umap":
            umap = _import_umap()

            init = umap_init(len(X), self.n_components)
            self.model_ = umap.UMAP(n_components=self.n_components, n_neighbors=min(self.n_neighbors, len(X) - 1),
                                    metric=self.metric, random_state=self.random_state, n_jobs=1, init=init)
            self.embedding_ = self.model_.fit_transform(X)
        else:
            self.model_ = TSNE(self.n_components, perplexity=min(self.perplexity, (len(X) - 1) / 3),
                               metric=self.metric, init="pca", random_state=self.random_state)
            self.embedding_ = self.model_.fit_transform(X)
        self.embedding_ = np.asarray(self.embedding_, dtype=np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new points on the fitted map (UMAP, PCA)."""
        if self.method == "tsne":
            raise ConfigError("t-SNE cannot place new points; recompute the map or use umap/pca")
        if not hasattr(self, "model_"):
            raise ConfigError("fit the map before placing new points on it")
        X = check_vectors(X)
        if X.shape[1] != self.n_features_in_:
            raise ConfigError(f"X has {X.shape[1]} dims, the map was fitted on {self.n_features_in_}")
        return np.asarray(self.model_.transform(_unit(X) if self.method == "pca" else X), dtype=np.float32)
