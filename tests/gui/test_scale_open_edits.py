"""Scale hunt of the window at 1.6M segments: a tag of every segment (and its Undo) was stored on the GUI thread
(15 s and 13 s frozen), and clusters or predicted labels of 400,000 points ran for minutes in a thread with no
progress and no Cancel. Now a big edit is a job, and those colourings are jobs yielding progress. The tests use
tiny libraries, with the size of a "big" edit made small; they check where the work runs and that the results
are those of the work done in place."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QTimer  # noqa: E402

from musicemb_core.analysis import clustering, probes  # noqa: E402
from musicemb_core.common.errors import Cancelled  # noqa: E402
from musicemb_core.common.progress import CancelToken  # noqa: E402
from musicemb_core.data import edits as core_edits  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui import edits as gui_edits  # noqa: E402
from musicemb_gui.panels.map_controller import label_categories  # noqa: E402
from tests.conftest import embedded_tones  # noqa: E402
from tests.gui.helpers import shown_window, tone_library  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    yield from shown_window(qtbot, tmp_path)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return embedded_tones(tmp_path_factory.mktemp("emb"))


def _threads_of(monkeypatch, name: str) -> list[bool]:
    """For each call of the core's ``edits.name`` from now on: whether it ran on the main (GUI) thread."""
    calls, real = [], getattr(core_edits, name)

    def spy(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)
    monkeypatch.setattr(core_edits, name, spy)
    return calls


def _tag_all_then_undo(qtbot, win, lib: str) -> dict:
    """Tag every segment "everything", then Undo; what the window showed after each."""
    assert win.open_library(lib)
    ctl, got = win.map_controller, {}
    ids = win.session.segments["id"]
    ctl.label_segments(ids, "everything", whole_tracks=False)
    got["asked"] = win.map_panel.status.text()
    qtbot.waitUntil(lambda: not win.jobs.jobs and win.session.edits.busy is None, timeout=30000)
    got["tags"] = dict(win.session.edits.tags)
    got["colours"] = [c.tolist() if isinstance(c, np.ndarray) else c for c in ctl.colours("label", ids)]
    got["undo"] = win.undo_action.text()
    win.undo_action.trigger()
    qtbot.waitUntil(lambda: not win.jobs.jobs and win.session.edits.busy is None, timeout=30000)
    got["undone"] = (dict(win.session.edits.tags), win.undo_action.text())
    with Library(lib) as library:
        got["stored"] = core_edits.segment_tags(library)
    return got


def test_a_big_tag_and_its_undo_are_stored_by_a_job_with_the_results_of_a_small_one(qtbot, window, tmp_path,
                                                                                    monkeypatch):
    """A tag of more segments than ``BIG_EDIT`` and its Undo: stored off the GUI thread (the window's timers fire
    meanwhile), shown as a small edit stored in place shows them."""
    small = _tag_all_then_undo(qtbot, window, tone_library(tmp_path / "a"))
    monkeypatch.setattr(gui_edits, "BIG_EDIT", 2)
    on_gui = _threads_of(monkeypatch, "tag_segments")
    undo_on_gui = _threads_of(monkeypatch, "undo_last")
    ticks = []
    beat = QTimer(interval=1)
    beat.timeout.connect(lambda: ticks.append(1))
    beat.start()
    big = _tag_all_then_undo(qtbot, window, tone_library(tmp_path / "b"))
    beat.stop()
    assert on_gui == [False] and undo_on_gui == [False] and ticks
    assert big["asked"] == "labelling 6 segments… (see Jobs)"
    assert small["asked"].startswith("tag 6 segments 'everything'")
    assert set(big["tags"].values()) == {"everything"} and len(big["tags"]) == 6
    assert [big[k] for k in ("colours", "undo", "undone", "stored")] == \
        [small[k] for k in ("colours", "undo", "undone", "stored")]
    assert big["undone"] == ({}, "&Undo") and big["stored"] == {}


def test_no_other_edit_while_a_big_one_is_stored(qtbot, window, tmp_path, monkeypatch):
    """An edit asked while a big one is being stored is refused and said (both would read the labels of before); in
    a library of many tags a small edit is a job too (all the tags are read again after it)."""
    monkeypatch.setattr(gui_edits, "BIG_EDIT", 2)
    assert window.open_library(tone_library(tmp_path))
    ids = window.session.segments["id"]
    window.map_controller.label_segments(ids, "everything", whole_tracks=False)
    assert window.session.edits.busy is not None
    tid = min(window.session.tracks)
    assert window.session.edits.relabel_tracks([tid], "rock") is None
    assert "still being stored" in window.session.edits.error
    qtbot.waitUntil(lambda: window.session.edits.busy is None, timeout=30000)
    assert window.session.tracks[tid].label is None and set(window.session.edits.tags.values()) == {"everything"}
    monkeypatch.setattr(gui_edits, "BIG_EDIT", 5)  # a track of 3 segments, in a library of 6 tags: a job too
    assert window.session.edits.relabel_tracks([tid], "rock") is None and window.session.edits.busy is not None
    qtbot.waitUntil(lambda: window.session.edits.busy is None, timeout=30000)
    assert window.session.tracks[tid].label == "rock" and len(window.session.edits.tags) == 3


def _label_categories_by_point(ids, tracks, track_labels, tags):
    """The colouring by label as it was computed, one point at a time (the reference)."""
    names = sorted({lab for lab in [*(track_labels[int(t)] for t in tracks), *(tags.get(int(i)) for i in ids)]
                    if lab})
    index = {n: i for i, n in enumerate(names)}
    return [index.get(tags.get(int(i)) or track_labels[int(t)], len(names)) for i, t in zip(ids, tracks,
                                                                                            strict=True)], names


def test_the_label_colouring_from_the_tag_arrays_is_the_colouring_point_by_point():
    rng = np.random.default_rng(1)
    for _ in range(200):
        ids = rng.permutation(rng.choice(200, int(rng.integers(0, 60)), replace=False)).astype(np.int64)
        tracks = rng.integers(0, 8, len(ids)).astype(np.int64)
        labels = [None, "", "rock", "jazz", "Folk", "zz"]
        track_labels = {t: labels[rng.integers(0, 6)] for t in range(8)}
        tags = {int(k): labels[rng.integers(0, 6)] for k in rng.choice(250, int(rng.integers(0, 40)), replace=False)}
        cats, names = label_categories(ids, tracks, track_labels, gui_edits.tag_table(tags))
        assert (cats.tolist(), names) == _label_categories_by_point(ids, tracks, track_labels, tags)


@pytest.mark.parametrize("mode", ["cluster", "predicted label"])
def test_clusters_and_predicted_labels_are_jobs_with_progress_that_can_be_cancelled(qtbot, window, embedded, mode):
    """Chosen as the map's colouring: a job under Jobs with its progress; cancelled, nothing is shown and it can be
    asked again; its result is the core's on the same points."""
    assert window.open_library(embedded)
    ctl, mp = window.map_controller, window.map_panel
    qtbot.waitUntil(lambda: len(ctl.ids) == 12 and not window.jobs.jobs, timeout=60000)
    if mode == "predicted label":
        tracks = sorted(window.session.tracks)
        window.session.edits.relabel_tracks(tracks[:2], "low")
        window.session.edits.relabel_tracks(tracks[2:], "high")
    mp.colour.setCurrentText(mode)
    job = ctl._extra_jobs[mode]
    assert job in window.jobs.jobs and job.name == f"colour the map by {mode}"
    job.cancel()
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=30000)
    assert mode not in ctl._extra and mp.status.text() == f"{mode}: cancelled"
    mp.colour.setCurrentText("label")
    mp.colour.setCurrentText(mode)
    job, events = ctl._extra_jobs[mode], []
    job.progress.connect(events.append)
    qtbot.waitUntil(lambda: mode in ctl._extra and not window.jobs.jobs, timeout=60000)
    assert events and events[-1].total and {e.stage for e in events} == {"clusters" if mode == "cluster" else "probe"}
    vectors = window.session.vectors
    if mode == "cluster":
        assert ctl._extra[mode].tolist() == clustering.kmeans_select(vectors)["labels"].tolist()
    else:
        cats, _palette, names = ctl.colours("label", ctl.ids)
        lab = np.where(cats < len(names) - 1, cats, -1)
        pred = probes.probe_scores(vectors, lab, window.session.segment_tracks(ctl.ids))["predictions"]
        assert ctl._extra[mode].tolist() == np.where(pred >= 0, pred, len(names) - 1).tolist()


def test_the_core_jobs_stop_between_steps_when_cancelled():
    X = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    for job in (lambda token: clustering.iter_kmeans_select(X, cancel=token),
                lambda token: probes.iter_probe_scores(X, np.arange(60) % 2, np.arange(60) // 3, cancel=token)):
        token = CancelToken()
        gen = job(token)
        first = next(gen)
        assert first.done == 0 and first.total
        token.cancel()
        with pytest.raises(Cancelled):
            next(gen)
