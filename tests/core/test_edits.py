"""The edit log: label previews, whole-track labels and segment tags (the labels training and evaluation see),
finding reviews, undo that survives a reopen, and the active model remembered per library."""

from __future__ import annotations

import json
import shutil

import pytest

from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.progress import drive
from musicemb_core.data import edits
from musicemb_core.data.datasets import iter_load_segments
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import SCHEMA_VERSION, Library
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.resources import builtin_model_dir
from musicemb_core.workflows.evaluate import segment_labels
from musicemb_core.workflows.models import active_model, list_models, set_active_model
from tests.conftest import write_tone


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def _library(root, durations=(12.0, 9.0, 6.0), labels=("rock", "rock", None)) -> Library:
    """Tracks of 4, 3 and 2 segments (3 s windows, no overlap)."""
    lib = Library(root, create=True)
    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    for i, (dur, label) in enumerate(zip(durations, labels, strict=True)):
        lib.save_track({"path": f"/m/{i}.wav", "content_hash": f"h{i}", "size": 1, "mtime": 1.0, "duration_s": dur,
                        "sample_rate": 8000, "channels": 1, "format": "WAV", "label": label, "tags": {},
                        "warning": ""}, cfg=cfg, starts_of=window_starts)
    return lib


def _labels(lib):
    return {t.id: t.label for t in lib.tracks()}


def test_preview_counts_tracks_segments_and_partly_selected_tracks(tmp_path):
    with _library(tmp_path / "lib") as lib:
        seg = lib.segments()
        by_track = {t: seg["id"][seg["track_id"] == t].tolist() for t in (1, 2, 3)}
        assert [len(v) for v in by_track.values()] == [4, 3, 2]
        p = edits.label_preview(seg, by_track[1] + by_track[2][:1])
        assert (p.segments, p.tracks, p.partial_tracks, p.track_segments) == (5, 2, 1, 7)
        assert p.describe() == "5 segments of 2 tracks selected; 1 track only partly selected"
        whole = edits.label_preview(seg, by_track[3])
        assert whole.describe() == "2 segments of 1 track selected" and whole.partial_tracks == 0
        assert edits.label_preview(seg, [999]).tracks == 0


def test_labels_tags_and_reviews_undo_in_order_and_across_a_reopen(tmp_path):
    root = tmp_path / "lib"
    with _library(root) as lib:
        seg = lib.segments()
        first = seg["id"][seg["track_id"] == 1].tolist()
        tag = edits.tag_segments(lib, first[:2], "solo")
        assert tag.description == "tag 2 segments 'solo'"
        assert edits.segment_tags(lib) == {first[0]: "solo", first[1]: "solo"}
        assert _labels(lib) == {1: "rock", 2: "rock", 3: None}  # the track keeps its label
        whole = edits.relabel_tracks(lib, [1, 3], " jazz ")
        assert whole.description == "label 2 tracks 'jazz'"
        assert _labels(lib) == {1: "jazz", 2: "rock", 3: "jazz"}
        assert edits.segment_tags(lib) == {}  # a whole-track label shows on every segment
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": 2, "start_s": 0.0,
                               "end_s": 9.0, "score": 1.0, "reason": "r"}], kinds=["clipping"])
        fid = lib.findings()[0]["id"]
        assert edits.review_findings(lib, [fid], "dismissed").description == "dismiss the clipping finding on 1.wav"
        assert edits.relabel_tracks(lib, [2], "rock") is None  # nothing changes: nothing logged
        assert edits.relabel_tracks(lib, [2], "").description == "clear the label of 1.wav"
        edits.undo_last(lib)
        assert edits.last_edit(lib).description == "dismiss the clipping finding on 1.wav"

    with Library(root) as lib:  # the stack survives a restart
        assert lib.findings()[0]["status"] == "dismissed"
        r = edits.undo_last(lib)
        assert (r.edit.description, r.restored, r.skipped) == ("dismiss the clipping finding on 1.wav", 1, 0)
        assert lib.findings()[0]["status"] == "open"
        r = edits.undo_last(lib)
        assert r.edit.description == "label 2 tracks 'jazz'" and r.restored == 4  # 2 labels + 2 tags back
        assert _labels(lib) == {1: "rock", 2: "rock", 3: None}
        assert edits.segment_tags(lib) == {first[0]: "solo", first[1]: "solo"}
        assert edits.undo_last(lib).edit.description == "tag 2 segments 'solo'"
        assert edits.segment_tags(lib) == {}
        assert edits.undo_last(lib) is None and edits.last_edit(lib) is None
        rows = lib.conn.execute("SELECT changes FROM edits ORDER BY id").fetchall()
        assert len(rows) == 4 and json.loads(rows[1][0])[0] == {"kind": "track_label", "id": 1, "before": "rock",
                                                                "after": "jazz"}


def test_undo_keeps_later_changes_made_outside_the_log_and_missing_ids_change_nothing(tmp_path):
    with _library(tmp_path / "lib") as lib:
        edits.relabel_tracks(lib, [1, 2], "jazz")
        lib.set_label(2, "folk")  # e.g. a re-import with folder labels
        r = edits.undo_last(lib)
        assert (r.restored, r.skipped) == (1, 1)
        assert _labels(lib) == {1: "rock", 2: "folk", 3: None}
        with pytest.raises(LibraryError, match="no track with id 99"):
            edits.relabel_tracks(lib, [1, 99], "x")
        assert _labels(lib)[1] == "rock" and edits.last_edit(lib) is None
        with pytest.raises(LibraryError, match="finding status"):
            edits.review_findings(lib, [1], "maybe")


def test_segment_tags_survive_a_recut_and_older_catalogues_migrate(tmp_path):
    """Cutting the tracks again (another window or hop) moves each segment tag to the new segment of its track
    that it overlaps most: tags are hand work and must not vanish with the old segment ids."""
    with _library(tmp_path / "lib") as lib:
        seg = lib.segments()
        first = seg["id"][seg["track_id"] == 1][:3]  # 0-3, 3-6, 6-9 s of track 1
        edits.tag_segments(lib, first, "intro")
        edits.tag_segments(lib, seg["id"][seg["track_id"] == 2][-1:], "outro")  # 6-9 s of track 2
        lib.set_segment_config(SegmentConfig(window_s=2.0, hop_s=2.0), window_starts)  # a re-cut
        new = lib.segments()
        where = {int(i): (int(t), float(a)) for i, t, a in zip(new["id"], new["track_id"], new["start_s"],
                                                                  strict=True)}
        tags = edits.segment_tags(lib)
        assert sorted((where[i], label) for i, label in tags.items()) == [
            ((1, 0.0), "intro"), ((1, 4.0), "intro"), ((1, 6.0), "intro"), ((2, 6.0), "outro")]
        edits.undo_last(lib)  # the tagged segments' old ids are gone: nothing to put back, no error
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_ingest_repeating_the_window_keeps_the_hop(tmp_path):
    """`ingest LIB --window 3` on a library cut at 3 s / 1.5 s said nothing new, yet reset the hop to 3 s and cut
    every track again; a new window without --hop still takes hop = window."""
    from musicemb_core.cli import main

    wav = tmp_path / "a.wav"
    write_tone(wav, 440.0, seconds=9.0)
    lib = str(tmp_path / "lib")
    hops = []
    for extra in (["--window", "3", "--hop", "1.5"], ["--window", "3"], [], ["--window", "2"]):
        assert main(["ingest", lib, str(wav), "-q", "--no-analysis", *extra]) == 0
        with Library(lib) as opened:
            cfg = opened.segment_config()
            hops.append((cfg.window_s, cfg.hop_s))
    assert hops == [(3.0, 1.5), (3.0, 1.5), (3.0, 1.5), (2.0, 2.0)]


def test_models_are_listed_with_strategy_validation_and_partial_training_and_the_active_one_is_kept(tmp_path):
    root = tmp_path / "lib"
    with _library(root) as lib:
        assert active_model(lib) == "similarity"
        info = ckpt.read_info(builtin_model_dir("default"))
        for name, status, epochs in (("done", "done", 5), ("stopped", "cancelled", 1)):
            folder = lib.folder("models") / name
            folder.mkdir()
            info.name, info.train = name, {**info.train, "epochs": 5}
            info.metrics = {"best": {"val_loss": 0.5, "val_acc": 0.75}, "epochs": epochs}
            (folder / ckpt.CONFIG).write_text(json.dumps(info.to_dict()))
            shutil.copy(ckpt.weights_path(builtin_model_dir("default")), folder / ckpt.WEIGHTS)
            run = lib.start_run(name, "contrastive", {})
            lib.update_run(run, status, [{"epoch": e + 1} for e in range(epochs)], finished=True)
            lib.register_model(name, "resnet18", "contrastive", 128, info.to_dict())
        entries = {e.name: e for e in list_models(lib)}
        assert list(entries) == ["default", "similarity", "done", "stopped"]
        assert entries["default"].builtin and "fingerprint" in entries["default"].strategy
        assert entries["done"].validation == "val acc 0.750" and entries["done"].partial == ""
        assert entries["stopped"].partial == "cancelled after 1 of 5 epochs"
        assert not entries["done"].embedded
        set_active_model(lib, "stopped")
        with pytest.raises(ConfigError, match="no model 'nope'"):
            set_active_model(lib, "nope")
    with Library(root) as lib:
        assert active_model(lib) == "stopped"
        (root / "models" / "stopped" / ckpt.CONFIG).unlink()  # removed: back to the similarity space
        assert active_model(lib) == "similarity"


def test_segment_tags_are_the_labels_training_and_evaluation_see(tmp_path):
    for name, freq in (("a", 440), ("b", 660)):
        write_tone(tmp_path / "audio" / "rock" / f"{name}.wav", freq, seconds=6.0)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], labels="folders", jobs=1))
        seg = lib.segments()
        n = len(seg["id"])
        edits.tag_segments(lib, seg["id"][:1], "intro")
        labels, names = segment_labels(lib, seg["track_id"], segment_ids=seg["id"])
        assert names == ["intro", "rock"] and [names[i] for i in labels] == ["intro"] + ["rock"] * (n - 1)
        assert segment_labels(lib, seg["track_id"])[1] == ["rock"]  # by track, as before
        data = drive(iter_load_segments(lib, sr=8000, workers=1))
        assert data.label_names == ["intro", "rock"]
        assert [data.label_names[i] for i in data.labels] == ["intro"] + ["rock"] * (n - 1)


def test_findings_reviewed_together_are_one_edit_and_one_undo(tmp_path):
    """Dismissing 3 selected findings made 3 edits: Undo brought back one of them."""
    with _library(tmp_path / "lib") as lib:
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": t, "start_s": 0.0, "end_s": 6.0,
                               "score": 1.0, "reason": "r"} for t in (1, 2, 3)], kinds=["clipping"])
        ids = [f["id"] for f in lib.findings()]
        assert edits.review_findings(lib, ids + ids[:1], "dismissed").description == "dismiss 3 findings"
        assert {f["status"] for f in lib.findings()} == {"dismissed"}
        assert edits.review_findings(lib, [], "accepted") is None
        edits.undo_last(lib)
        assert {f["status"] for f in lib.findings()} == {"open"} and edits.last_edit(lib) is None


def test_relabelling_from_a_finding_is_one_edit_with_its_acceptance(tmp_path):
    """Relabel from a finding: the label and the finding's acceptance were two edits (the first Undo only
    reopened the finding and kept the new label)."""
    with _library(tmp_path / "lib") as lib:
        lib.replace_findings([{"kind": "label", "segment_id": None, "track_id": 1, "start_s": 0.0, "end_s": 12.0,
                               "score": 0.9, "reason": "r"}], kinds=["label"])
        fid = lib.findings()[0]["id"]
        edits.tag_segments(lib, lib.segments()["id"][:1].tolist(), "solo")
        assert edits.relabel_finding(lib, fid, "jazz").description == "relabel 0.wav 'jazz' (finding accepted)"
        assert _labels(lib)[1] == "jazz" and edits.segment_tags(lib) == {} and lib.findings()[0]["status"] == "accepted"
        edits.undo_last(lib)
        assert _labels(lib)[1] == "rock" and lib.findings()[0]["status"] == "open" and len(edits.segment_tags(lib)) == 1
        with pytest.raises(LibraryError, match="no finding with id 99"):
            edits.relabel_finding(lib, 99, "x")


def test_undoing_a_review_leaves_alone_a_finding_that_took_its_id(tmp_path):
    """An inspection replacing the findings gives their ids to others (finding ids are reused): undoing the
    dismissal of 0.wav's finding reopened 1.wav's, which had inherited its own dismissal."""
    def clip(track_id):
        return {"kind": "clipping", "segment_id": None, "track_id": track_id, "start_s": 0.0, "end_s": 6.0,
                "score": 1.0, "reason": "r"}

    with _library(tmp_path / "lib") as lib:
        lib.replace_findings([clip(1), clip(2)], kinds=["clipping"])
        ids = {f["track_id"]: f["id"] for f in lib.findings()}
        edits.review_findings(lib, [ids[2]], "dismissed")
        edits.review_findings(lib, [ids[1]], "dismissed")
        lib.replace_findings([clip(2), clip(3)], kinds=["clipping"])  # inspected again: 0.wav no longer clips
        status = {f["track_id"]: (f["id"], f["status"]) for f in lib.findings()}
        assert status[2] == (ids[1], "dismissed")  # 1.wav's finding now has the id 0.wav's had
        r = edits.undo_last(lib)
        assert (r.edit.description, r.restored, r.skipped) == ("dismiss the clipping finding on 0.wav", 0, 1)
        assert {f["track_id"]: f["status"] for f in lib.findings()} == {2: "dismissed", 3: "open"}
        r = edits.undo_last(lib)  # 1.wav's own dismissal: its finding, found again under another id, reopens
        assert r.restored == 1 and {f["status"] for f in lib.findings()} == {"open"}


def test_undo_of_a_named_edit_refuses_one_made_or_undone_elsewhere_since(tmp_path):
    """The app's Edit ▸ Undo named its last edit, but undid whatever edit another process had made since."""
    root = tmp_path / "lib"
    with _library(root) as lib, Library(root) as other:
        mine = edits.relabel_tracks(lib, [1], "jazz")
        theirs = edits.relabel_tracks(other, [3], "folk")
        with pytest.raises(LibraryError, match="nothing undone: another process changed the edits since; "
                                               "Undo now takes back \"label 2.wav 'folk'\""):
            edits.undo_last(lib, mine.id)
        assert _labels(lib) == {1: "jazz", 2: "rock", 3: "folk"}
        assert edits.undo_last(lib, theirs.id).restored == 1 and _labels(lib)[3] is None
        edits.undo_last(other)
        with pytest.raises(LibraryError, match="nothing is left to undo"):
            edits.undo_last(lib, mine.id)
        assert _labels(lib) == {1: "rock", 2: "rock", 3: None}


def test_relabelling_more_tracks_than_sqlite_takes_values_in_a_query(tmp_path):
    """The tags of the tracks to relabel were found with ``IN (?, ?, ...)``: SQLite builds that cap a query at 999
    or 32,766 values (Debian's at 250,000) failed on a big selection with "too many SQL variables"."""
    import sqlite3

    with _library(tmp_path / "lib", durations=(6.0,) * 4, labels=("rock",) * 4) as lib:
        edits.tag_segments(lib, lib.segments()["id"][::2], "solo")
        lib.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 3)  # as 999 does for 1,000 tracks
        edit = edits.relabel_tracks(lib, [1, 2, 3, 4], "jazz")
        assert edit.description == "label 4 tracks 'jazz'" and len(edit.changes) == 8
        assert set(_labels(lib).values()) == {"jazz"} and edits.segment_tags(lib) == {}


def test_a_big_edit_is_logged_and_read_back_a_chunk_at_a_time_as_json_older_versions_read(tmp_path, monkeypatch):
    """Tagging all 1.6M segments of a library logged the edit with one ``json.dumps`` (and Undo read it with one
    ``json.loads``): a call that holds the GIL, and so the app's window, for seconds."""
    monkeypatch.setattr(edits, "_CHUNK", 4, raising=False)
    biggest, dumps, loads = [0], json.dumps, json.loads

    def counted(f):
        def call(obj, *a, **kw):
            biggest[0] = max(biggest[0], len(obj) if isinstance(obj, list) else str(obj).count('"kind"'))
            return f(obj, *a, **kw)
        return call

    monkeypatch.setattr(edits.json, "dumps", counted(dumps))
    monkeypatch.setattr(edits.json, "loads", counted(loads))
    with _library(tmp_path / "lib", durations=(30.0,), labels=("rock",)) as lib:
        ids = lib.segments()["id"].tolist()
        edit = edits.tag_segments(lib, ids, "solo")
        assert len(edit.changes) == 10 and edits.last_edit(lib).changes == edit.changes
        text = lib.conn.execute("SELECT changes FROM edits WHERE id=?", (edit.id,)).fetchone()[0]
        assert loads(text) == edit.changes  # one JSON array still
        assert edits.undo_last(lib).restored == 10 and edits.segment_tags(lib) == {}
    assert biggest[0] == 4


def test_evaluation_classes_are_the_labels_the_segments_carry(tmp_path):
    """A track label every segment of which is tagged otherwise (or one only on tracks not evaluated) was still
    a class of the evaluation: an empty row and column of the confusion matrix."""
    with _library(tmp_path / "lib", labels=("rock", "jazz", "folk")) as lib:
        seg = lib.segments()
        edits.tag_segments(lib, seg["id"][seg["track_id"] == 2], "intro")  # jazz: every segment tagged
        keep = seg["track_id"] != 3  # folk: not evaluated
        labels, names = segment_labels(lib, seg["track_id"][keep], segment_ids=seg["id"][keep])
        assert names == ["intro", "rock"] and [names[i] for i in labels] == ["rock"] * 4 + ["intro"] * 3
        labels, names = segment_labels(lib, seg["track_id"][keep])  # by track
        assert names == ["jazz", "rock"] and [names[i] for i in labels] == ["rock"] * 4 + ["jazz"] * 3


def test_labels_are_stored_clean_whichever_way_they_come(tmp_path):
    """A newline pasted into the label box broke the `tracks` listing; an accent spelt in two code points (macOS
    folder names) made a second label that looks the same; zero-width characters and runs of spaces too."""
    from musicemb_core.data.ingest import read_label_csv

    with _library(tmp_path / "lib") as lib:
        edits.relabel_tracks(lib, [1], "rock\nroll ")
        edits.tag_segments(lib, [lib.segments()["id"][0]], "E\u0301lectro\u200b")
        lib.set_label(2, "drum  and\tbass")
        edits.relabel_tracks(lib, [3], " \n ")
        assert _labels(lib) == {1: "rock roll", 2: "drum and bass", 3: None}
        assert set(edits.segment_tags(lib).values()) == {"\u00c9lectro"}
    music = tmp_path / "music"
    write_tone(music / "E\u0301lectro" / "a.wav", 1.0)
    (tmp_path / "labels.csv").write_text("path;label\nb.wav;Ambient \nc.wav;\u00c9lectro\n", encoding="utf-8")
    assert read_label_csv(tmp_path / "labels.csv") == {"b.wav": "Ambient", "c.wav": "\u00c9lectro"}  # ; as Excel
    with Library(tmp_path / "lib2", create=True) as lib:
        drive(iter_ingest(lib, [music], labels="folders", jobs=1, analyse=False))
        assert [t.label for t in lib.tracks()] == ["\u00c9lectro"]
    (tmp_path / "twice.csv").write_text("a.wav,rock\nb.wav,jazz\n./a.wav,house\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"twice.csv: line 3 labels a.wav 'house', an earlier line 'rock'"):
        read_label_csv(tmp_path / "twice.csv")


def test_a_track_cut_again_while_it_is_relabelled_loses_the_tags_it_has_then(tmp_path, monkeypatch):
    """The tags a whole-track label removes were read before its transaction: a re-cut in between (an import in
    another process) made the relabel fail with "no segment with id N". They are read inside it now."""
    import contextlib

    root = tmp_path / "lib"
    with _library(root) as lib:
        seg = lib.segments()
        edits.tag_segments(lib, seg["id"][seg["track_id"] == 1][:2], "intro")
        real = lib.transaction

        @contextlib.contextmanager
        def after_a_recut():  # another process cuts the tracks again just before this edit's transaction
            with Library(root) as other:
                other.set_segment_config(SegmentConfig(window_s=2.0, hop_s=2.0), window_starts)
            monkeypatch.setattr(lib, "transaction", real)
            with real() as c:
                yield c
        monkeypatch.setattr(lib, "transaction", after_a_recut)
        edit = edits.relabel_tracks(lib, [1], "jazz")
        assert _labels(lib)[1] == "jazz" and edits.segment_tags(lib) == {}
        assert sum(ch["kind"] == "segment_tag" for ch in edit.changes) == 2  # the tags moved to the new segments


@pytest.mark.parametrize("action", ["accept", "relabel"])
def test_a_finding_replaced_just_before_the_edit_is_not_the_one_changed(tmp_path, monkeypatch, action):
    """Another program's inspection gives the finding's id to a finding on another track in the moment between
    the caller reading the finding and the edit's transaction: the app checked the finding just before the edit,
    leaving that moment open, and Relabel read the finding's track outside the transaction. Now what the finding
    was read as is checked inside the edit's transaction, and the edit is refused."""
    def clip(track_id):
        return {"kind": "clipping", "segment_id": None, "track_id": track_id, "start_s": 0.0, "end_s": 6.0,
                "score": 1.0, "reason": "r"}

    with _library(tmp_path / "lib") as lib:
        lib.replace_findings([clip(1)], kinds=["clipping"])
        [shown] = lib.findings()
        about = (shown["kind"], shown["track_id"], shown["start_s"], shown["end_s"])
        real = lib.transaction

        def inspected_meanwhile():
            with Library(tmp_path / "lib") as other:  # another program, its own connection
                other.replace_findings([clip(2)], kinds=["clipping"])
            monkeypatch.setattr(lib, "transaction", real)
            return real()

        monkeypatch.setattr(lib, "transaction", inspected_meanwhile)
        with pytest.raises(LibraryError, match="the clipping finding on 0.wav is not in the library any more"):
            if action == "accept":
                edits.review_findings(lib, [shown["id"]], "accepted", about={shown["id"]: about})
            else:
                edits.relabel_finding(lib, shown["id"], "jazz")
        [now] = lib.findings()
        assert (now["id"], now["track_id"], now["status"]) == (shown["id"], 2, "open")
        assert _labels(lib) == {1: "rock", 2: "rock", 3: None}
        assert edits.last_edit(lib) is None


def test_tagging_a_few_segments_reads_their_rows_not_the_library_between_them(tmp_path):
    """5,000 segments spread over a 1.6M-segment library were read (their tags, and whether they exist) by scanning
    every row between the first and the last: 0.9 s of the app's window at each tag and each Undo. A few keys are
    read by their ids now: the work (SQLite's steps) does not grow with the library; a missing one is still named."""
    steps = []
    for seconds in (300.0, 30_000.0):  # 100 and 10,000 segments
        with _library(tmp_path / f"lib{seconds:.0f}", durations=(seconds,), labels=("rock",)) as lib:
            ids = lib.segments()["id"]
            picked = ids[:: len(ids) // 5][:5]  # five, spread over the whole library
            count = [0]
            lib.conn.set_progress_handler(lambda count=count: count.__setitem__(0, count[0] + 1), 100)
            edit = edits.tag_segments(lib, picked, "solo")
            assert edits.segment_tags(lib) == dict.fromkeys(picked.tolist(), "solo")
            assert edits.undo_last(lib).restored == 5
            lib.conn.set_progress_handler(None, 0)
            assert len(edit.changes) == 5 and edits.segment_tags(lib) == {}
            with pytest.raises(LibraryError, match=f"no segment with id {int(ids[-1]) + 7}"):
                edits.tag_segments(lib, [*picked.tolist(), int(ids[-1]) + 7], "solo")
            steps.append(count[0])
    assert steps[1] < 3 * steps[0], steps
