"""A robustness sweep of the desktop app, driven as a demanding user would: actions with no library, an empty
library, a library without embeddings; jobs started twice, cancelled at once; files gone after import; odd
exports, sets and filters; the Hum panel with silence; libraries that cannot be opened or are locked. Every test
fails on an exception raised in a Qt slot or a job failing with a traceback (the "hit a bug" dialog)."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from tests.conftest import embedded_tones, write_tone  # noqa: E402
from tests.gui.helpers import shown_window  # noqa: E402


@pytest.fixture
def bugs(monkeypatch) -> list[str]:
    """Tracebacks of exceptions raised in Qt slots during the test (through ``sys.excepthook``, as the app's own
    hook sees them); the test fails at teardown if any was recorded."""
    found: list[str] = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: found.append("".join(traceback.format_exception(*exc))))
    yield found
    assert not found, "exceptions in Qt slots:\n" + "\n".join(found)


@pytest.fixture
def boxes(monkeypatch) -> list[tuple[str, str]]:
    """(title, text) of every message box the app shows; file dialogs answer "cancelled" unless a test says
    otherwise (no dialog ever blocks)."""
    shown: list[tuple[str, str]] = []
    for name in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda _parent, title, text, *a, **k: shown.append((title, text)) or QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    return shown


@pytest.fixture
def window(qtbot, tmp_path, bugs, boxes):
    """The shown main window; a job that fails with a traceback (the "musicemb hit a bug" dialog) is recorded in
    ``bugs`` too."""
    windows = shown_window(qtbot, tmp_path)
    win = next(windows)
    shown = win._job_failed

    def job_failed(name, msg, tb):
        if tb:
            bugs.append(f"{name}: {msg}\n{tb}")
        shown(name, msg, tb)
    win._job_failed = job_failed
    yield win
    next(windows, None)  # its jobs are cancelled and waited for


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    """A library of four 9 s tones, imported and embedded (the built-in spaces)."""
    return embedded_tones(tmp_path_factory.mktemp("sweep"))


def status(win) -> str:
    return win.statusBar().currentMessage()


# -- no library open ---------------------------------------------------------------------------------------------
def test_colour_by_finding_with_no_library_open(qtbot, window, bugs):
    """Colouring the (empty) map by finding before any library is open raised KeyError in the slot."""
    window.map_panel.colour.setCurrentText("finding")
    qtbot.wait(50)
    assert window.map_panel.colour.currentText() == "finding"
    assert window.inspection.kinds_of(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []
    assert not bugs


# -- jobs --------------------------------------------------------------------------------------------------------
def test_evaluation_cancelled_at_once_says_so(qtbot, window, embedded):
    """Evaluate, then Jobs ▸ Cancel all at once: the panel said "evaluating…" for ever."""
    assert window.open_library(embedded)
    window.evaluation_panel.start()
    window.jobs.cancel_all()
    window.jobs.cancel_all()  # twice: harmless
    assert window.jobs.wait(30000)
    qtbot.waitUntil(lambda: window.evaluation_panel.run.isEnabled())
    assert window.evaluation_panel.state.text() == "evaluation cancelled"


def test_an_evaluation_of_the_library_open_before_is_cancelled_and_run_is_free(qtbot, window, embedded, tmp_path):
    """Evaluate, then open another library: the old evaluation ran on (its figures shown nowhere) and Run stayed
    greyed out without a word until it ended."""
    import shutil

    shutil.copytree(embedded.parent, tmp_path / "other")
    assert window.open_library(embedded)
    panel = window.evaluation_panel
    panel.start()
    old = panel.job
    assert old is not None and not panel.run.isEnabled()
    assert window.open_library(tmp_path / "other" / embedded.name)
    assert old.token.cancelled  # asked to stop at once
    qtbot.waitUntil(lambda: old.state in ("cancelled", "done") and panel.run.isEnabled(), timeout=30000)
    assert panel.state.text() == "" and panel.result is None
    panel.start()
    assert panel.job is not None and panel.job is not old
    assert window.jobs.wait(60000)


def test_inspect_or_evaluate_asked_again_while_it_runs_starts_no_second_job(qtbot, window, embedded):
    """Library ▸ Inspect (or Evaluate) again while its job ran started a second one, and the Run button came back
    on when the first ended while the second still ran."""
    assert window.open_library(embedded)
    for start, prefix in ((window.inspection.run, "inspect"), (window.evaluation_panel.start, "evaluate")):
        start()
        start()
        running = [j for j in window.jobs.jobs if j.name.startswith(prefix)]
        assert len(running) == 1 and status(window) == f"{running[0].name} is still running (see Jobs)"
    assert window.jobs.wait(60000)
    qtbot.waitUntil(lambda: window.inspection_panel.run.isEnabled() and window.evaluation_panel.run.isEnabled())
    window.inspection.run()  # the job ended: asked again, it runs
    assert [j.name for j in window.jobs.jobs] == ["inspect with similarity"]


def test_training_of_the_library_open_before_shows_nothing_in_the_next(qtbot, window, embedded, library_copy):
    """Another library opened while a training runs: the panel went on drawing that run's curves and steps, and
    when it ended left "epoch 1, step ...: loss ..." in the new library's panel for good."""
    assert window.open_library(library_copy)
    panel = window.training_panel
    panel.train_form.set_value("epochs", 100)
    panel.train_form.set_value("batch_size", 4)
    panel.start.click()
    qtbot.waitUntil(lambda: len(panel.curves.series_data("train loss")[0]) >= 1, timeout=60000)
    assert window.open_library(embedded)
    assert panel.state.text() == "the run in the library open before goes on (Cancel stops it)"
    qtbot.wait(500)  # more steps of that run
    assert len(panel.curves.series_data("train loss")[0]) == 0
    with qtbot.waitSignal(panel.job.ended, timeout=60000):
        panel.cancel.click()
    assert panel.start.isEnabled() and panel.state.text() == "" and not panel.embed.isEnabled()


def test_training_the_model_in_use_again_says_its_vectors_are_old(qtbot, window, library_copy):
    """Trained again under the name of the model in use: the model's view kept the embedder of the old weights,
    and the map and neighbours stayed on the vectors the old weights made, without a word."""
    import shutil

    from musicemb_core.resources import builtin_model_dir

    shutil.copytree(builtin_model_dir("default"), library_copy / "models" / "mine")
    with Library(library_copy) as lib:
        drive(iter_embed(lib, model="mine"))
    assert window.open_library(library_copy)
    window.models.choose("mine")
    s, panel = window.session, window.training_panel
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=60000)
    old = s.embedder()
    panel.name.setText("mine")
    for field, value in (("epochs", 1), ("steps_per_epoch", 1), ("batch_size", 4)):
        panel.train_form.set_value(field, value)
    asked = []
    panel.confirm_replace = lambda name: asked.append(name) or False  # kept: nothing starts
    panel.start.click()
    assert asked == ["mine"] and not [j for j in window.jobs.jobs if j.name.startswith("train")]
    assert "mine kept" in panel.state.text()
    panel.confirm_replace = lambda name: asked.append(name) or True
    panel.start.click()
    qtbot.waitSignal(panel.job.ended, timeout=120000).wait()
    assert panel.job.state == "done"
    qtbot.waitUntil(lambda: "were made by other weights" in status(window))
    assert "Library ▸ Embed" in status(window)  # the app's action, not the CLI's command
    assert s.vectors is None and len(window.map_controller.ids) == 0
    assert s.embedder() is not old  # the model's view: the new weights'


def test_a_map_of_vectors_made_stale_while_it_was_computed_is_not_shown(qtbot, window, library_copy):
    """A map job still running when the model in use was trained again (its UMAP after the quick PCA) drew the old
    vectors' points again once it ended, after the app had cleared them (a race seen in CI); neighbours searched
    among the old vectors were listed late the same way."""
    import shutil

    from safetensors.torch import load_file, save_file

    from musicemb_core.models.checkpoint import weights_path
    from musicemb_core.resources import builtin_model_dir

    folder = library_copy / "models" / "mine"
    shutil.copytree(builtin_model_dir("default"), folder)
    with Library(library_copy) as lib:
        drive(iter_embed(lib, model="mine"))
    assert window.open_library(library_copy)
    window.models.choose("mine")
    ctl = window.map_controller
    qtbot.waitUntil(lambda: len(ctl.ids) == 12 and not window.jobs.jobs, timeout=60000)
    answers: list[int] = []
    ctl.neighboursReady.connect(lambda seg_id, _rows: answers.append(seg_id))
    ctl._submit_map("pca")  # a map job and a neighbour search in flight ...
    job = window.jobs.jobs[-1]
    ctl.request_neighbours(int(ctl.ids[0]), 5)
    weights = load_file(weights_path(folder))  # ... when the weights change (trained again)
    save_file({k: v + 1e-3 if v.is_floating_point() else v for k, v in weights.items()}, weights_path(folder))
    window.session.reload_embeddings()
    assert len(ctl.ids) == 0
    qtbot.waitSignal(job.ended, timeout=60000).wait()
    qtbot.wait(500)
    assert len(ctl.ids) == 0 and window.session.vectors is None and not answers


# -- odd inputs --------------------------------------------------------------------------------------------------
def test_training_field_with_text_in_a_number_names_the_field(qtbot, window, embedded):
    """"abc" in a number field of the training form said "⚠ invalid literal for int() with base 10: 'abc'"."""
    assert window.open_library(embedded)
    panel = window.training_panel
    field = panel.train_form.editors["steps_per_epoch"]
    field.setText("abc")
    panel.start.click()
    assert panel.state.text() == "⚠ steps_per_epoch: 'abc' is not a whole number"
    assert panel.start.isEnabled() and not [j for j in window.jobs.jobs if j.name.startswith("train")]


# -- files gone or broken after import ----------------------------------------------------------------------------
@pytest.fixture
def library_copy(embedded, tmp_path) -> Path:
    """A copy of ``embedded`` whose tracks are copies of its audio (free to delete or break)."""
    import shutil
    import sqlite3

    shutil.copytree(embedded.parent, tmp_path / "copy")
    con = sqlite3.connect(tmp_path / "copy" / "lib" / "library.sqlite")
    con.execute("UPDATE tracks SET path = replace(path, ?, ?)", (str(embedded.parent), str(tmp_path / "copy")))
    con.commit()
    con.close()
    return tmp_path / "copy" / "lib"


def test_playing_a_deleted_or_broken_file_says_which_and_why(qtbot, window, library_copy):
    """A track deleted (or overwritten with junk) after import, then played: the status bar said
    "cannot play: AudioError: …"; now the file and the problem only, and the rest keeps playing."""
    assert window.open_library(library_copy)
    tracks = sorted(window.session.tracks.values(), key=lambda t: t.id)
    gone, junk, fine = Path(tracks[0].path), Path(tracks[1].path), tracks[2]
    gone.unlink()
    junk.write_bytes(b"not audio at all" * 64)
    window.play_track(tracks[0].id)
    qtbot.waitUntil(lambda: status(window).startswith("cannot play"))
    assert status(window) == f"cannot play: {gone}: file not found"
    window.play_track(tracks[1].id)
    qtbot.waitUntil(lambda: status(window) != f"cannot play: {gone}: file not found")
    assert status(window).startswith(f"cannot play: {junk}: ") and "Error" not in status(window)
    seg = next(s for s in window.session.seg_row if window.session.segment(s)["track_id"] == tracks[0].id)
    window.inspection.show_spectrogram(seg)  # a finding's spectrogram of the deleted file
    qtbot.waitUntil(lambda: status(window).startswith("spectrogram:"))
    assert status(window) == f"spectrogram: {gone}: file not found"
    window.play_track(fine.id)
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1)  # another track still plays


# -- sets ---------------------------------------------------------------------------------------------------------
def test_a_set_lists_each_track_once(qtbot, window, embedded):
    """A set asked of the same track twice was "ordered" into a set of one track played twice; one, zero or a
    repeated track now say a set needs two tracks, and repeats are left out of a longer set."""
    assert window.open_library(embedded)
    a, b = sorted(window.session.tracks)[:2]
    ctl = window.library_controller
    for ids in ([a, a], [a], [], [b, b, b]):
        ctl.build_set(ids)
        assert status(window).startswith("select at least 2 tracks"), ids
    ctl.build_set([a, b, a, b])
    qtbot.waitUntil(lambda: ctl.plan is not None)
    assert sorted(ctl.set_dialog.track_ids()) == [a, b]
    assert ctl.set_dialog.summary.text().startswith("2 tracks")


# -- the Hum panel ------------------------------------------------------------------------------------------------
def test_closing_the_window_while_humming_lets_the_microphone_go(qtbot, window, embedded):
    """Closing the window during a recording left the recorder running (its timer kept draining it)."""
    from tests.gui.test_hum_panel import FakeRecorder, hum_signal

    assert window.open_library(embedded)
    hum = window.hum_panel
    hum.recorder_factory = FakeRecorder
    FakeRecorder.signal = hum_signal(5.0)
    hum.start_recording()
    rec = hum.recorder
    qtbot.wait(200)
    with qtbot.assertNotEmitted(hum.queryReady):
        window.close()
        qtbot.wait(100)
    assert hum.recorder is None and rec._t0 is None  # stopped, nothing searched
    assert not hum._timer.isActive() and hum.record.isEnabled() and not hum.stop.isEnabled()


# -- inspection ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inspected(tmp_path_factory) -> Path:
    """Two tones and a clipped tone, imported, embedded and inspected (the clipped one has findings)."""
    import numpy as np
    import soundfile as sf

    from musicemb_core.workflows.inspect import iter_inspect

    root = tmp_path_factory.mktemp("inspected")
    for i, freq in enumerate((440, 660)):
        write_tone(root / "audio" / f"tone{freq}.wav", freq, seconds=9.0, sr=16000, seed=i)
    t = np.arange(9 * 16000) / 16000
    sf.write(root / "audio" / "clipped.wav", np.clip(3 * np.sin(2 * np.pi * 300 * t), -1, 1).astype(np.float32),
             16000)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], jobs=1))
        drive(iter_embed(lib))
        assert drive(iter_inspect(lib)).findings
    return root / "lib"


def test_cancelled_inspection_says_the_findings_are_kept(qtbot, window, inspected):
    """Run inspection again and cancel it: the status bar said "inspection cancelled: 0 findings" while the
    last run's findings were kept (and still listed)."""
    assert window.open_library(inspected)
    before = len(window.inspection.rows)
    assert before
    window.inspection.run()
    window.jobs.cancel_all()
    qtbot.waitUntil(lambda: status(window).startswith("inspection"), timeout=30000)
    assert status(window) == f"inspection cancelled: the {before} findings of the last run are kept"
    assert len(window.inspection.rows) == before and window.inspection_panel.proxy.rowCount() == before


# -- libraries that cannot be opened or changed -------------------------------------------------------------------
def test_label_typed_into_a_read_only_library_is_not_left_in_the_table(qtbot, window, library_copy, monkeypatch):
    """Typing a label into the table of a read-only library: the status bar said it is read-only but the table
    kept showing the new label as if stored."""
    import os

    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if mode == os.W_OK and str(library_copy)
                        in str(p) else access(p, mode, *a, **k))  # as a user without write permission sees it
    assert window.open_library(library_copy)
    panel = window.library_panel
    row = next(r for r in range(panel.proxy.rowCount()) if panel.track_id_at(r) is not None)
    tid = panel.track_id_at(row)
    assert panel.model.setData(panel.proxy.mapToSource(panel.proxy.index(row, 2)), "techno")
    assert "read-only" in status(window)
    qtbot.waitUntil(lambda: all(panel.model.index(r, 2).data() != "techno" for r in range(panel.model.rowCount())))
    assert window.session.tracks[tid].label is None
    with Library(library_copy) as lib:
        assert lib.track(tid).label is None


# -- jobs that write ----------------------------------------------------------------------------------------------
def test_a_folder_added_while_another_imports_waits_its_turn(qtbot, window, tmp_path, monkeypatch):
    """Drop a folder, then another while the first still imports: the second failed with "library busy:
    `… (ingest)` (pid N)", the app's own pid (the library has one writer). It now waits for the first and both
    are imported."""
    monkeypatch.setenv("MUSICEMB_LOCK_WAIT", "0.2")  # how long a second writer waits before "library busy"
    for folder, freqs in (("a", (440, 550)), ("b", (660, 880))):
        for i, freq in enumerate(freqs):
            write_tone(tmp_path / folder / f"{folder}{freq}.wav", freq, seconds=9.0, sr=16000, seed=i)
    assert window.create_library(tmp_path / "lib")
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    window.import_paths([str(tmp_path / "a")])
    window.import_paths([str(tmp_path / "b")])
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=60000)
    qtbot.wait(100)
    assert not [m for m in said if "busy" in m]
    assert {Path(t.path).parent.name for t in window.session.tracks.values()} == {"a", "b"}
    assert len(window.session.tracks) == 4
    assert "import 1 item(s): starts when import 1 item(s) ends (one job writes to the library at a time)" in said


def test_a_map_drawn_while_an_embed_publishes_new_vectors_is_not_mismatched(embedded, tmp_path):
    """A UMAP map job (drawn in a child process) while an import added segments: the child read the new vectors,
    the parent paired them with the old ids and the job failed with a ValueError traceback ("musicemb hit a
    bug"). Now a one-line error; the map is drawn again for the new embeddings."""
    from musicemb_core.common.errors import LibraryError
    from musicemb_core.stored_vectors import load_embeddings
    from musicemb_core.workflows.maps import _project_library

    with Library(embedded) as lib:
        ids = load_embeddings(lib, "similarity").ids
    args = ("pca", 0, 100_000, 50_000)
    assert _project_library(str(embedded), "similarity", args, ids).shape == (len(ids), 2)
    with pytest.raises(LibraryError, match="changed while the map was being drawn"):
        _project_library(str(embedded), "similarity", args, ids[:-3])  # the ids the parent read before an embed


# -- segments without embeddings ----------------------------------------------------------------------------------
def test_show_on_map_of_a_segment_not_embedded_yet(qtbot, window, library_copy, bugs):
    """A track imported but not embedded yet (an embed cancelled, another model on the map), shown on the map
    from the hum or inspection results: IndexError in the slot for the last segments, and silently the neighbours
    of another segment for the others. Now the map says the segment has no embedding yet; a bogus id is refused."""
    for i, freq in enumerate((300, 320)):
        write_tone(library_copy.parent / "new" / f"new{freq}.wav", freq, seconds=9.0, sr=16000, seed=7 + i)
    with Library(library_copy) as lib:
        drive(iter_ingest(lib, [library_copy.parent / "new"], jobs=1))  # imported, not embedded
    assert window.open_library(library_copy)
    s, panel = window.session, window.map_panel
    embedded = set(s.embedding_ids.tolist())
    missing = sorted(i for i in s.seg_row if i not in embedded)
    assert missing
    said: list[str] = []
    window.map_controller.neighboursReady.connect(lambda src, rows: said.append(f"neighbours of {src}"))
    lines: list[str] = []
    window.map_controller.status.connect(lines.append)
    for seg in (missing[0], missing[-1]):
        window.show_on_map(seg)
        name = s.track_name(s.segment(seg)["track_id"])
        assert (f"{name}: this segment has no 'similarity' embedding yet, so no neighbours (Library ▸ Embed "
                "computes it)") in lines
    window.show_on_map(10 ** 6)
    assert panel.status.text() == f"segment {10 ** 6} is not in the open library"
    qtbot.wait(300)
    assert not said and not bugs
    window.show_on_map(min(embedded))  # an embedded one still lists its neighbours
    qtbot.waitUntil(lambda: said == [f"neighbours of {min(embedded)}"])


def test_a_library_whose_embeddings_are_older_than_its_segments(qtbot, window, library_copy, bugs):
    """A track's file changed and was imported again (its segments cut again) but not embedded since: opening the
    library raised KeyError in the map's slots (drawing, every colouring, the filters) and evaluation failed
    with a KeyError traceback. Now the map and the evaluation use the segments still there, and the status bar
    says the embeddings are out of date."""
    with Library(library_copy) as lib:
        first = min(lib.tracks(), key=lambda t: t.id)
        write_tone(Path(first.path), 470, seconds=12.0, sr=16000, seed=99)  # new content, one segment more
        assert drive(iter_ingest(lib, [Path(first.path).parent], jobs=1)).updated == 1
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    assert window.open_library(library_copy)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) > 0)
    s = window.session
    assert set(window.map_controller.ids.tolist()) <= set(s.seg_row) and set(s.embedding_ids.tolist()) <= set(s.seg_row)
    qtbot.waitUntil(lambda: any("no longer in the library" in m for m in said))
    assert "3 embedded segments are no longer in the library (their tracks were removed, or cut again after a " \
           "change): Library ▸ Embed brings the embeddings up to date" in said
    for mode in ("label", "track", "finding", "BPM", "key"):
        window.map_panel.colour.setCurrentText(mode)
    window.show_on_map(int(window.map_controller.ids[0]))
    panel = window.evaluation_panel
    panel.reid.setValue(5)  # re-identification snippets searched against the index of the stale embeddings
    panel.start()
    qtbot.waitUntil(lambda: panel.result is not None or panel.state.text().startswith("⚠"), timeout=30000)
    assert panel.result is not None and panel.result["segments"] == len(s.embedding_ids)
    assert not bugs


def test_a_track_label_finding_of_a_file_changed_since(qtbot, window, library_copy, bugs):
    """A track label finding names its example and arguing segments; the track's file changed and was imported
    again (its segments cut again): selecting the finding raised KeyError in two slots (its spectrogram, the
    model's view) and Play said "cannot play: KeyError". Now the finding keeps no link to the old segments."""
    with Library(library_copy) as lib:
        first = min(lib.tracks(), key=lambda t: t.id)
        sid = int(lib.segments()["id"][0])
        lib.replace_findings([{"kind": "label", "segment_id": None, "track_id": first.id, "start_s": 0.0,
                               "end_s": first.duration_s, "score": 0.9, "reason": "label looks wrong",
                               "details": {"given": "a", "suggested": "b", "example_segment_id": sid,
                                           "segments": [{"segment_id": sid, "start_s": 0.0, "end_s": 3.0, "p": 0.9}]}}],
                             kinds=["label"])
        write_tone(Path(first.path), 470, seconds=12.0, sr=16000, seed=99)
        assert drive(iter_ingest(lib, [first.path], jobs=1)).updated == 1
    assert window.open_library(library_copy)
    panel = window.inspection_panel
    panel.table.selectRow(0)
    assert panel.selected()[0]["reason"] == "label looks wrong"
    assert not panel.play.isEnabled() and not panel.evidence_box.isVisibleTo(panel)
    qtbot.wait(200)
    assert not bugs


def test_the_open_library_moved_away(qtbot, window, library_copy, bugs):
    """The library's folder moved (or its drive unplugged) while open: changing the map's method, Library ▸ Embed
    and opening the model list raised LibraryError in the slots. Now each says in one line that the library is
    not there any more."""
    import shutil

    assert window.open_library(library_copy)
    shutil.move(str(library_copy), str(library_copy.parent / "moved"))
    gone = (f"{library_copy}: the open library is not there any more (moved, deleted or on a drive unplugged); "
            "File ▸ Open library… opens it again")
    window.map_panel.method.setCurrentText("UMAP")  # another method than the one shown
    assert window.map_panel.status.text() == gone
    window.models.picker.aboutToShow.emit()
    assert status(window) == gone
    window.embed_library()
    window._label_edited(min(window.session.tracks), "techno")
    assert status(window) == gone
    assert window.jobs.wait(30000)
    qtbot.wait(100)
    assert not bugs


# -- closing ------------------------------------------------------------------------------------------------------
def test_closing_the_window_during_an_import_starts_nothing_after(qtbot, window, tmp_path, bugs):
    """Close the window while an import runs: the import stopped, but its result, delivered after the close,
    refreshed the library and started a map job; the app quit while it ran ("Signal source has been deleted"
    tracebacks at exit). Now nothing starts once the window is closed."""
    for i in range(4):
        write_tone(tmp_path / "a" / f"a{i}.wav", 300 + 50 * i, seconds=20.0, sr=16000, seed=i)
    assert window.create_library(tmp_path / "lib")
    window.import_paths([str(tmp_path / "a")])
    qtbot.waitUntil(lambda: window.jobs.jobs and window.jobs.jobs[0].last is not None, timeout=30000)  # under way
    started: list[str] = []
    window.jobs.jobAdded.connect(lambda job: started.append(job.name))
    window.close()
    assert not [j for j in window.jobs.jobs if j.state == "running"]  # the import has stopped
    qtbot.wait(500)  # the import's result is delivered now
    assert started == [] and window.jobs.wait(1000) and not bugs


def test_more_like_a_track_not_embedded_says_so_in_the_apps_words(qtbot, window, tmp_path):
    """"More like this" on a track imported but not embedded said "more like this: LIB: no embeddings for model
    'similarity'; run `musicemb embed`" (a command line, the library rather than the track); now the track's
    name and Library ▸ Embed."""
    from tests.gui.helpers import tone_library

    assert window.open_library(tone_library(tmp_path))  # imported, not embedded
    panel = window.library_panel
    panel.table.selectRow(0)
    name = window.session.track_name(panel.selected_track())
    panel.more_like.click()
    assert window.map_panel.status.text() == (f"more like this: {name} is not embedded with 'similarity' yet, so "
                                              "there is nothing to compare it with (Library ▸ Embed computes it)")
    qtbot.wait(300)  # nothing else comes back
    assert window.map_panel.status.text().startswith(f"more like this: {name} is not embedded")


def test_a_label_typed_while_another_process_writes_does_not_freeze_the_window(qtbot, window, library_copy):
    """Another process holding the catalogue's write lock (a long write, a sqlite3 shell): a label typed into the
    table froze the window for over 2 minutes (the core's retry). Now about a second, then one line, and the
    table shows the stored label again."""
    import subprocess
    import textwrap
    import time

    assert window.open_library(library_copy)
    code = textwrap.dedent("""
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code, str(library_copy / "library.sqlite")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        panel = window.library_panel
        row = next(r for r in range(panel.proxy.rowCount()) if panel.track_id_at(r) is not None)
        t0 = time.monotonic()
        assert panel.model.setData(panel.proxy.mapToSource(panel.proxy.index(row, 2)), "techno")
        assert time.monotonic() - t0 < 5
        assert "library busy" in status(window)
        qtbot.waitUntil(lambda: all(panel.model.index(r, 2).data() != "techno" for r in range(panel.model.rowCount())))
    finally:
        holder.kill()
        holder.wait()


def test_a_cancelled_import_starts_no_embed(qtbot, window, tmp_path):
    """With a trained model in use the import is followed by an embed job: cancelling the import still started
    the embed of what it had added (a second job the user had not asked for, right after a Cancel)."""
    for i in range(12):  # long enough an import to be cancelled half-way
        write_tone(tmp_path / "a" / f"a{i}.wav", 300 + 50 * i, seconds=20.0, sr=16000, seed=i)
    assert window.create_library(tmp_path / "lib")
    window.session.model = "my-model"  # a trained model: imported first, embedded by a job after
    started: list[str] = []
    window.jobs.jobAdded.connect(lambda job: started.append(job.name))
    window.import_paths([str(tmp_path / "a")])
    qtbot.waitUntil(lambda: window.jobs.jobs and window.jobs.jobs[0].last is not None, timeout=30000)
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    window.jobs.cancel_all()
    qtbot.waitUntil(lambda: any(m.startswith("import ") for m in said), timeout=30000)
    qtbot.wait(300)
    assert any(m.startswith("import cancelled") for m in said), said
    assert started == ["import 1 item(s)"]


def test_humming_while_an_import_runs_waits_for_it(qtbot, window, tmp_path, monkeypatch):
    """Hum (or load a hum) while folders import: the melody index job failed after a few seconds with "cannot
    search by humming: library busy: `… (ingest)`", the app's own import. Now it waits for the import (which
    brings the index up to date) and the songs are listed."""
    import numpy as np

    monkeypatch.setenv("MUSICEMB_LOCK_WAIT", "0.2")
    for i, freq in enumerate((440, 550, 660)):
        write_tone(tmp_path / "a" / f"a{freq}.wav", freq, seconds=9.0, sr=16000, seed=i)
    assert window.create_library(tmp_path / "lib")
    window.import_paths([str(tmp_path / "a")])
    t = np.arange(3 * 16000) / 16000
    window.hum.search((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, "a file")
    hum = window.hum_panel
    qtbot.waitUntil(lambda: hum.results.rowCount() > 0 or hum.state.text().startswith("⚠"), timeout=60000)
    assert hum.results.rowCount() == 3, hum.state.text()


def test_a_library_too_small_for_a_map_starts_no_map_job(qtbot, window, tmp_path, bugs):
    """A library of one short track (one segment) started a PCA and a UMAP job on opening, each failing with "a
    map needs at least 3 points", and another at every change of method: a pile of failed jobs. Now one line."""
    write_tone(tmp_path / "music" / "short.wav", 440.0, seconds=3.0)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "music"], jobs=1))
        drive(iter_embed(lib))
    jobs = []
    window.jobs.jobAdded.connect(jobs.append)
    assert window.open_library(tmp_path / "lib")
    window.map_controller.request_map("tsne")
    qtbot.wait(300)
    assert [j.name for j in jobs if "map" in j.name] == []
    assert window.map_panel.status.text() == "a map needs at least 3 embedded segments; this library has 1"


def test_an_evaluation_with_a_chosen_number_of_clusters(qtbot, window, embedded):
    """The Evaluation panel's k-means took k by silhouette from 2-10 only; its clusters box asks for k."""
    assert window.open_library(embedded)
    panel = window.evaluation_panel
    panel.reid.setValue(0)
    panel.clusters.setValue(3)
    panel.start()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=120000)
    c = panel.result["clustering"]
    assert c["k"] == 3 and c["ks"] == [3] and panel.composition.rowCount() == 3
    assert "k = 3" in panel.metrics.toPlainText() and "by silhouette" not in panel.metrics.toPlainText()
