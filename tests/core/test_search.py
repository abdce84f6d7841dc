"""Identification, classification and nearest-segment search on a tiny library embedded with the built-in
default model: snippets cut at arbitrary offsets, 1 s snippets, noisy snippets, silence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.analysis.probes import probe_scores
from musicemb_core.cli import main
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import render_song
from musicemb_core.inference import iter_embed
from musicemb_core.search.fingerprints import iter_fingerprint
from musicemb_core.search.knn import DECISIVE_MATCHES, Searcher, fuse
from musicemb_core.stored_vectors import load_embeddings
from musicemb_core.workflows.evaluate import iter_evaluate, segment_labels

SR = 16000
SONGS = [("rock", 1), ("rock", 2), ("folk", 3), ("folk", 4), ("techno", 5), ("techno", 6), ("ambient", 7),
         ("chiptune", 8)]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    audio = {}
    for style, seed in SONGS:
        (root / "audio" / style).mkdir(parents=True, exist_ok=True)
        y = render_song(style, seed=seed, duration_s=15.0, sr=SR)
        path = root / "audio" / style / f"{style}{seed}.flac"
        sf.write(path, y, SR)
        audio[str(path)] = y
    lib = Library(root / "lib", create=True)
    drive(iter_ingest(lib, [root / "audio"], labels="folders", segments=SegmentConfig(3.0, 1.5), jobs=1))
    drive(iter_embed(lib))
    drive(iter_fingerprint(lib))
    yield lib, audio, root
    lib.close()


def _snippets(audio, seconds, rng, n_per_track=2):
    for path, y in audio.items():
        for _ in range(n_per_track):
            a = int(rng.uniform(0, len(y) / SR - seconds) * SR)
            yield path, y[a:a + int(seconds * SR)].copy()


@pytest.mark.parametrize("seconds,noise_snr_db", [(3.0, None), (1.0, None), (3.0, 10.0)])
def test_identify_snippets_at_arbitrary_offsets(library, seconds, noise_snr_db):
    lib, audio, _ = library
    searcher = Searcher(lib)
    rng = np.random.default_rng(int(seconds * 10))
    hits = total = 0
    for path, clip in _snippets(audio, seconds, rng):
        if noise_snr_db is not None:
            noise = rng.standard_normal(len(clip)).astype(np.float32)
            clip = clip + noise * np.sqrt(np.mean(clip**2) / np.mean(noise**2) / 10 ** (noise_snr_db / 10))
        ranked = searcher.identify(searcher.embed_audio(clip), top=3)
        hits += ranked[0]["path"] == path
        total += 1
        assert 0.0 <= ranked[0]["score"] <= 1.0
        assert abs(ranked[0].get("speed", 1.0) - 1.0) <= 0.011  # played as recorded (the grid's 1 % steps)
    assert hits == total, f"{hits}/{total} snippets identified"


@pytest.mark.parametrize("speed", [0.96, 1.03, 1.07])
def test_landmarks_find_snippets_played_off_speed(library, speed):
    """A DJ's pitch fader (tape-style: tempo and pitch together) moves every landmark; the query is also read at
    the speeds of the DJ range, so the landmarks still align, and with many more matches than at its own speed."""
    from musicemb_core.audio.resample import resample

    lib, audio, _ = library
    searcher = Searcher(lib)
    rng = np.random.default_rng(int(speed * 100))
    for path, clip in _snippets(audio, 4.0 / speed, rng, n_per_track=1):
        q = searcher.embed_audio(resample(clip, SR, SR / speed))  # played `speed` times faster
        matches, speeds = searcher.landmark_matches(q)
        as_recorded = searcher.landmarks.match(*q.landmarks[0])
        best = max(matches, key=matches.get)
        assert searcher.tracks[best].path == path
        assert matches[best] >= 2 * max(as_recorded.values(), default=0) and matches[best] >= 15
        top = searcher.identify(q, top=1)[0]
        assert top["path"] == path and abs(top["speed"] - speed) <= 0.011  # the pitch the DJ set, to 1 %


def test_decisive_landmarks_outrank_the_embedding():
    """Noise can hide a track from the embedding while its landmarks still line up: far ahead of every other
    track they decide; a close count, or a few chance alignments, leave the fused ranking as it is."""
    emb = {1: 0.95, 2: 0.90}
    ranked = fuse(emb, {3: DECISIVE_MATCHES + 1, 1: 3, 2: 2})
    assert ranked[0][0] == 3 and ranked[0][1] >= ranked[1][1]
    ranked = fuse({2: 0.98}, {1: 94, 2: 17})  # a version sharing some landmarks and liked by the embedding
    assert [t for t, _ in ranked] == [1, 2] and ranked[0][1] >= ranked[1][1]
    assert fuse(emb, {3: 9, 1: 6, 2: 6})[0][0] == 1  # pink noise aligns ~6-10 by chance on several tracks
    assert fuse(emb, {3: 11, 1: 6, 2: 5})[0][0] == 3  # but not 11 against at most 6
    assert fuse(emb, {3: DECISIVE_MATCHES - 1})[0][0] == 1


def test_landmark_matches_a_frame_off_the_offset_count_too():
    """A snippet's start falls between landmark frames, so its peaks land a frame early or late: matches at the
    best offset and one frame either side count together; matches scattered over other offsets do not."""
    from musicemb_core.search.fingerprints import LandmarkIndex

    rng = np.random.default_rng(0)
    hashes = rng.choice(2**24, 60, replace=False).astype(np.uint32)
    times = np.arange(60, dtype=np.int32) * 5
    index = LandmarkIndex(np.concatenate([hashes, hashes]), np.repeat(np.array([1, 2], np.int32), 60),
                          np.concatenate([times, rng.permutation(times)]))  # track 2: the same hashes, shuffled
    q = np.arange(0, 60, 2)  # 30 of track 1's hashes, 100 frames in; a third each 1 frame early or late
    jitter = np.tile(np.array([-1, 0, 1], np.int32), 10)
    found = index.match(hashes[q], times[q] - 100 + jitter)
    assert found[1] == 30
    assert found[2] <= 3  # track 2's shuffled times: chance alignments only


def test_embedding_alone_identifies_clean_snippets(library):
    lib, audio, _ = library
    searcher = Searcher(lib, use_landmarks=False)
    rng = np.random.default_rng(3)
    results = [searcher.identify(searcher.embed_audio(clip), top=2)[0]["path"] == p
               for p, clip in _snippets(audio, 3.0, rng)]
    assert np.mean(results) >= 0.8


def test_silence_gets_honest_zero_scores(library):
    lib, _, _ = library
    searcher = Searcher(lib)
    q = searcher.embed_audio(np.zeros(3 * SR, np.float32))
    assert not q.active.any()
    assert searcher.identify(q) == []  # no evidence: no result (was every track scored 0.0)
    assert searcher.classify(q) == []


def test_classify_votes_the_style(library):
    lib, audio, _ = library
    searcher = Searcher(lib)
    for path, y in list(audio.items())[:4]:
        labels = searcher.classify(searcher.embed_audio(y[SR * 4: SR * 10]), top=2)
        assert labels[0]["label"] == path.split("/")[-2] and len(labels) <= 2


def test_cli_identify_json_and_search(library, capsys):
    lib, audio, root = library
    path, y = next(iter(audio.items()))
    sf.write(root / "q.wav", y[SR * 5:SR * 8], SR)
    assert main(["identify", str(lib.root), str(root / "q.wav"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["query"] == str(root / "q.wav")
    assert set(out[0]["results"][0]) >= {"track_id", "path", "label", "score"}
    assert out[0]["results"][0]["path"] == path
    assert main(["search", str(lib.root), str(root / "q.wav"), "-k", "3", "--json"]) == 0
    windows = json.loads(capsys.readouterr().out)["windows"]
    assert len(windows) == 1 and windows[0]["neighbours"][0]["path"] == path
    assert main(["identify", str(lib.root), str(root / "missing.wav")]) == 1


def test_evaluate_numbers_and_plots(library, tmp_path):
    lib, _, _ = library
    result = drive(iter_evaluate(lib, plots=tmp_path, reid_n=10))
    emb = load_embeddings(lib)
    track_of = dict(zip(*[lib.segments()[k].tolist() for k in ("id", "track_id")], strict=True))
    tracks = np.array([track_of[int(i)] for i in emb.ids])
    labels, names = segment_labels(lib, tracks)
    direct = probe_scores(np.asarray(emb.vectors), labels, tracks, kind="logistic")
    assert result["probe_logistic"]["accuracy"] == pytest.approx(direct["accuracy"])
    assert result["labels"] == names == sorted({s for s, _ in SONGS})
    assert np.array(result["confusion"]["matrix"]).sum() == len(emb.ids)
    assert result["reid"]["n"] == 10 and result["reid"]["top1"] >= 0.9
    assert {p.name for p in tmp_path.iterdir()} >= {"confusion.png", "confusion.json", "kmeans.png"}


def test_queries_refuse_vectors_of_weights_trained_again(tmp_path, capsys):
    """A model trained again under its name and not embedded again: queries embedded by the new weights were
    compared with vectors of the old ones (wrong neighbours; at another --dim an AssertionError from FAISS)."""
    from tests.conftest import write_tone

    for i, freq in enumerate((220.0, 330.0, 495.0)):
        write_tone(tmp_path / "music" / f"t{i}.wav", freq, seconds=6.0, seed=i)
    lib, query = str(tmp_path / "lib"), str(write_tone(tmp_path / "q.wav", 330.0, seconds=4.0, seed=9))
    train = ["train", lib, "--strategy", "autoencoder", "--epochs", "1", "--steps-per-epoch", "1", "--name", "mine",
             "-q"]
    assert main(["ingest", lib, str(tmp_path / "music"), "-q"]) == 0
    assert main(train) == 0 and main(["embed", lib, "--model", "mine", "-q"]) == 0
    assert main(["identify", lib, query, "--model", "mine"]) == 0
    assert main([*train, "--dim", "64", "--replace"]) == 0
    capsys.readouterr()
    for argv in (["identify", lib, query], ["search", lib, query], ["similar", lib, query, "--no-versions"]):
        assert main([*argv, "--model", "mine"]) == 1
        assert capsys.readouterr().err == (f"musicemb: error: {lib}: the embeddings of 'mine' were made by other "
                                           "weights of the model (trained again since?); run `musicemb embed --model "
                                           "mine`\n")
    assert main(["embed", lib, "--model", "mine", "-q"]) == 0
    assert main(["identify", lib, query, "--model", "mine"]) == 0


def test_landmarks_of_audio_replaced_since_name_no_track(tmp_path, capsys):
    """A file replaced by other audio and imported again (not embedded yet): identify named that track, decisively,
    for a snippet of the audio it no longer holds (its landmarks were of the old audio)."""
    from tests.conftest import write_tone

    for i, freq in enumerate((220.0, 330.0, 495.0)):
        write_tone(tmp_path / "music" / f"t{i}.wav", freq, seconds=8.0, seed=i)
    y, sr = sf.read(tmp_path / "music" / "t1.wav")
    sf.write(tmp_path / "q.wav", y[sr:5 * sr], sr)
    lib, query = str(tmp_path / "lib"), str(tmp_path / "q.wav")

    def landmarks_of_t1() -> int:
        capsys.readouterr()
        assert main(["identify", lib, query, "--json"]) == 0
        return {Path(r["path"]).name: r["landmarks"] for r in json.loads(capsys.readouterr().out)[0]["results"]
                }.get("t1.wav", 0)

    assert main(["ingest", lib, str(tmp_path / "music"), "--embed", "-q"]) == 0
    assert landmarks_of_t1() > 50
    write_tone(tmp_path / "music" / "t1.wav", 700.0, seconds=8.0, seed=7)
    assert main(["ingest", lib, str(tmp_path / "music"), "-q"]) == 0
    assert landmarks_of_t1() == 0
