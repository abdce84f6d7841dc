"""Query by humming's calibrated confidence ("no confident match"), its CLI output, and the melody index built by
``musicemb embed``."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from musicemb_core.cli import main as cli
from musicemb_core.common.progress import drive
from musicemb_core.data.hum_synthesis import render_hum
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.melodies import generated_melodies
from musicemb_core.search import qbh
from musicemb_core.search.qbh import (
    HumSearcher,
    calibrate,
    confidence_features,
    is_confident,
    qbh_index_current,
)
from tests.core.test_qbh import SR, hum_library  # noqa: F401  (the module's fixture)


def test_confidence_features_z_score_and_margin():
    s = np.array([0.5, 0.9, 0.4, 0.45])
    f = confidence_features(s)
    others = s[[0, 2, 3]]
    assert np.isclose(f[1, 0], (0.9 - others.mean()) / others.std())
    np.testing.assert_allclose(f[:, 1], [0.5 - 0.9, 0.9 - 0.5, 0.4 - 0.9, 0.45 - 0.9])
    np.testing.assert_allclose(f[:, 2], s)
    assert confidence_features(np.array([0.7])).shape == (1, 3) and confidence_features(np.zeros(0)).shape == (0, 3)
    same = confidence_features(np.full(5, 0.6))  # equal scores: no spread, no margin, nothing stands out
    assert np.all(same[:, :2] == 0)
    fit = qbh.CONFIDENCE["rerank"]
    p = calibrate(f, fit)
    assert np.all((p >= 0) & (p <= 1)) and int(np.argmax(p)) == 1
    # a track standing out from the rest is more confident than the best of equals
    assert calibrate(confidence_features(np.array([0.8, 0.5, 0.5, 0.5, 0.5])), fit)[0] > calibrate(
        confidence_features(np.array([0.8, 0.78, 0.77, 0.76, 0.75])), fit)[0]


def test_is_confident():
    assert not is_confident([])
    assert is_confident([{"confidence": 0.9}], 0.5) and not is_confident([{"confidence": 0.4}], 0.5)
    assert is_confident([{"confidence": 1.0}]) and not is_confident([{"confidence": 0.0}])


def test_results_carry_a_calibrated_confidence(hum_library):  # noqa: F811
    root, ids, hums = hum_library
    with Library(root / "lib") as lib:
        searcher = HumSearcher.open(lib)
    confident = 0
    for i, y in enumerate(hums):
        res = searcher.query(y, SR, k=6)
        conf = [r["confidence"] for r in res]
        assert all(0.0 <= c <= 1.0 for c in conf) and conf[0] == max(conf)
        confident += searcher.is_confident(res) and ids[res[0]["track_id"]] == i
    assert confident >= 4  # the six hummed songs stand out of a six-song library
    # a tune that is not in the library: ranked tracks all the same, but no confident match
    m = generated_melodies(1, random_state=123)[0]
    notes = np.stack([m.onset * 0.5, m.duration * 0.45, m.pitch.astype(float)], 1)[:24]
    res = searcher.query(render_hum(notes, seed=99, sr=SR).y, SR, k=6)
    assert res and not searcher.is_confident(res), [(r["score"], r["confidence"]) for r in res]


def test_cli_hum_says_whether_the_match_is_confident(hum_library, capsys):  # noqa: F811
    root, ids, _ = hum_library
    assert cli(["hum", str(root / "lib"), "--json", str(root / "hum1.wav"), "-k", "3", str(root / "hum3.wav"),
                "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [q["query"] for q in out] == [str(root / "hum1.wav"), str(root / "hum3.wav")]
    assert all(isinstance(q["confident"], bool) for q in out)
    assert all(0 <= r["confidence"] <= 1 for q in out for r in q["results"])
    assert cli(["hum", str(root / "lib"), str(root / "hum1.wav"), "-k", "2"]) == 0
    text = capsys.readouterr().out
    assert "confidence" in text


def test_cli_text_says_no_confident_match(hum_library, capsys, monkeypatch):  # noqa: F811
    root, _, _ = hum_library
    monkeypatch.setitem(qbh.CONFIDENCE, "rerank", {**qbh.CONFIDENCE["rerank"], "threshold": 1.01})
    assert cli(["hum", str(root / "lib"), str(root / "hum1.wav"), "-q"]) == 0
    assert "no confident match" in capsys.readouterr().out
    assert cli(["hum", str(root / "lib"), str(root / "hum1.wav"), "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["confident"] is False


def test_embed_builds_the_melody_index(hum_library, tmp_path, capsys):  # noqa: F811
    root, _, _ = hum_library
    lib_dir = tmp_path / "lib"
    with Library(lib_dir, create=True) as lib:
        drive(iter_ingest(lib, [root / "song0.wav", root / "song1.wav"]))
        assert not qbh_index_current(lib)
    assert cli(["embed", str(lib_dir), "-q"]) == 0
    assert "melody index" in capsys.readouterr().out
    with Library(lib_dir) as lib:
        assert qbh_index_current(lib)
    assert cli(["embed", str(lib_dir), "-q"]) == 0  # current: nothing rebuilt
    assert "melody index" not in capsys.readouterr().out
    sf.write(tmp_path / "song2.wav", sf.read(root / "song2.wav")[0], SR)
    with Library(lib_dir) as lib:
        drive(iter_ingest(lib, [tmp_path / "song2.wav"]))
        assert not qbh_index_current(lib)
    assert cli(["embed", str(lib_dir), "-q"]) == 0  # incremental: the two unchanged tracks are reused
    with Library(lib_dir) as lib:
        assert qbh_index_current(lib)
        meta = json.loads((qbh.index_folder(lib, qbh.DEFAULT_QBH_MODEL) / "meta.json").read_text())
        assert meta["reused_tracks"] == 2
        fresh = drive(qbh._iter_build_into(lib, tmp_path / "fresh", model=qbh.DEFAULT_QBH_MODEL, cancel=None)
                      ) if (tmp_path / "fresh").mkdir() is None else None
        with np.load(fresh / "melody.npz") as a, np.load(qbh.index_folder(lib, "qbh-default") / "melody.npz") as b:
            for key in ("track_ids", "bounds", "bins", "probs", "vector_ids", "top_bins", "top_probs"):
                np.testing.assert_array_equal(a[key], b[key])
            np.testing.assert_allclose(a["vectors"], b["vectors"], atol=1e-5)


def test_a_hand_edit_of_the_qbh_models_settings_rebuilds_its_melody_index(hum_library, tmp_path):  # noqa: F811
    """Only the QBH model's weights were compared: after a hand edit of its settings in config.json the melody
    index stayed "current" and an incremental build reused every track's melody and vectors of the old settings.
    An index built before settings were recorded is still judged by its weights alone."""
    import shutil

    from musicemb_core.resources import builtin_model_dir

    root, _, _ = hum_library
    lib_dir = tmp_path / "lib"
    with Library(lib_dir, create=True) as lib:
        drive(iter_ingest(lib, [root / "song0.wav", root / "song1.wav"]))
        folder = lib.root / "models" / "mine"
        shutil.copytree(builtin_model_dir(qbh.DEFAULT_QBH_MODEL), folder)
        drive(qbh.iter_update_qbh_index(lib, model="mine"))
        assert qbh_index_current(lib, "mine")
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "name": "renamed", "metrics": {}}))
        assert qbh_index_current(lib, "mine")  # name and metrics shape nothing
        (folder / "config.json").write_text(json.dumps({**config, "window_s": 5.0}))
        assert not qbh_index_current(lib, "mine")
        drive(qbh.iter_update_qbh_index(lib, model="mine"))
        meta_path = qbh.index_folder(lib, "mine") / "meta.json"
        meta = json.loads(meta_path.read_text())
        assert meta["reused_tracks"] == 0 and qbh_index_current(lib, "mine")
    older = tmp_path / "older"  # an index built before settings were recorded: its melodies are reused
    older.mkdir()
    shutil.copy(meta_path.parent / "melody.npz", older)
    (older / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "settings"}))
    assert len(qbh._previous_tracks(older, meta["weights"], "other settings")) == 2
    assert not qbh._previous_tracks(meta_path.parent, meta["weights"], "other settings")
