"""The window notices changes other programs make to the open library (a cron `musicemb ingest --embed`, a
relabel through the CLI, another window: real processes) and offers them with Reload; its own edits and jobs do
not raise the notice. The timer's slot is called directly (no waiting on the timer)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from musicemb_core.data.library import Library  # noqa: E402
from tests.conftest import write_tone  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)

# ruff: noqa: F811 (the fixtures above, as test arguments)

RELABEL = textwrap.dedent("""
    import sys
    from musicemb_core.data import edits
    from musicemb_core.data.library import Library
    with Library(sys.argv[1]) as lib:
        edits.relabel_tracks(lib, [int(sys.argv[2])], sys.argv[3])
""")


def cli(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "musicemb_core.cli", *args, "-q"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


def relabel_elsewhere(lib: Path, track_id: int, label: str) -> None:
    """Another program (another window) relabels a track."""
    subprocess.run([sys.executable, "-c", RELABEL, str(lib), str(track_id), label], check=True, timeout=60)


def notice(win) -> str | None:
    """The notice's text, None when it is not shown."""
    return win.notice_text.text() if win.notice.isVisibleTo(win) else None


def ids(win) -> dict[str, int]:
    return {Path(t.path).name: t.id for t in win.session.tracks.values()}


@pytest.fixture
def lib_path(tmp_path) -> Path:
    return tone_library(tmp_path)


def test_a_cron_import_is_noticed_and_reload_shows_it(qtbot, window, lib_path, tmp_path):
    """A cron job imports and embeds two files and relabels one track (labels CSV) while the window is open: the
    window went on showing two tracks and no map until the library was opened again. Now a bar says what changed;
    Reload shows the new tracks, labels and points."""
    assert window.open_library(lib_path)
    window.check_elsewhere()
    assert notice(window) is None
    for freq in (550, 880):
        write_tone(tmp_path / "new" / f"tone{freq}.wav", freq, seconds=9.0, sr=16000, seed=freq)
    (tmp_path / "labels.csv").write_text("path,label\ntone440.wav,calm\n")
    cli("ingest", str(lib_path), str(tmp_path / "audio"), str(tmp_path / "new"), "--labels",
        str(tmp_path / "labels.csv"), "--embed")
    window.check_elsewhere()
    assert notice(window) == ("The library was changed by another program (2 tracks added, labels of 1 track "
                              "changed, new embeddings).")
    assert len(window.session.tracks) == 2 and window.library_panel.model.rowCount() == 2  # until asked
    window.check_elsewhere()  # nothing more: said once, the bar unchanged
    assert notice(window).startswith("The library was changed by another program (2 tracks added")
    window.reload_action.trigger()
    assert notice(window) is None
    names = ids(window)
    assert sorted(names) == ["tone440.wav", "tone550.wav", "tone660.wav", "tone880.wav"]
    assert window.library_panel.model.rowCount() == 4
    assert window.session.tracks[names["tone440.wav"]].label == "calm"
    assert len(window.session.embedding_ids) == 12
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=30000)  # the map's own jobs: no notice of their own
    window.check_elsewhere()
    assert notice(window) is None


def test_new_vectors_are_said_also_when_a_job_of_the_window_ends_after_them(qtbot, window, tmp_path):
    """The window's own jobs (its maps, an evaluation) end after the cron's embed: the new vectors are still the
    other program's, not the window's."""
    from tests.conftest import embedded_tones

    lib_path = embedded_tones(tmp_path, freqs=(440, 660))
    assert window.open_library(lib_path)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 6 and not window.jobs.jobs, timeout=30000)
    write_tone(tmp_path / "new" / "tone990.wav", 990, seconds=9.0, sr=16000, seed=7)
    cli("ingest", str(lib_path), str(tmp_path / "new"), "--embed")
    window.session.library_job("a job of the window", lambda lib, token: (yield from ()))
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=30000)
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (1 track added, new embeddings)."
    window.reload_action.trigger()
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 9, timeout=30000)
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=30000)
    window.check_elsewhere()
    assert notice(window) is None


def test_the_windows_own_edit_does_not_raise_the_notice(qtbot, window, lib_path):
    """A label typed in the window is the window's own change; another program's relabel of the other track,
    made as well, is the only one said."""
    assert window.open_library(lib_path)
    names = ids(window)
    window.session.set_label(names["tone440.wav"], "mine")
    window.check_elsewhere()
    assert notice(window) is None
    relabel_elsewhere(lib_path, names["tone660.wav"], "theirs")
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (labels of 1 track changed)."
    window.session.set_label(names["tone440.wav"], "mine again")  # read again: the other label is shown now
    assert window.session.tracks[names["tone660.wav"]].label == "theirs"
    window.check_elsewhere()
    assert notice(window) is None


def test_the_windows_own_import_does_not_raise_the_notice(qtbot, window, lib_path, tmp_path):
    """An import run in the window (tracks, segments, embeddings and maps written by its own jobs)."""
    assert window.open_library(lib_path)
    write_tone(tmp_path / "more" / "tone990.wav", 990, seconds=9.0, sr=16000, seed=9)
    window.import_paths([str(tmp_path / "more")])
    qtbot.waitUntil(lambda: len(window.session.tracks) == 3 and not window.jobs.jobs, timeout=120000)
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=60000)  # the maps drawn after it
    window.check_elsewhere()
    assert notice(window) is None


def test_a_dismissed_notice_keeps_the_view_until_more_changes(qtbot, window, lib_path):
    assert window.open_library(lib_path)
    names = ids(window)
    relabel_elsewhere(lib_path, names["tone440.wav"], "calm")
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (labels of 1 track changed)."
    window.dismiss_action.trigger()
    window.check_elsewhere()
    assert notice(window) is None
    assert window.session.tracks[names["tone440.wav"]].label is None  # the old view, kept
    relabel_elsewhere(lib_path, names["tone660.wav"], "loud")
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (labels of 2 tracks changed)."


def test_findings_of_another_inspection_are_noticed(qtbot, window, lib_path):
    assert window.open_library(lib_path)
    with Library(lib_path) as lib:
        tid = min(t.id for t in lib.tracks())
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": tid, "start_s": 0.0,
                               "end_s": 9.0, "score": 1.0, "reason": "clipped"}], kinds=["clipping"])
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (findings of another inspection)."
    window.reload_action.trigger()
    assert [r["track_id"] for r in window.inspection.rows] == [tid]
    window.check_elsewhere()
    assert notice(window) is None


def test_a_library_gone_or_replaced_is_not_said_by_the_timer(qtbot, window, lib_path, tmp_path, bugs):
    """Unplugged, its mount point left empty, or another library mounted there: the timer says nothing (the
    next action does, as before) and raises nothing, tick after tick."""
    assert window.open_library(lib_path)
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    shutil.move(lib_path, tmp_path / "unplugged")
    for _ in range(2):
        window.check_elsewhere()
    lib_path.mkdir()
    window.check_elsewhere()
    lib_path.rmdir()
    with Library(lib_path, create=True) as other:
        other.conn.execute("INSERT INTO tracks (path, content_hash, size, mtime, duration_s, sample_rate, channels, "
                           "format, label, added_at) VALUES ('/x.wav', 'h', 1, 0, 9, 8000, 1, 'WAV', NULL, 0)")
    for _ in range(2):
        window.check_elsewhere()
    assert notice(window) is None and said == [] and not bugs
    shutil.rmtree(lib_path)
    shutil.move(tmp_path / "unplugged", lib_path)  # plugged in again, changed meanwhile
    relabel_elsewhere(lib_path, min(window.session.tracks), "calm")
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (labels of 1 track changed)."


TRAIN = ("--strategy", "contrastive", "--arch", "cnn2", "--dim", "8", "--epochs", "1", "--batch-size", "4",
         "--steps-per-epoch", "1", "--device", "cpu")


def listed(win) -> list[str]:
    """The models the picker lists."""
    return [e.name for e in win.models.picker.entries]


def test_a_model_trained_by_another_program_is_noticed_and_listed(qtbot, window, lib_path):
    """`musicemb train` run beside the window: its picker went on listing the models it had, with no notice."""
    assert window.open_library(lib_path)
    before = listed(window)
    cli("train", str(lib_path), *TRAIN, "--name", "theirs")
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (1 model trained)."
    assert listed(window) == before  # until asked
    window.reload_action.trigger()
    assert listed(window) == [*before, "theirs"]
    window.check_elsewhere()
    assert notice(window) is None
    cli("train", str(lib_path), *TRAIN, "--name", "theirs", "--replace")  # trained again: said again
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (1 model trained)."


def test_the_windows_own_training_does_not_raise_the_notice(qtbot, window, lib_path):
    """A model the window trains is listed when its run ends; another program's, trained meanwhile, is still said."""
    from musicemb_core.models import ModelConfig
    from musicemb_core.training.config import TrainConfig
    from musicemb_core.training.entry import iter_train

    assert window.open_library(lib_path)
    before = listed(window)
    train = TrainConfig(epochs=1, batch_size=4, steps_per_epoch=1, device="cpu")
    model = ModelConfig(arch="cnn2", dim=8)
    window.session.library_job("train mine", lambda lib, token: (yield from iter_train(
        lib, name="mine", train=train, model=model, cancel=token)), writes=True)
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=120000)
    window.check_elsewhere()
    assert notice(window) is None
    assert listed(window) == [*before, "mine"]
    cli("train", str(lib_path), *TRAIN, "--name", "theirs")
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (1 model trained)."


def test_files_that_failed_in_another_programs_import_are_noticed(qtbot, window, lib_path, tmp_path):
    """A cron import of a folder whose files are all broken adds no track: its failures were not said."""
    assert window.open_library(lib_path)
    for name in ("a.wav", "b.flac"):
        (tmp_path / "bad" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "bad" / name).write_bytes(b"not audio" * 100)
    cli("ingest", str(lib_path), str(tmp_path / "bad"))
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (2 files failed to import)."
    assert window.session.failures == []  # until asked
    window.reload_action.trigger()
    assert sorted(Path(f["path"]).name for f in window.session.failures) == ["a.wav", "b.flac"]
    assert window.library_panel.model.rowCount() == 4  # the two tracks and the two failures
    window.check_elsewhere()
    assert notice(window) is None


def test_the_windows_own_failed_import_does_not_raise_the_notice(qtbot, window, lib_path, tmp_path):
    assert window.open_library(lib_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.wav").write_bytes(b"not audio" * 100)
    window.import_paths([str(tmp_path / "bad")])
    qtbot.waitUntil(lambda: len(window.session.failures) == 1 and not window.jobs.jobs, timeout=120000)
    window.check_elsewhere()
    assert notice(window) is None


def test_tempo_and_key_analysed_again_by_another_program_are_noticed(qtbot, window, lib_path, tmp_path):
    """A cron import analyses again the tracks an older release analysed, and another program reads a file's tags
    again: no file changes, so nothing was said and the window went on showing the old tempo, key and tags."""
    with Library(lib_path) as lib:  # as an older release estimated them
        for t in lib.tracks():
            lib.set_analysis(t.id, bpm=100.0, bpm_confidence=0.9, key="C major", key_confidence=0.8,
                             analysis={"bpm_reason": "", "key_reason": "", "analysed": True, "version": 1})
    assert window.open_library(lib_path)
    assert {t.bpm for t in window.session.tracks.values()} == {100.0}
    cli("ingest", str(lib_path), str(tmp_path / "audio"))
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (tempo/key of 2 tracks changed)."
    window.reload_action.trigger()
    with Library(lib_path) as lib:
        stored = {t.id: (t.bpm, t.key, t.analysis["bpm_reason"]) for t in lib.tracks()}
    assert {i: (t.bpm, t.key, t.analysis["bpm_reason"]) for i, t in window.session.tracks.items()} == stored
    assert all(bpm != 100.0 and reason for bpm, _key, reason in stored.values())
    window.check_elsewhere()
    assert notice(window) is None
    tid = ids(window)["tone440.wav"]
    with Library(lib_path) as lib:
        lib.set_tags([(tid, {"title": "Concert A", "bpm": "120"})])
    window.check_elsewhere()
    assert notice(window) == "The library was changed by another program (file tags of 1 track changed)."
    window.reload_action.trigger()
    assert window.session.tracks[tid].tags == {"title": "Concert A", "bpm": "120"}
    window.check_elsewhere()
    assert notice(window) is None
