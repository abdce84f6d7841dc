"""The similarity space: descriptors, track aggregation, neighbour metrics, `embed` computing both built-in
spaces in one pass, and `musicemb similar` (contract, its own track left out, --together, bad queries)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from musicemb_core.analysis.track_vectors import (
    aggregate,
    library_tracks,
    relative_to_library,
    style_scores,
    version_ranks,
)
from musicemb_core.cli import main
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import render_song
from musicemb_core.features.logmel import LogMel
from musicemb_core.inference import iter_embed
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.config import ModelConfig
from musicemb_core.models.library_stats import library_statistics
from musicemb_core.models.musicnn import TAG_DIM
from musicemb_core.models.similarity import (
    GROUPS,
    N_STATS,
    SIMILARITY_FEATURES,
    SimilarityEncoder,
    descriptors,
)
from musicemb_core.search.similar import SimilarTracks
from musicemb_core.stored_vectors import (
    builtin_models,
    load_embeddings,
    load_track_vectors,
    tag_statistics_of,
)
from tests.conftest import sine

SR = 16000
SONGS = [("rock", 1), ("rock", 2), ("techno", 3), ("techno", 4), ("ambient", 5), ("ambient", 6)]


def test_aggregate_mean_and_spread():
    X = np.array([[1, 0], [0, 1], [3, 0], [0, 2]], np.float32)
    ids, V = aggregate(X, np.array([7, 7, 3, 3]), method="mean")
    assert ids.tolist() == [3, 7]
    assert np.allclose(V, [[np.sqrt(0.5), np.sqrt(0.5)]] * 2, atol=1e-6)  # rows are normalised first
    _, W = aggregate(X, np.array([7, 7, 7, 3]), method="mean+std")
    assert W.shape == (2, 4) and np.allclose(np.linalg.norm(W, axis=1), 1, atol=1e-6)
    assert np.allclose(W[0, 2:], 0)  # one row: no spread
    with pytest.raises(ValueError):
        aggregate(X, np.zeros(4), method="max")


def test_track_vectors_relative_to_the_library():
    """What every track shares is taken away, so the tracks' differences decide their neighbours; a tiny library is
    only scaled (two tracks are not pushed to opposite ends)."""
    rng = np.random.default_rng(0)
    shared = np.zeros(8)
    shared[0] = 5.0  # a component all tracks have
    V = shared + rng.normal(size=(40, 8)) * np.r_[0.1, np.ones(7)]
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    mean, spread = library_tracks(V)
    R = relative_to_library(V, mean, spread)
    assert np.allclose(np.linalg.norm(R, axis=1), 1, atol=1e-5)
    assert (np.abs(V @ V.T) > 0.5).mean() > 0.9  # before: everything alike
    assert (np.abs(R @ R.T) > 0.5).mean() < 0.2  # after: only the near ones
    two = V[:2]
    R2 = relative_to_library(two, *library_tracks(two))
    assert float(R2[0] @ R2[1]) > float(two[0] @ two[1]) - 0.5
    empty_mean, empty_spread = library_tracks(np.zeros((0, 8)))
    assert np.all(empty_mean == 0) and np.all(empty_spread == 1)


def test_style_and_version_metrics_count_what_they_say():
    V = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], np.float32)
    s = style_scores(V, np.array(["a", "a", "b", "b", "c"]), k=1)
    assert s["nn1"] == 1.0 and s["p_at_k"] == 1.0  # "c" occurs once: not scored
    s = style_scores(V, np.array(["a", "b", "a", "b", "c"]), k=1)
    assert s["nn1"] == 0.0
    ranks = version_ranks(V, np.array(["p", "", "p", "", ""], dtype=object))
    assert sorted(ranks.tolist()) == [4, 4]  # from row 0, row 2 comes after rows 1, 4 and 3


def test_descriptors_are_gain_invariant_and_finite_on_silence():
    lm = LogMel(SIMILARITY_FEATURES)
    rng = np.random.default_rng(0)
    y = (sine(220, sr=SR, seconds=3) + 0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    x = torch.from_numpy(np.stack([y, 0.1 * y, np.zeros_like(y)]))
    d = descriptors(lm(x))
    assert d.shape == (3, N_STATS) and torch.isfinite(d).all()
    assert torch.allclose(d[0], d[1], atol=1e-3)
    chroma = d[0, 2 + 60 + 48 + 2 + 24: 2 + 60 + 48 + 2 + 24 + 12]
    assert int(chroma.argmax()) == 9  # 220 Hz is an A


def test_similarity_encoder_round_trips_and_finishes_per_library(tmp_path):
    enc = SimilarityEncoder(ModelConfig(arch="simstats", dim=N_STATS))
    enc.mean.fill_(0.5)
    enc.set_group_weights({"chroma": 0.0, "mfcc": 2.0})
    info = ckpt.ModelInfo("s", enc.config, SIMILARITY_FEATURES, 3.0, train={"aggregation": "mean"})
    ckpt.save_model(tmp_path, info, {"encoder": enc})
    back, info2 = ckpt.load_encoder(tmp_path)
    x = torch.randn(2, 1, SIMILARITY_FEATURES.n_mels, 94) * 10 - 30
    raw = back(x)
    assert torch.allclose(raw, enc.eval()(x), atol=1e-6) and raw.shape == (2, N_STATS)
    assert info2.train["aggregation"] == "mean" and float(back.mean[0]) == 0.5
    z = back.finish(raw.numpy(), np.zeros(N_STATS, np.float32), np.ones(N_STATS, np.float32))
    assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    a, b = GROUPS["chroma"]
    assert (z[:, a:b] == 0).all()  # a group weighted 0 plays no part
    with pytest.raises(ConfigError, match="simstats gives"):
        SimilarityEncoder(ModelConfig(arch="simstats", dim=16))


def test_library_statistics_shrink_small_libraries_to_the_training_music():
    rng = np.random.default_rng(0)
    Z = (3 + 2 * rng.standard_normal((10_000, N_STATS))).astype(np.float32)
    mean, std = library_statistics(Z)
    assert np.allclose(mean, 3, atol=0.1) and np.allclose(std, 2, atol=0.1)  # a big library: its own
    mean, std = library_statistics(Z[:5])
    assert np.abs(mean).max() < 0.3 and np.all((std > 1) & (std < 1.8))  # five segments: mostly the prior
    mean, std = library_statistics(Z[:0])
    assert (mean == 0).all() and (std == 1).all()
    prior = (np.full(4, -1.0), np.full(4, 0.5))  # another prior (the tagger's, from the training music)
    mean, std = library_statistics(Z[:0, :4], prior)
    assert np.allclose(mean, -1) and np.allclose(std, 0.5)
    mean, std = library_statistics(Z[:, :4], prior)
    assert np.allclose(mean, 3, atol=0.15) and np.allclose(std, 2, atol=0.15)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("similar")
    for style, seed in SONGS:
        (root / "audio" / style).mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / style / f"{style}{seed}.flac", render_song(style, seed=seed, duration_s=12.0, sr=SR), SR)
    lib = Library(root / "lib", create=True)
    drive(iter_ingest(lib, [root / "audio"], labels="folders", segments=SegmentConfig(3.0, 3.0), jobs=1))
    report = drive(iter_embed(lib))
    yield lib, root, report
    lib.close()


def test_embed_computes_both_builtin_spaces_with_track_vectors(library):
    lib, _, report = library
    n_seg = len(lib.segments()["id"])
    assert report.computed == 2 * n_seg
    fp, sim = (load_embeddings(lib, m) for m in builtin_models())
    assert fp.vectors.shape[0] == sim.vectors.shape[0] == n_seg and sim.vectors.shape[1] == N_STATS
    tids, V = load_track_vectors(lib, "similarity")
    assert sorted(tids.tolist()) == sorted(t.id for t in lib.tracks())
    assert np.allclose(np.linalg.norm(V, axis=1), 1, atol=1e-5)
    assert drive(iter_embed(lib)).computed == 0  # incremental for both


def test_track_vectors_carry_the_taggers_view(library):
    """Each track vector is the descriptors' (2 x N_STATS) and the tagger's (TAG_DIM) view side by side, both
    present for every track; the statistics a query needs are stored with them."""
    lib, _, _ = library
    tagger = ckpt.read_info(ckpt.builtin_model_dir("similarity")).train["tagger"]
    _, V = load_track_vectors(lib, "similarity")
    assert V.shape[1] == 2 * N_STATS + TAG_DIM
    desc, tags = np.linalg.norm(V[:, :2 * N_STATS], axis=1), np.linalg.norm(V[:, 2 * N_STATS:], axis=1)
    assert (desc > 0.3).all() and (tags > 0.1).all()
    stats = tag_statistics_of(lib)
    assert stats is not None and stats["tag_mean"].shape == (TAG_DIM,)
    assert 1 <= tagger["clips"] <= 32 and tagger["weight"] > 0


def test_adding_a_track_reads_only_it_with_the_tagger(tmp_path):
    """An embed after an import computes the new track's segments and tagger values only; the others' stored
    tagger values are kept as they were, and every track vector still has its tagger half. A track shorter than one
    window (one zero-padded segment) is read too."""
    from musicemb_core.stored_vectors import read_arrays

    audio = tmp_path / "audio"
    audio.mkdir()
    for style, seed in (("rock", 1), ("techno", 2), ("ambient", 3)):
        sf.write(audio / f"{style}{seed}.flac", render_song(style, seed=seed, duration_s=9.0, sr=SR), SR)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [audio], segments=SegmentConfig(3.0, 3.0), jobs=1, analyse=False))
        drive(iter_embed(lib))
        before_t, before_raw = read_arrays(lib, "similarity", "tag_tracks", "tag_raw")
        sf.write(audio / "short.flac", render_song("rock", seed=4, duration_s=2.0, sr=SR), SR)
        drive(iter_ingest(lib, [audio], segments=SegmentConfig(3.0, 3.0), jobs=1, analyse=False))
        new = next(t for t in lib.tracks() if t.path.endswith("short.flac"))
        report = drive(iter_embed(lib))
        assert report.computed == 2  # its one segment, in both spaces
        tags_t, tags_raw = read_arrays(lib, "similarity", "tag_tracks", "tag_raw")
        old = np.isin(tags_t, before_t)
        assert np.array_equal(tags_raw[old], before_raw) and tags_t[~old].tolist() == [new.id]
        tids, V = load_track_vectors(lib, "similarity")
        assert len(tids) == 4 and (np.linalg.norm(V[:, 2 * N_STATS:], axis=1) > 0.1).all()


def test_a_library_file_queried_as_audio_gets_its_stored_vector(library):
    """`similar` with a file from outside (embedded now) and with the library's own copy agree: the query's vector
    is made relative to the library's tracks as the stored ones are."""
    from musicemb_core.audio.decode import load

    lib, _, _ = library
    space = SimilarTracks(lib)
    track = lib.tracks()[0]
    y, _ = load(track.path, sr=space.embedder.sr)
    stored = space.vectors[space.row[track.id]]
    assert float(space.audio_vector(y) @ stored) > 0.999


def test_a_file_named_like_a_track_id_does_not_hide_the_track(library, tmp_path, monkeypatch):
    """A file "2" in the current folder (not a track) was read as the query instead of track 2, as `export` and
    `set` no longer do; a number that is no track id and names a file is that file."""
    lib, _, _ = library
    space = SimilarTracks(lib)
    tid = lib.tracks()[1].id
    monkeypatch.chdir(tmp_path)
    (tmp_path / str(tid)).write_text("not audio")
    vector, own = space.resolve(str(tid))
    assert own == [tid] and np.array_equal(vector, space.vectors[space.row[tid]])
    sf.write(tmp_path / "999", 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR), SR, format="WAV")
    assert space.resolve("999")[1] == []  # no track 999: the file named so


def test_a_track_queried_by_its_path_through_a_linked_folder_is_left_out(tmp_path):
    """A folder imported through a link keeps the link in its tracks' paths: `similar` with such a path (or the
    real file's) took the file for outside audio and answered the query's own track first, score 1.0."""
    (tmp_path / "crate").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "crate" / "House").symlink_to(tmp_path / "real", target_is_directory=True)
    for i, freq in enumerate((440, 660, 880)):
        sf.write(tmp_path / "real" / f"t{i}.wav", sine(freq, sr=SR, seconds=7.0, amp=0.3), SR)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "crate"], jobs=1))
        drive(iter_embed(lib, model="similarity"))
        space = SimilarTracks(lib)
        track = lib.track_by_path(str(tmp_path / "crate" / "House" / "t0.wav"))
        for query in (track.path, str(tmp_path / "real" / "t0.wav")):
            assert space.resolve(query)[1] == [track.id]
            assert track.id not in [r["track_id"] for r in space.query([query], k=5)[0]["results"]]


def test_similar_ranks_the_same_style_first_and_leaves_the_query_out(library):
    lib, _, _ = library
    space = SimilarTracks(lib)
    tracks = lib.tracks()
    hits = 0
    for t in tracks:
        results = space.query([str(t.id)], k=3)[0]["results"]
        assert t.id not in [r["track_id"] for r in results] and len(results) == 3
        assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
        hits += results[0]["label"] == t.label
    assert hits >= 5, f"{hits}/6 nearest tracks share the style"


def test_cli_similar_contract(library, capsys, tmp_path):
    lib, root, _ = library
    track = lib.tracks()[0]
    assert main(["similar", str(lib.root), track.path, "--json", "-k", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["query"] == track.path and len(out[0]["results"]) == 4
    assert set(out[0]["results"][0]) >= {"track_id", "path", "title", "artist", "score"}
    assert track.id not in [r["track_id"] for r in out[0]["results"]]
    # any audio file: a fresh rendering of a style the library holds
    sf.write(tmp_path / "q.wav", render_song("techno", seed=11, duration_s=9.0, sr=SR), SR)
    assert main(["similar", "--json", str(lib.root), str(tmp_path / "q.wav")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["results"][0]["label"] == "techno"
    # several together: one answer, none of the queries' own tracks
    a, b = lib.tracks()[:2]
    assert main(["similar", str(lib.root), str(a.id), str(b.id), "--together", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and not {a.id, b.id} & {r["track_id"] for r in out[0]["results"]}


@pytest.mark.parametrize("make_query,needle", [
    (lambda d: "987654", "no track with id 987654"),
    (lambda d: str(d / "missing.wav"), "no such file"),
    (lambda d: sf.write(d / "silent.wav", np.zeros(4 * SR, np.float32), SR) or str(d / "silent.wav"), "silent"),
])
def test_cli_similar_bad_queries_are_one_line_errors(library, capsys, tmp_path, make_query, needle):
    lib, _, _ = library
    assert main(["similar", str(lib.root), make_query(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sounds_like_names_the_taggers_likeliest_tags(library, capsys):
    """Each embedded track's likeliest tags (at most 3, best first, of the tagger's 50), from its stored tagger
    values; `musicemb tracks --json` shows them. The techno renderings sound 'electronic' to the tagger."""
    from musicemb_core.inference import sounds_like
    from musicemb_core.models.musicnn import MSD_TAGS

    lib, _, _ = library
    sounds = sounds_like(lib)
    assert set(sounds) == {t.id for t in lib.tracks()}
    for tags in sounds.values():
        p = [x for _, x in tags]
        assert 1 <= len(tags) <= 3 and p == sorted(p, reverse=True) and min(p) >= 0.1
        assert all(name in MSD_TAGS for name, _ in tags)
    techno = [t.id for t in lib.tracks() if t.label == "techno"]
    assert all("electronic" in [n for n, _ in sounds[t]] for t in techno)
    assert main(["tracks", str(lib.root), "--json"]) == 0
    rows = {r["track_id"]: r["sounds_like"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {t: ", ".join(n for n, _ in tags) for t, tags in sounds.items()}
