"""``inspect``'s nearest-neighbour searches (label votes, outliers, near-duplicates) are jobs: they say how far they
are and stop on a cancel. On 82,000 segments of hour-long recordings they ran 400 s with one progress line, which
neither Ctrl-C nor the app's Cancel could stop before the end. One index serves both searches when every segment
is labelled (it was built twice)."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.analysis import inspection
from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.library import Library
from musicemb_core.index.faiss_index import EmbeddingIndex
from musicemb_core.inference import iter_embed
from musicemb_core.workflows.inspect import iter_inspect
from tests.conftest import labelled_tones

NEAREST = "nearest segments of other tracks"


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    lib_dir = labelled_tones(tmp_path_factory.mktemp("inspect-progress"))
    with Library(lib_dir) as lib:
        drive(iter_embed(lib))
    return lib_dir


def test_neighbour_searches_say_how_far_they_are_and_build_one_index(lib_dir, monkeypatch):
    fits = []
    real = EmbeddingIndex.iter_fit

    def counted(self, X, ids, **kw):
        fits.append(len(X))
        return (yield from real(self, X, ids, **kw))

    monkeypatch.setattr(EmbeddingIndex, "iter_fit", counted)
    with Library(lib_dir) as lib:
        job = iter_inspect(lib, kinds=["label", "outlier", "duplicate"])
        said = []
        try:
            while True:
                said.append(next(job))
        except StopIteration as stop:
            report = stop.value
        n = len(lib.segments()["id"])
    searches = [p for p in said if p.message == NEAREST]
    assert len(searches) == 2 and all(p.stage == "inspect" and p.total == n for p in searches)  # labels, then all
    assert fits == [n]  # every segment labelled: one index for both searches
    assert not report.cancelled and set(report.kinds) == {"label", "outlier", "duplicate"}


def test_a_cancel_during_the_search_stops_it_and_keeps_the_findings_there_were(lib_dir):
    with Library(lib_dir) as lib:
        before = drive(iter_inspect(lib, kinds=["outlier", "duplicate"])).findings
        labels_before = lib.findings(kinds=["label"])
        token = CancelToken()
        job = iter_inspect(lib, kinds=["label", "outlier", "duplicate"], cancel=token)
        try:
            while True:
                if next(job).message == NEAREST:
                    token.cancel()
        except StopIteration as stop:
            assert stop.value.cancelled
        assert lib.findings(kinds=["outlier", "duplicate"]) == before
        assert lib.findings(kinds=["label"]) == labels_before


def test_other_track_neighbours_stops_between_blocks(monkeypatch):
    monkeypatch.setattr(inspection, "BLOCK", 4)
    X = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    groups = np.repeat(np.arange(10), 4)
    token = CancelToken()
    job = inspection.iter_other_track_neighbours(X, groups, k=3, cancel=token)
    steps = [next(job) for _ in range(3)]
    token.cancel()
    with pytest.raises(Cancelled):
        next(job)
    assert [p.done for p in steps if p.message == NEAREST][:2] == [0, 4]
    dist, nbr = inspection.other_track_neighbours(X, groups, k=3)  # the plain function: the same job, driven
    assert nbr.shape == (40, 3) and (groups[nbr] != groups[:, None]).all()
