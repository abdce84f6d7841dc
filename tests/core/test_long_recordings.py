"""Hour-long field recordings: decoding holds only its output, ``embed`` decodes one track ahead (not the whole
library), a cancel stops a long file's decode within a block, and a long track's embedding shows progress."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import numpy as np
import soundfile as sf

from musicemb_core.audio import decode
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.stored_vectors import load_embeddings

SR = 16000


def _noise(path, seconds, *, sr=SR, channels=1, seed=0):
    y = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * sr), channels))
    sf.write(path, y.astype(np.float32), sr, subtype="PCM_24")
    return path


def _library(tmp_path, *seconds) -> Library:
    (tmp_path / "a").mkdir()
    for i, s in enumerate(seconds):
        _noise(tmp_path / "a" / f"t{i}.wav", s, seed=i)
    lib = Library(tmp_path / "lib", create=True)
    drive(iter_ingest(lib, [tmp_path / "a"], jobs=1, analyse=False))
    return lib


def _traced_load(path) -> tuple[np.ndarray, int]:
    """``path`` read at 16 kHz, and the peak of the memory traced meanwhile (bytes)."""
    tracemalloc.start()
    try:
        y, sr = decode.load(path, sr=16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sr == 16000
    return y, peak


def test_load_resamples_as_it_decodes_and_holds_only_its_output(tmp_path):
    """A 48 kHz stereo recording read at 16 kHz: the whole file was gathered at 48 kHz, concatenated, checked and
    then resampled (8x the output at the peak: 1.8 GB for an hour). Now each block is downmixed and resampled as
    it comes into one array sized from the header: the output once, little more (a list of blocks joined at the
    end held it twice)."""
    p = _noise(tmp_path / "rec.wav", 60.0, sr=48000, channels=2)
    y, peak = _traced_load(p)
    assert y.shape == (960000,)
    assert peak < 1.5 * y.nbytes, peak / y.nbytes
    ref = decode.resample(sf.read(p, dtype="float32")[0].mean(axis=1, dtype=np.float32), 48000, 16000)
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_embed_decodes_one_track_ahead_not_the_whole_library(tmp_path, monkeypatch):
    """The decoding thread was handed every track at once and ran ahead of the encoders, keeping each decoded
    track in memory: 200 hour-long recordings at 16 kHz, 46 GB."""
    lib = _library(tmp_path, 6, 6, 6, 6, 6)
    load, started = decode.load, []

    def counting(path, **kw):
        started.append(path)
        return load(path, **kw)
    monkeypatch.setattr("musicemb_core.inference.load", counting)
    ahead = []

    def on_event(ev):
        if ev.message.endswith(".wav"):  # a track done
            time.sleep(0.2)  # a slow encoder: the decoding thread has time to run ahead
            ahead.append(len(started) - ev.done)
    report = drive(iter_embed(lib, model="default"), on_event)
    assert report.computed == 10 and len(started) == 5
    assert max(ahead) <= 1, ahead
    lib.close()


def test_cancel_stops_a_long_decode_within_a_block(tmp_path, monkeypatch):
    """Ctrl-C while `embed` decoded a 2-hour FLAC waited for the whole decode (13 s here) before stopping."""
    lib = _library(tmp_path, 1, 60)
    long_path = lib.tracks()[1].path
    token, read = CancelToken(), []
    stream = decode.stream

    def small_blocks(path, **kw):
        for i, block in enumerate(stream(path, **kw, block_frames=4096)):
            if str(path) == long_path:
                read.append(i)
                if i == 3:  # Ctrl-C while the long file is decoded
                    token.cancel()
            yield block
    monkeypatch.setattr(decode, "stream", small_blocks)
    report = drive(iter_embed(lib, model="default", cancel=token))
    assert report.cancelled
    assert len(read) == 4, f"{len(read)} of {60 * SR // 4096 + 1} blocks read"
    lib.close()


def test_a_long_track_shows_progress_between_batches_and_gives_the_same_vectors(tmp_path):
    """A 2-hour track was one event after half a minute of silence (minutes on a slower machine)."""
    lib = _library(tmp_path, 30)
    events = []
    drive(iter_embed(lib, batch_size=4), events.append)
    within = [ev.message.split(": ", 1)[1] for ev in events if ev.done == 0 and "segments" in ev.message
              and ev.message.startswith(lib.tracks()[0].path)]
    assert within == [f"{k} of 20 segments" for k in (4, 8, 10 + 4, 10 + 8)]
    assert events[-1].done == 1
    one_batch = Library(tmp_path / "lib2", create=True)
    drive(iter_ingest(one_batch, [tmp_path / "a"], jobs=1, analyse=False))
    drive(iter_embed(one_batch))
    for model in ("default", "similarity"):
        np.testing.assert_allclose(np.asarray(load_embeddings(lib, model).vectors),
                                   np.asarray(load_embeddings(one_batch, model).vectors), atol=1e-4)
    lib.close()
    one_batch.close()


def test_ctrl_c_during_the_only_file_of_an_ingest_embed_is_a_cancel(tmp_path, monkeypatch):
    """Ctrl-C while `ingest --embed` read its one (2-hour) file: once the file was in, the melody index and the
    landmarks were built too (3 more minutes) and the exit status said all was done. Now the read stops, storing
    nothing of the file, and nothing more runs."""
    from musicemb_core.data import ingest
    from musicemb_core.workflows.ingest_embed import iter_ingest_embed

    (tmp_path / "a").mkdir()
    _noise(tmp_path / "a" / "rec.wav", 9)
    token, probe = CancelToken(), ingest.probe_file

    def interrupted(*args, **kw):
        token.cancel()  # Ctrl-C while the file is read
        return probe(*args, **kw)
    monkeypatch.setattr(ingest, "probe_file", interrupted)
    with Library(tmp_path / "lib", create=True) as lib:
        r = drive(iter_ingest_embed(lib, [tmp_path / "a"], jobs=1, analyse=False, cancel=token))
        assert r.ingest.cancelled and r.ingest.added == 0  # the file unfinished: nothing of it stored
        assert r.embed.computed == 0 and lib.tracks() == []


def test_a_file_whose_header_gives_no_length_is_held_once(tmp_path, monkeypatch):
    """A stream without a length in its header (frames 0): its blocks were gathered in a list and joined at the end,
    holding the recording twice. Now the array grows in place, a quarter at a time."""
    p = _noise(tmp_path / "rec.wav", 60.0, sr=48000, channels=2)
    whole = decode.load(p, sr=16000)[0]
    header = decode.info

    def no_length(path):
        return dataclasses.replace(header(path), frames=0)
    monkeypatch.setattr(decode, "info", no_length)
    y, peak = _traced_load(p)
    np.testing.assert_array_equal(y, whole)
    assert peak < 1.5 * y.nbytes, peak / y.nbytes


def test_a_header_that_claims_too_much_or_too_little_reserves_at_most_the_cap(tmp_path, monkeypatch):
    """The output array is sized from the header, at most MAX_BUFFER samples (a damaged header may claim a year);
    what does not fit is added on, the same samples."""
    p = _noise(tmp_path / "rec.wav", 2.0)
    whole = decode.load(p)[0]
    monkeypatch.setattr(decode, "MAX_BUFFER", 1000)
    assert len(decode.SampleBuffer(10**15).buf) == 1000
    np.testing.assert_array_equal(decode.load(p)[0], whole)
