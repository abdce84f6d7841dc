"""Inspection: planted label flips rank at the top, outliers and near-duplicates are found (synthetic embeddings),
and end to end through a tiny real library embedded with the built-in default model: a flipped label, a clipped
recording, findings stored with their status kept across runs, the CLI's JSON and CSV."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.analysis import inspection as I
from musicemb_core.cli import main
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import render_song
from musicemb_core.inference import iter_embed
from musicemb_core.resources import builtin_model_dir
from musicemb_core.stored_vectors import load_embeddings
from musicemb_core.workflows.inspect import KINDS, iter_inspect


def clustered(n_classes=4, tracks_per_class=10, segs=8, dim=16, seed=0):
    """Well-separated classes; each track a small cloud around its own point near its class centre."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 6
    X, labels, groups = [], [], []
    for c in range(n_classes):
        for t in range(tracks_per_class):
            point = centres[c] + rng.normal(size=dim) * 0.5
            X.append(point + rng.normal(size=(segs, dim)) * 0.3)
            labels += [c] * segs
            groups += [c * tracks_per_class + t] * segs
    return np.vstack(X).astype(np.float32), np.array(labels), np.array(groups)


@pytest.mark.parametrize("method", ["knn", "logistic", "ensemble"])
def test_flipped_track_labels_rank_at_the_top(method):
    X, labels, groups = clustered()
    rng = np.random.default_rng(1)
    flipped = rng.choice(np.unique(groups), 4, replace=False)
    noisy = labels.copy()
    truth = {}
    for g in flipped:
        rows = groups == g
        truth[g] = labels[rows][0]
        noisy[rows] = (labels[rows][0] + 1 + rng.integers(3)) % 4
    res = I.label_issues(X, noisy, groups, method=method)
    order = np.argsort(res["track_quality"])
    assert set(res["tracks"][order[:4]]) == set(flipped)
    candidates = res["tracks"][res["track_suggested"] != res["track_label"]]  # what the workflow lists
    assert set(flipped) <= set(candidates) and len(candidates) <= 5
    for g in flipped:
        i = int(np.flatnonzero(res["tracks"] == g)[0])
        assert res["track_suggested"][i] == truth[g]
        assert res["track_mistakenness"][i] > 0.7 and res["track_disagree"][i] == 1.0
    clean = ~np.isin(res["tracks"], flipped)
    assert set(res["tracks"][np.argsort(-res["track_mistakenness"])[:4]]) == set(flipped)
    assert np.median(res["track_mistakenness"][clean]) < 0.35
    seg_flipped = np.isin(groups[res["rows"]], flipped)
    assert res["issue"][seg_flipped].mean() > 0.9 and res["issue"][~seg_flipped].mean() < 0.05


def test_track_vectors_decide_a_tracks_label_where_its_segments_are_ambiguous():
    """Segments of two styles overlap (their clouds share space) while the tracks' own vectors (a view the segments
    lack, such as the similarity space's tagger half) separate them: with track vectors the flipped tracks rank first,
    and each suggests its true label."""
    rng = np.random.default_rng(5)
    n_tracks, segs = 30, 6
    style = np.repeat([0, 1, 2], 10)
    groups = np.repeat(np.arange(n_tracks), segs)
    X = rng.normal(size=(n_tracks * segs, 8)).astype(np.float32)  # segments: no style at all
    centres = rng.normal(size=(3, 16)) * 4
    V = centres[style] + rng.normal(size=(n_tracks, 16))
    labels = style.copy()
    flipped = [3, 14, 25]
    for t in flipped:
        labels[t] = (labels[t] + 1) % 3
    plain = I.label_issues(X, labels[groups], groups)
    with_tracks = I.label_issues(X, labels[groups], groups, track_vectors=(np.arange(n_tracks), V))
    top = lambda res: set(res["tracks"][np.argsort(-res["track_score"], kind="stable")[:3]].tolist())  # noqa: E731
    assert top(with_tracks) == set(flipped)
    assert len(top(plain) & set(flipped)) < 3
    assert [int(with_tracks["track_suggested"][t]) for t in flipped] == [int(style[t]) for t in flipped]
    P = I.track_knn_probs(V, labels, 3, k=5)
    assert np.allclose(P.sum(axis=1), 1) and (P.argmax(axis=1) == style).mean() >= 0.9
    # a track's probabilities: the mean of its neighbours' vote and a probe that never saw it
    probe = I.out_of_fold_probs(V, labels, np.arange(n_tracks))
    assert np.allclose(with_tracks["track_probs"], (I.track_knn_probs(V, labels, 3) + probe) / 2)


def test_unlabelled_segments_are_skipped_and_two_labels_are_needed():
    X, labels, groups = clustered(n_classes=2, tracks_per_class=4)
    labels = labels.copy()
    labels[groups == 0] = -1
    res = I.label_issues(X, labels, groups)
    assert len(res["rows"]) == int((labels >= 0).sum()) and 0 not in res["tracks"]
    assert np.allclose(res["probs"].sum(axis=1), 1.0)
    with pytest.raises(ConfigError):
        I.label_issues(X, np.zeros_like(labels), groups)


def test_out_of_fold_probes_never_learn_a_track_from_itself():
    # each track is its own random point and its label is random: only memory could predict it
    rng = np.random.default_rng(2)
    points = rng.normal(size=(40, 32))
    groups = np.repeat(np.arange(40), 6)
    X = (points[groups] + rng.normal(size=(240, 32)) * 0.05).astype(np.float32)
    labels = rng.integers(0, 2, 40)[groups]
    probs = I.out_of_fold_probs(X, labels, groups)
    accuracy = (probs.argmax(axis=1) == labels).mean()
    assert accuracy < 0.75  # chance is 0.5; the same probe fit on these rows scores 1.0


def test_mistakenness_formula():
    probs = np.array([[0.98, 0.01, 0.01], [0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3]])
    m = I.mistakenness(probs, np.array([0, 1, 2]))
    assert m[0] < 0.1 and m[1] > 0.9  # confident agreement, confident disagreement
    assert m[2] == pytest.approx((1 / 3 + 1) / 2)  # uniform: e^-H = 1/3, argmax 0 disagrees with label 2


def test_outliers_duplicates_and_far_from_own_track():
    X, _, groups = clustered(seed=3)
    rng = np.random.default_rng(4)
    X = X.copy()
    odd = np.array([5, 100, 250])
    X[odd] = rng.normal(size=(3, X.shape[1])) * 12  # somewhere no other segment is
    dup_src, dup_dst = np.array([20, 21]), np.array([300, 301])  # same audio filed under another track
    X[dup_dst] = X[dup_src] + rng.normal(size=(2, X.shape[1])) * 1e-3
    X[40:48] = X[40] + rng.normal(size=(8, X.shape[1])) * 1e-3  # one track's windows nearly identical
    dist, nbr = I.other_track_neighbours(X, groups, k=5)
    assert (groups[nbr] != groups[:, None]).all() and (np.diff(dist, axis=1) >= -1e-6).all()
    out = I.outliers(dist)
    assert set(np.flatnonzero(out["flag"])) == set(odd)
    own = I.track_outliers(X, groups)
    assert set(odd) <= set(np.flatnonzero(own["flag"]))
    pairs = I.near_duplicates(dist, nbr)["pairs"]
    assert sorted((a, b) for a, b, _ in pairs) == [(300, 20), (301, 21)]


def test_neighbours_of_a_track_longer_than_the_search_window():
    rng = np.random.default_rng(5)
    X = np.vstack([np.ones((150, 8)) + rng.normal(size=(150, 8)) * 1e-3, rng.normal(size=(30, 8))])
    groups = np.r_[np.zeros(150, int), np.arange(1, 31)]
    dist, nbr = I.other_track_neighbours(X.astype(np.float32), groups, k=4)
    assert (nbr[:150] >= 150).all() and np.isfinite(dist).all()


# -- end to end ----------------------------------------------------------------------------------------------

SR = 16000
SONGS = [(style, seed) for style in ("rock", "folk", "techno") for seed in range(1, 5)]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    for style, seed in SONGS:
        (root / "audio" / style).mkdir(parents=True, exist_ok=True)
        y = render_song(style, seed=seed, duration_s=12.0, sr=SR)
        if (style, seed) == ("folk", 4):  # a recording clipped hard on the way in
            y = np.clip(y, -0.25, 0.25) / 0.25 * 0.9
        sf.write(root / "audio" / style / f"{style}{seed}.flac", y, SR)
    lib = Library(root / "lib", create=True)
    drive(iter_ingest(lib, [root / "audio"], labels="folders", segments=SegmentConfig(3.0, 1.5), jobs=1))
    drive(iter_embed(lib))
    yield lib, root
    lib.close()


def _track(lib, name):
    return next(t for t in lib.tracks() if t.path.endswith(name))


def test_flipped_label_and_clipping_found_end_to_end(library):
    lib, _ = library
    flipped = _track(lib, "rock2.flac")
    lib.set_label(flipped.id, "techno")
    try:
        report = drive(iter_inspect(lib))
    finally:
        lib.set_label(flipped.id, "rock")
    assert report.kinds == list(KINDS) and not report.skipped and not report.failed
    tracks = sorted((f for f in report.findings if f["kind"] == "label" and f["segment_id"] is None),
                    key=lambda f: -f["score"])
    assert tracks and tracks[0]["track_id"] == flipped.id
    assert tracks[0]["details"]["given"] == "techno" and tracks[0]["details"]["suggested"] == "rock"
    assert "probably 'rock'" in tracks[0]["reason"]
    arguing = tracks[0]["details"]["segments"]  # the segments that argue for the suggestion, strongest first
    seg = lib.segments()
    owner = dict(zip(seg["id"].tolist(), seg["track_id"].tolist(), strict=True))
    assert 1 <= len(arguing) <= 5 and {owner[a["segment_id"]] for a in arguing} == {flipped.id}
    assert [a["p"] for a in arguing] == sorted((a["p"] for a in arguing), reverse=True)
    whole = {f["track_id"] for f in tracks}
    segment_rows = [f for f in report.findings if f["kind"] == "label" and f["segment_id"] is not None]
    assert not [f for f in segment_rows if f["track_id"] in whole]  # folded into their track's finding
    assert all(f["score"] <= min(t["score"] for t in tracks) for f in segment_rows)  # tracks first
    clipped = _track(lib, "folk4.flac").id
    clipping = [f for f in report.findings if f["kind"] == "clipping"]
    assert clipping and {f["track_id"] for f in clipping} == {clipped}
    assert all(f["segment_id"] is not None and f["end_s"] - f["start_s"] == pytest.approx(3.0) for f in clipping)
    faults = {"dropouts", "dc_offset", "hum", "crackle", "dead", "noise", "muffled"}
    assert not [f for f in report.findings if f["kind"] in faults - {"crackle"}]
    assert all(f["reason"] and f["path"] for f in report.findings)


def test_a_label_no_other_track_carries_is_named_as_such(library):
    """A typo ('rokc') is the only track of its label: nothing can vote for it, so the finding says that, not
    that its neighbours outvote it, and it still suggests what the track sounds like."""
    lib, _ = library
    typo = _track(lib, "rock2.flac")
    lib.set_label(typo.id, "rokc")
    try:
        report = drive(iter_inspect(lib, kinds=["label"]))
    finally:
        lib.set_label(typo.id, "rock")
    mine = [f for f in report.findings if f["track_id"] == typo.id and f["segment_id"] is None]
    assert len(mine) == 1 and mine[0]["details"]["suggested"] == "rock"
    assert mine[0]["reason"].startswith("only track labelled 'rokc' (no other track to compare it with)")
    others = [f for f in report.findings if f["track_id"] != typo.id and f["segment_id"] is None]
    assert all(f["reason"].startswith("label looks wrong") for f in others)


def test_a_mixed_track_gets_segment_findings_below_the_track_findings(tmp_path):
    root = tmp_path / "audio"
    for style in ("rock", "techno"):
        (root / style).mkdir(parents=True)
        for seed in range(1, 5):
            sf.write(root / style / f"{style}{seed}.flac", render_song(style, seed=seed, duration_s=12.0, sr=SR), SR)
    mixed = np.concatenate([render_song("rock", seed=9, duration_s=18.0, sr=SR),
                            render_song("techno", seed=9, duration_s=6.0, sr=SR)])
    sf.write(root / "rock" / "medley.flac", mixed, SR)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root], labels="folders", segments=SegmentConfig(3.0, 1.5), jobs=1, analyse=False))
        drive(iter_embed(lib))
        flipped = _track(lib, "rock2.flac")
        lib.set_label(flipped.id, "techno")
        report = drive(iter_inspect(lib, kinds=["label"]))
        medley = _track(lib, "medley.flac").id
    rows = sorted(report.findings, key=lambda f: -f["score"])
    assert rows[0]["track_id"] == flipped.id and rows[0]["segment_id"] is None
    parts = [f for f in rows if f["segment_id"] is not None]
    assert parts and {f["track_id"] for f in parts} == {medley}
    assert all(f["start_s"] >= 15.0 and f["details"]["suggested"] == "techno" for f in parts)  # the techno end
    assert all("mixed track" in f["reason"] for f in parts)


def test_status_kept_across_runs_and_cancel_stores_nothing(library):
    lib, _ = library
    first = drive(iter_inspect(lib, kinds=["clipping"]))
    target = first.findings[0]
    lib.set_finding_status(target["id"], "dismissed")
    with pytest.raises(LibraryError):
        lib.set_finding_status(target["id"], "maybe")
    again = drive(iter_inspect(lib, kinds=["clipping"]))
    status = {f["segment_id"]: f["status"] for f in again.findings}
    assert status[target["segment_id"]] == "dismissed"
    assert sum(s == "dismissed" for s in status.values()) == 1 and len(status) == len(first.findings)
    token = CancelToken()
    token.cancel()
    cancelled = drive(iter_inspect(lib, kinds=["clipping", "noise"], cancel=token))
    assert cancelled.cancelled
    assert len(lib.findings(kinds=["clipping"])) == len(first.findings)
    with pytest.raises(ConfigError, match="unknown finding kind 'hiss'"):
        drive(iter_inspect(lib, kinds=["hiss"]))


def test_embedding_kinds_skipped_without_embeddings(library):
    """A model of the library not embedded yet: its kinds are skipped with the reason; a model that does not exist
    at all is an error naming the models there are."""
    lib, _ = library
    shutil.copytree(builtin_model_dir("default"), lib.root / "models" / "mine")
    report = drive(iter_inspect(lib, model="mine", kinds=["label", "dead"]))
    assert report.kinds == ["dead"] and "no embeddings for model 'mine'" in report.skipped[0]
    with pytest.raises(ConfigError, match="no model 'nonexistent'.*built-in: default, similarity"):
        drive(iter_inspect(lib, model="nonexistent", kinds=["label", "dead"]))
    with pytest.raises(LibraryError, match="no embeddings for model 'nonexistent': no model 'nonexistent'"):
        load_embeddings(lib, "nonexistent")


def test_cli_inspect_json_and_exports(library, capsys, tmp_path):
    lib, _ = library
    assert main(["inspect", str(lib.root), "--json", "-q", "--kinds", "clipping", "label",
                 "--out", str(tmp_path / "f.csv")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"findings"} and doc["findings"]
    for f in doc["findings"]:
        assert {"kind", "path", "track_id", "start_s", "end_s", "score", "reason"} <= set(f)
        assert f["kind"] in ("clipping", "label")
        if f["kind"] == "label":
            assert {"given", "suggested"} <= set(f)
    with open(tmp_path / "f.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(doc["findings"]) and rows[0]["kind"] in ("clipping", "label")
    assert main(["inspect", str(lib.root), "-q", "--kinds", "clipping", "--out", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(json.loads((tmp_path / 'f.json').read_text())['findings'])} findings: clipping")
    for kinds, said in (("nope", "unknown finding kind 'nope'; kinds: label"), ("", "no finding kind named")):
        with pytest.raises(SystemExit) as e:  # a usage error ("": not every kind), before the library is read
            main(["inspect", str(lib.root), "-q", "--kinds", kinds])
        assert e.value.code == 2 and f"musicemb inspect: error: --kinds: {said}" in capsys.readouterr().err
    assert main(["inspect", str(lib.root), "-q", "--kinds", "clipping,dead", "dropouts"]) == 0  # commas too
    assert re.match(r"\d+ findings: clipping \d+, dead \d+, dropouts \d+$", capsys.readouterr().out.split("\n")[0])
    assert main(["inspect", str(lib.root), "-q", "--kinds", "label", "--model", "nope"]) == 1  # unknown: an error
    err = capsys.readouterr().err
    assert "no model 'nope'" in err and "Traceback" not in err


@pytest.mark.parametrize("per_group", [None, 2])
def test_other_track_neighbours_match_a_brute_force_reference(per_group):
    from musicemb_core.index.faiss_index import EmbeddingIndex, normalise

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    X[:120] = X[0] + 0.3 * X[:120]  # one tight cluster: its rows need wider searches than the first
    groups = rng.integers(0, 12, 300)
    groups[:120] = rng.integers(0, 2, 120)  # ... mostly of two groups
    dist, nbr = I.other_track_neighbours(X, groups, k=10, per_group=per_group,
                                         index=EmbeddingIndex("flat").fit(X, np.arange(300)))
    V = normalise(X)
    S = V @ V.T
    for row in range(300):
        want, seen = [], {}
        for j in np.argsort(-S[row], kind="stable"):
            if groups[j] == groups[row] or (per_group and seen.get(groups[j], 0) >= per_group):
                continue
            seen[groups[j]] = seen.get(groups[j], 0) + 1
            want.append(j)
        assert nbr[row].tolist() == want[:10]
        assert np.allclose(dist[row], 1 - S[row, want[:10]], atol=1e-5)


def test_a_file_at_a_very_low_sample_rate_is_left_out_of_the_fault_checks_alone(tmp_path, capsys):
    """A 16 Hz or 1 kHz file imports, but the fault checks cannot read it: it is listed as failed with its rate,
    the other tracks are still checked (a clipped one found), and no numpy warning reaches the terminal."""
    rng = np.random.default_rng(0)
    (tmp_path / "m").mkdir()
    loud = np.clip(1.6 * np.sin(2 * np.pi * 220 * np.arange(22050 * 4) / 22050), -1, 1)
    sf.write(tmp_path / "m" / "clipped.wav", loud.astype(np.float32), 22050)
    sf.write(tmp_path / "m" / "r16.wav", (0.3 * rng.standard_normal(16 * 6)).astype(np.float32), 16, subtype="FLOAT")
    sf.write(tmp_path / "m" / "r1k.wav", (0.3 * rng.standard_normal(4000)).astype(np.float32), 1000, subtype="FLOAT")
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "m"], jobs=1, analyse=False))
        assert len(lib.tracks()) == 3
        report = drive(iter_inspect(lib, kinds=["clipping", "hum", "noise"]))
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in report.failed) == ["r16.wav", "r1k.wav"]
    assert all("sample rate" in why and "Hz" in why for _, why in report.failed)
    assert {f["kind"] for f in report.findings} == {"clipping"}
    assert main(["inspect", str(tmp_path / "lib"), "--kinds", "hum", "-q"]) == 0
    assert "Warning" not in capsys.readouterr().err


def test_inspect_of_a_library_without_segments_finds_nothing(tmp_path, capsys):
    """A library whose import found no audio is inspected without a traceback: no findings, exit 0."""
    (tmp_path / "empty").mkdir()
    assert main(["ingest", str(tmp_path / "lib"), str(tmp_path / "empty"), "-q"]) == 0
    assert main(["inspect", str(tmp_path / "lib"), "-q"]) == 0
    assert "0 findings" in capsys.readouterr().out
    assert I.rows_by_track(np.zeros(0, int), np.zeros(0, int)) == []
