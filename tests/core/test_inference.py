"""iter_embed: vectors equal the encoder on the segments, incremental, cancellable, tied to the model's weights;
the built-in default model is shipped and loads safely."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.audio import load
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import Embedder, iter_embed
from musicemb_core.models import ModelConfig
from musicemb_core.resources import default_model_dir
from musicemb_core.stored_vectors import load_embeddings, model_folder
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.loop import iter_fit

SR = 16000


def _write(path, freq, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))).astype("f4"), SR)


@pytest.fixture
def lib_with_model(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(4):
        _write(tmp_path / "a" / f"t{i}.wav", 200 + 300 * i, 7.0, seed=i)
    lib = Library(tmp_path / "lib", create=True)
    drive(iter_ingest(lib, [tmp_path / "a"], jobs=1))
    drive(iter_fit(lib, name="m", train=TrainConfig(strategy="contrastive", epochs=1, batch_size=4),
                   model=ModelConfig(width=8, dim=24)))
    yield lib, tmp_path
    lib.close()


def test_vectors_equal_the_encoder_on_each_segment(lib_with_model):
    lib, _ = lib_with_model
    report = drive(iter_embed(lib, model="m"))
    seg = lib.segments()
    assert report.computed == len(seg["id"]) == 8 and report.failed == []
    emb = load_embeddings(lib, "m")
    assert np.array_equal(emb.ids, seg["id"]) and emb.vectors.shape == (8, 24)
    embedder = Embedder(model_folder(lib, "m"))
    i = 5
    track = lib.track(int(seg["track_id"][i]))
    y, _ = load(track.path, sr=SR, offset=seg["start_s"][i], duration=3.0)
    assert np.allclose(embedder(y[None]), emb.vectors[i], atol=1e-4)


def test_incremental_only_new_segments_and_removed_dropped(lib_with_model):
    lib, tmp = lib_with_model
    drive(iter_embed(lib, model="m"))
    first = np.array(load_embeddings(lib, "m").vectors)
    _write(tmp / "a" / "new.wav", 1234, 4.0, seed=9)
    drive(iter_ingest(lib, [tmp / "a"], jobs=1))
    report = drive(iter_embed(lib, model="m"))
    assert (report.computed, report.kept, report.dropped) == (1, 8, 0)
    again = load_embeddings(lib, "m")
    assert len(again.ids) == 9 and np.array_equal(np.asarray(again.vectors)[:8], first)
    lib.set_segment_config(lib.segment_config().replace(hop_s=1.5), __import__(
        "musicemb_core.audio.segment", fromlist=["window_starts"]).window_starts)
    report = drive(iter_embed(lib, model="m"))
    assert report.dropped == 9 and report.computed == len(lib.segments()["id"])  # re-cut: all ids new


def test_embeddings_overwritten_in_place_are_damaged_and_recomputed_not_kept(lib_with_model):
    """Stored ids or vectors overwritten in place keep their size, which was all that was checked: the ids were
    read as they were, and the next embed kept the damaged vectors for good."""
    from musicemb_core.data import layout
    from musicemb_core.stored_vectors import DamagedEmbeddings

    lib, _ = lib_with_model
    drive(iter_embed(lib, model="m"))
    first = np.array(load_embeddings(lib, "m").vectors)
    gen = layout.embeddings(lib, "m").current()
    ids = np.load(gen / "ids.npy")
    np.save(gen / "ids.npy", ids[::-1])  # the same size, the vectors given to other segments
    with pytest.raises(DamagedEmbeddings, match=r"ids\.npy: damaged \(checksum differs\).*`musicemb embed`"):
        load_embeddings(lib, "m")
    np.save(gen / "ids.npy", ids)
    vectors = gen / "vectors.npy"
    data = vectors.read_bytes()
    vectors.write_bytes(data[:-96] + bytes(96))  # the last vector zeroed
    report = drive(iter_embed(lib, model="m"))
    assert (report.computed, report.kept) == (8, 0)
    assert np.allclose(load_embeddings(lib, "m").vectors, first, atol=1e-5)


def test_cancel_keeps_what_was_embedded(lib_with_model):
    lib, _ = lib_with_model
    token = CancelToken()

    def stop(ev):
        if ev.done == 2:
            token.cancel()
    report = drive(iter_embed(lib, model="m", cancel=token), stop)
    assert report.cancelled and report.computed == 4  # two tracks of two segments each
    assert len(load_embeddings(lib, "m").ids) == 4
    report = drive(iter_embed(lib, model="m"))
    assert (report.computed, report.kept) == (4, 4)


def test_a_track_the_model_gives_nan_for_is_failed_not_stored(lib_with_model, monkeypatch):
    """NaN vectors were stored like any others: every later search, map and evaluation of the library then broke.
    Now that track is listed as failed, naming the model, and the rest is embedded."""
    lib, _ = lib_with_model
    broken = lib.tracks()[2]
    y, _ = load(broken.path, sr=SR)
    call = Embedder.__call__

    def overflowing(self, clips):  # the model overflows on that track's clips (cut at whole seconds)
        n = clips.shape[-1]
        if any(np.allclose(clips[0], y[a:a + n], atol=1e-6) for a in range(0, len(y) - n + 1, SR)):
            return np.full((len(clips), 24), np.nan, np.float32)
        return call(self, clips)
    monkeypatch.setattr(Embedder, "__call__", overflowing)
    report = drive(iter_embed(lib, model="m"))
    assert report.failed == [(broken.path, "'m' gives NaN or infinite values for it (its weights are damaged, or "
                                           "it overflowed)")]
    emb, seg = load_embeddings(lib, "m"), lib.segments()
    assert report.computed == 6 and np.isfinite(np.asarray(emb.vectors)).all()
    assert emb.ids.tolist() == seg["id"][seg["track_id"] != broken.id].tolist()


def test_retrained_model_recomputes_everything(lib_with_model):
    lib, _ = lib_with_model
    drive(iter_embed(lib, model="m"))
    drive(iter_fit(lib, name="m", train=TrainConfig(strategy="contrastive", epochs=1, batch_size=4, seed=1),
                   model=ModelConfig(width=8, dim=24)))
    report = drive(iter_embed(lib, model="m"))
    assert report.computed == 8 and report.kept == 0


def test_unknown_model_is_a_clear_error(lib_with_model):
    from musicemb_core.common.errors import ConfigError

    lib, _ = lib_with_model
    with pytest.raises(ConfigError, match="no model 'nope'.*built-in: default, similarity; this library's: m"):
        drive(iter_embed(lib, model="nope"))


def test_default_model_is_shipped_small_and_safe():
    folder = default_model_dir()
    assert (folder / "model.safetensors").exists(), "resources/models/default is missing"
    assert (folder / "model.safetensors").stat().st_size < 15e6
    embedder = Embedder(folder)
    assert embedder.info.strategy == "contrastive" and embedder.sr == 16000
    v = embedder(np.zeros((2, int(embedder.window_s * embedder.sr)), np.float32))
    assert v.shape == (2, embedder.info.model.dim) and np.isfinite(v).all()
