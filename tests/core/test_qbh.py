"""Query by humming: alignment, key invariance, the shipped model on a small library, the CLI, training guards."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from musicemb_core.cli import main as cli
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import drive
from musicemb_core.data.hum_synthesis import render_hum, render_melody_song
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.melodies import Melody, generated_melodies
from musicemb_core.models.qbh import (
    N_CHROMA,
    MelodyExtractor,
    QBHConfig,
    QBHModel,
    SequenceEncoder,
    contour_chromagram,
)
from musicemb_core.search.melody_align import CoarseMelodies, align, prepare_query
from musicemb_core.search.qbh import HumSearcher, dense_melody, hum_search, qbh_model_folder, sparse_melody
from musicemb_core.training import qbh_fit
from musicemb_core.training.qbh_fit import QBHTrainConfig, iter_render_pairs, iter_train_qbh
from tests.conftest import no_worker_processes_left

SR = 16000
RATE = QBHConfig().frame_rate


def _frames(melody, *, tempo=1.0, rate=RATE, beat=0.5):
    """A melody as a per-frame MIDI contour at ``tempo`` (rests unvoiced)."""
    end = (melody.onset[-1] + melody.duration[-1]) * beat / tempo
    t = np.arange(int(end * rate)) / rate
    out = np.full(len(t), np.nan)
    for o, d, p in zip(melody.onset, melody.duration, melody.pitch, strict=True):
        out[(t >= o * beat / tempo) & (t < (o + 0.9 * d) * beat / tempo)] = p
    return out


def _onehot(midi):
    P = np.zeros((len(midi), N_CHROMA))
    v = ~np.isnan(midi)
    P[np.flatnonzero(v), np.round(midi[v]).astype(int) % N_CHROMA] = 1.0
    return P


def test_alignment_finds_the_tune_in_any_key_and_tempo():
    tunes = generated_melodies(8, random_state=99)
    songs = [_onehot(_frames(m)) for m in tunes]
    for k, m in enumerate(tunes[:4]):
        for tempo, shift in ((0.7, 5.3), (1.0, -2.0), (1.5, 7.6)):
            hum = _frames(m, tempo=tempo)[20:90] + shift  # an excerpt, off the semitone grid
            q = prepare_query(hum)
            scores = [align(q, s).score for s in songs]
            assert int(np.argmax(scores)) == k, (k, tempo, scores)
            a = align(q, songs[k])
            assert scores[k] > 0.85 and (a.shift + round(shift)) % 12 == 0
            assert abs(a.start - 20 * tempo) <= 4  # where in the song the excerpt starts
    assert prepare_query(np.full(30, np.nan)) is None


def test_sequence_encoder_is_transposition_invariant():
    torch.manual_seed(0)
    enc = SequenceEncoder(QBHConfig()).eval()
    P = torch.rand(3, N_CHROMA + 1, 80)
    with torch.no_grad():
        z = enc(P)
        for k in (1, 5, 11):
            rolled = torch.cat([torch.roll(P[:, :N_CHROMA], k, dims=1), P[:, N_CHROMA:]], dim=1)
            assert torch.allclose(enc(rolled), z, atol=1e-5)
        assert not torch.allclose(enc(P.flip(-1)), z, atol=1e-3)
    assert torch.allclose(z.norm(dim=1), torch.ones(3))


def test_extractor_depth_widens_its_context_not_its_output():
    """``extractor_layers`` 6 continues the dilations (pitch 8, 16; time 16, 32): a note far above still changes a
    bin's output, which 4 layers cannot see; output shape and the 4-layer default are unchanged."""
    torch.manual_seed(0)
    S = torch.rand(1, 120, 100)
    far = S.clone()
    far[0, 60:80, :] += 3.0  # energy 20-30 semitones above semitone bin 10 (half-bins 60-79)
    outs = {}
    for layers in (4, 6):
        ex = MelodyExtractor(QBHConfig(extractor_layers=layers)).eval()
        with torch.no_grad():
            h, hf = ex.body(S[:, None]), ex.body(far[:, None])
        outs[layers] = float((h[0, :, 10] - hf[0, :, 10]).abs().max())  # semitone bin 10 (half-bin 20)
        assert ex(S).shape == (1, N_CHROMA + 1, 50)
    assert outs[4] == 0.0 and outs[6] > 0.0
    assert len(MelodyExtractor(QBHConfig()).body) == 12  # 4 layers x (conv, norm, relu): the shipped shape


def test_chromagrams_sparse_storage():
    midi = np.array([60.0, 60.4, np.nan, 71.0])
    C = contour_chromagram(midi)
    assert C.shape == (N_CHROMA + 1, 4)
    np.testing.assert_allclose(C.sum(0), 1.0, atol=1e-6)
    assert C[0, 0] == C[:N_CHROMA, 0].max() and C[N_CHROMA, 2] == 1.0 and C[11, 3] == C[:N_CHROMA, 3].max()
    bins, probs = sparse_melody(C)
    D = dense_melody(bins, probs)
    assert D.shape == (4, N_CHROMA) and np.abs(D[0, 0] - C[0, 0]) < 1 / 255 and D[2].sum() == 0


def test_reserved_collections_cannot_train():
    with pytest.raises(ConfigError, match="reserved"):
        QBHTrainConfig(collections=("ryansMammoth", "oneills1850"))


def test_training_runs_end_to_end_and_saves_a_loadable_model(tmp_path):
    tc = QBHTrainConfig(collections=("generated",), n_generated=3, windows_per_song=2, song_s=12.0,
                        extractor_steps=2, extractor_batch=2, encoder_steps=2, encoder_batch=4, threads=1)
    info = drive(iter_train_qbh(tmp_path / "m", cfg=QBHConfig(extractor_channels=4, encoder_channels=4),
                                train=tc, cache=False))
    assert info["data"]["songs"] == 3 and info["data"]["windows"] == 6
    model = QBHModel.load(tmp_path / "m")
    assert model.cfg.extractor_channels == 4 and not model.training
    with pytest.raises(ConfigError, match="config.json"):
        QBHModel.load(tmp_path)


_RENDER = qbh_fit._job


def _first_renders_second_fails(job):
    """Training song 0 renders, song 1 fails, every later one would take 10 minutes (the workers find this
    function in this module, by name)."""
    if job[2] == 0:
        return _RENDER(job)
    if job[2] == 1:
        raise RuntimeError("song 1 failed")
    time.sleep(600)
    return []


def test_a_failed_render_does_not_wait_for_the_songs_still_queued(monkeypatch):
    """Rendering with worker processes (the recipe's --jobs) waited, on a failure or Ctrl-C, for every song
    still queued (minutes); now the queue is dropped and the workers are ended."""
    monkeypatch.setattr(qbh_fit, "_job", _first_renders_second_fails)
    tc = QBHTrainConfig(collections=("generated",), n_songs=0, n_generated=6, windows_per_song=2, song_s=12.0,
                        jobs=2, threads=1)
    gen = iter_render_pairs(QBHConfig(extractor_channels=4, encoder_channels=4), tc, cache=False)
    t0 = time.monotonic()
    assert next(gen).done == 1
    with pytest.raises(RuntimeError, match="song 1 failed"):
        next(gen)
    assert time.monotonic() - t0 < 120
    assert no_worker_processes_left()  # ended: they would sleep on otherwise


def test_a_damaged_cache_of_rendered_pairs_is_rendered_again_not_a_traceback(tmp_path):
    """Bytes of the cached training material overwritten in place (same size) raised BadZipFile out of training."""
    rng = np.random.default_rng(0)
    data = qbh_fit.PairData([rng.random((8, 50), dtype=np.float32)] * 2, [np.zeros(50, np.int64)] * 2,
                            np.array([0, 1]), np.array([0, 10]), [rng.random((50, 13), dtype=np.float32)] * 2,
                            ["rock", "folk"])
    path = tmp_path / "pairs.npz"
    qbh_fit._save_pairs(path, data)
    assert qbh_fit._load_pairs(path).styles == ["rock", "folk"]
    raw = path.read_bytes()
    path.write_bytes(raw[:1000] + b"\x55" * 16 + raw[1016:])
    assert qbh_fit._load_pairs(path) is None


C, D, E, F, G, A, B = 60, 62, 64, 65, 67, 69, 71
TUNES = {  # well-known public-domain tunes: (MIDI pitch, beats); none is in the training collections' files
    "ode to joy": [(E, 1), (E, 1), (F, 1), (G, 1), (G, 1), (F, 1), (E, 1), (D, 1), (C, 1), (C, 1), (D, 1), (E, 1),
                   (E, 1.5), (D, .5), (D, 2), (E, 1), (E, 1), (F, 1), (G, 1), (G, 1), (F, 1), (E, 1), (D, 1),
                   (C, 1), (C, 1), (D, 1), (E, 1), (D, 1.5), (C, .5), (C, 2)],
    "frere jacques": [(C, 1), (D, 1), (E, 1), (C, 1)] * 2 + [(E, 1), (F, 1), (G, 2)] * 2
    + [(G, .5), (A, .5), (G, .5), (F, .5), (E, 1), (C, 1)] * 2 + [(C, 1), (G - 12, 1), (C, 2)] * 2,
    "amazing grace": [(G - 12, 1), (C, 2), (E, .5), (C, .5), (E, 2), (D, 1), (C, 2), (A - 12, 1), (G - 12, 2),
                      (G - 12, 1), (C, 2), (E, .5), (C, .5), (E, 2), (D, 1), (G, 3), (G, 2), (E, 1), (G, 2),
                      (E, .5), (C, .5), (E, 2), (D, 1), (C, 2), (A - 12, 1), (G - 12, 2), (G - 12, 1), (C, 2),
                      (E, .5), (C, .5), (E, 2), (D, 1), (C, 3)],
    "saints": [(C, 1), (E, 1), (F, 1), (G, 4), (C, 1), (E, 1), (F, 1), (G, 4), (C, 1), (E, 1), (F, 1), (G, 2),
               (E, 2), (C, 2), (E, 2), (D, 4), (E, 1), (E, 1), (D, 1), (C, 3), (C, 1), (E, 2), (G, 2), (G, 1),
               (F, 3), (E, 1), (F, 1), (G, 2), (E, 2), (C, 2), (D, 2), (C, 4)],
    "greensleeves": [(A, 1), (C + 12, 2), (D + 12, 1), (E + 12, 1.5), (F + 12, .5), (E + 12, 1), (D + 12, 2),
                     (B, 1), (G, 1.5), (A, .5), (B, 1), (C + 12, 2), (A, 1), (A, 1.5), (G + 1, .5), (A, 1),
                     (B, 2), (G + 1, 1), (E, 2), (A, 1), (C + 12, 2), (D + 12, 1), (E + 12, 1.5), (F + 12, .5),
                     (E + 12, 1), (D + 12, 2), (B, 1), (G, 1.5), (A, .5), (B, 1), (C + 12, 1.5), (B, .5), (A, 1),
                     (G + 1, 1.5), (F + 1, .5), (G + 1, 1), (A, 3)],
    "yankee doodle": [(C, 1), (C, 1), (D, 1), (E, 1), (C, 1), (E, 1), (D, 2), (C, 1), (C, 1), (D, 1), (E, 1),
                      (C, 2), (B - 12, 2), (C, 1), (C, 1), (D, 1), (E, 1), (F, 1), (E, 1), (D, 1), (C, 1),
                      (B - 12, 1), (G - 12, 1), (A - 12, 1), (B - 12, 1), (C, 2), (C, 2)],
}


def _tune(name: str) -> Melody:
    pitch, dur = zip(*TUNES[name], strict=True)
    onset = np.concatenate([[0.0], np.cumsum(dur)[:-1]]).astype(np.float32)
    return Melody(name, name, np.array(pitch, np.int16), onset, np.array(dur, np.float32))


@pytest.fixture(scope="module")
def hum_library(tmp_path_factory):
    """Six songs rendered from well-known tunes (none in the training collections), one hum of each."""
    root = tmp_path_factory.mktemp("qbh")
    tunes = [_tune(name) for name in TUNES]
    songs = []
    for i, m in enumerate(tunes):
        y, timeline, _ = render_melody_song(m, style=("rock", "chiptune", "ambient")[i % 3], seed=500 + i, sr=SR)
        sf.write(root / f"song{i}.wav", y, SR)
        songs.append(timeline)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / f"song{i}.wav" for i in range(6)]))
        ids = {lib.track_by_path(str((root / f"song{i}.wav").resolve())).id: i for i in range(6)}
    hums = []
    for i, tl in enumerate(songs):
        sel = tl[(tl[:, 0] >= tl[2, 0]) & (tl[:, 0] < tl[2, 0] + 10.0)]
        notes = np.stack([sel[:, 0] - sel[0, 0], sel[:, 1], sel[:, 2]], 1)
        h = render_hum(notes, seed=7000 + i, sr=SR)
        sf.write(root / f"hum{i}.wav", h.y, SR)
        hums.append(h.y)
    return root, ids, hums


def test_shipped_model_finds_the_hummed_song(hum_library):
    root, ids, hums = hum_library
    assert qbh_model_folder(None).name == "qbh-default"
    with Library(root / "lib") as lib:
        searcher = HumSearcher.open(lib)
        for i, y in enumerate(hums):
            res = searcher.query(y, SR, k=6)
            assert ids[res[0]["track_id"]] == i, [(ids[r["track_id"]], r["score"]) for r in res]
            assert res[0]["score"] > res[1]["score"] and res[0]["melody_score"] > 0.6
            assert set(res[0]) >= {"track_id", "path", "label", "score", "segment_id", "start_s"}
        emb = [ids[searcher.query(y, SR, k=3, method="embedding")[0]["track_id"]] == i for i, y in enumerate(hums)]
        assert sum(emb) >= 3  # the embedding alone ranks most first among six
        silent = searcher.query(np.zeros(SR * 3, np.float32), SR)
        assert silent == []
    res = hum_search(root / "lib", hums[2], SR, k=2)
    assert ids[res[0]["track_id"]] == 2


def test_how_many_results_are_asked_does_not_change_their_ranking(hum_library):
    """`hum -k 1` ranked with one embedding candidate, so its best track's score (and at times the order of the
    others) differed from `-k 10`'s."""
    root, _ids, hums = hum_library
    with Library(root / "lib") as lib:
        searcher = HumSearcher.open(lib)
        for y in hums:
            full = searcher.query(y, SR, k=6)
            for k in (1, 3):
                assert searcher.query(y, SR, k=k) == full[:k]


def test_a_qbh_index_overwritten_in_place_is_rebuilt(hum_library, tmp_path):
    """Bytes of the stored song vectors overwritten in place keep the file's size, which was all that was checked:
    the damaged vectors were searched, and reused by the next incremental build."""
    import shutil

    from musicemb_core.data import layout
    from musicemb_core.search.qbh import open_qbh_index, qbh_index_current

    root, ids, hums = hum_library
    shutil.copytree(root / "lib", tmp_path / "lib")
    with Library(tmp_path / "lib") as lib:
        f = open_qbh_index(lib) / "vectors.faiss"
        data = f.read_bytes()
        f.write_bytes(data[:len(data) // 2] + bytes(256) + data[len(data) // 2 + 256:])
        assert not qbh_index_current(lib)
        res = HumSearcher.open(lib).query(hums[4], SR, k=2)
        assert ids[res[0]["track_id"]] == 4
        assert layout.qbh_index(lib, "qbh-default").current() != f.parent  # rebuilt


def test_cli_hum_json(hum_library, capsys):
    root, ids, _ = hum_library
    assert cli(["hum", str(root / "lib"), str(root / "hum1.wav"), str(root / "hum3.wav"), "--json", "-k", "3",
                "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [q["query"] for q in out] == [str(root / "hum1.wav"), str(root / "hum3.wav")]
    assert [ids[q["results"][0]["track_id"]] for q in out] == [1, 3]
    assert len(out[0]["results"]) == 3 and {"track_id", "path", "label", "score"} <= set(out[0]["results"][0])
    with pytest.raises(SystemExit) as usage:  # neither files nor --record: a usage error, as `identify LIB` alone
        cli(["hum", str(root / "lib")])
    assert usage.value.code == 2 and "QUERY_AUDIO" in capsys.readouterr().err


def test_coarse_pass_ranks_like_the_exact_alignment():
    tunes = generated_melodies(40, random_state=5)
    songs = [_onehot(_frames(m)) for m in tunes]
    bins, probs = zip(*(sparse_melody(np.vstack([S.T, 1 - S.sum(1)[None]])) for S in songs), strict=True)
    bounds = np.concatenate([[0], np.cumsum([len(b) for b in bins])])
    coarse = CoarseMelodies(np.concatenate(bins), np.concatenate(probs), bounds)
    assert coarse.frames.tolist() == [(len(b) + 1) // 2 for b in bins]
    for k in (3, 17, 31):
        hum = _frames(tunes[k], tempo=1.2)[10:110] + 4.3  # another key and tempo, an excerpt
        q = prepare_query(hum)
        s = coarse.scores(q, np.arange(len(songs)))
        exact = np.array([align(q, dense_melody(b, p)).score for b, p in zip(bins, probs, strict=True)])
        assert int(np.argmax(s)) == k == int(np.argmax(exact))
        assert np.corrcoef(s, exact)[0, 1] > 0.8
        sub = coarse.scores(q, np.array([k, 0, 1]))  # any subset of tracks, in any order
        np.testing.assert_allclose(sub, s[[k, 0, 1]])


def test_a_half_believed_melody_costs_less_than_a_wrong_one():
    """A melody note the extractor shares with an accompanying voice (p 0.36 against 0.64) costs
    1 - 0.36 ** PROB_EXPONENT, not 1 - 0.36, in the exact alignment and the coarse pass alike."""
    from musicemb_core.search.melody_align import PROB_EXPONENT

    tune, other = generated_melodies(2, random_state=3)
    truth, accomp = _onehot(_frames(tune)), _onehot(_frames(other))
    n = min(len(truth), len(accomp))
    P = 0.36 * truth[:n] + 0.64 * accomp[:n]
    q = prepare_query(_frames(tune)[:n])
    expected = 0.36 ** PROB_EXPONENT
    assert expected > 0.55
    exact = align(q, P)
    assert exact.shift == 0 and expected - 0.02 < exact.score < expected + 0.15  # a few shared notes count 1
    bins, probs = sparse_melody(np.vstack([P.T, 1 - P.sum(1)[None]]))
    coarse = CoarseMelodies(bins, probs, np.array([0, len(bins)])).scores(q, np.array([0]))[0]
    assert abs(coarse - exact.score) < 0.05


def test_coarse_pass_keeps_to_its_budget_on_big_libraries(hum_library, monkeypatch):
    root, ids, hums = hum_library
    import musicemb_core.search.qbh as qbh

    with Library(root / "lib") as lib:
        searcher = HumSearcher.open(lib)
    frames = searcher.melodies.coarse.frames
    scanned = []
    real = type(searcher.melodies.coarse).scores
    monkeypatch.setattr(type(searcher.melodies.coarse), "scores",
                        lambda self, q, rows, **kw: scanned.append(rows) or real(self, q, rows, **kw))
    searcher.query(hums[4], SR, k=3)
    assert len(scanned[-1]) == len(frames)  # a small library: every track
    monkeypatch.setattr(qbh, "COARSE_BUDGET", int(frames.max() * 2.5))
    res = searcher.query(hums[4], SR, k=3)
    assert 1 <= len(scanned[-1]) < len(frames) and frames[scanned[-1]].sum() <= qbh.COARSE_BUDGET
    assert len(res) == 3 and ids[res[0]["track_id"]] == 4  # the embedding ranks it high enough here
