"""Import + embed in one decode (``iter_ingest_embed``): the same segments and vectors as an import followed by
``embed``; a bad file fails alone; cancelled, interrupted and repeated imports leave a consistent library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import inference
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.stored_vectors import builtin_models, load_embeddings, load_track_vectors
from musicemb_core.workflows import ingest_embed
from musicemb_core.workflows.ingest_embed import iter_ingest_embed

SEG = SegmentConfig(window_s=3.0, hop_s=3.0)


def _music(folder, n=4):
    """``n`` files of varied formats: 16 kHz mono WAV, 44.1 kHz stereo FLAC, Ogg Vorbis (decoded by PyAV)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        sr = (16000, 44100, 22050)[i % 3]
        rng = np.random.default_rng(i)
        t = np.arange(int((6.5 + i) * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (220 + 90 * i) * t * (1 + 0.05 * np.sin(t))) + 0.02 * rng.standard_normal(len(t))
        if i % 3 == 1:
            y = np.stack([y, np.roll(y, 50)], axis=1)
        ext, fmt = [(".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG")][i % 3]
        sf.write(folder / f"t{i}{ext}", y.astype(np.float32), sr, format=fmt)
        out.append(folder / f"t{i}{ext}")
    return out


def _two_pass(tmp_path, folder) -> Library:
    lib = Library(tmp_path / "two", create=True)
    drive(iter_ingest(lib, [folder], segments=SEG, jobs=1))
    drive(iter_embed(lib))
    return lib


def _by_segment(lib: Library, model: str) -> dict[tuple[str, float], np.ndarray]:
    """{(track path, segment start): vector} of ``model``, checking the vectors cover every segment."""
    seg, emb = lib.segments(), load_embeddings(lib, model)
    assert np.array_equal(emb.ids, seg["id"])
    path = {t.id: t.path for t in lib.tracks()}
    keys = [(path[t], s) for t, s in zip(seg["track_id"].tolist(), seg["start_s"].tolist(), strict=True)]
    return dict(zip(keys, np.asarray(emb.vectors), strict=True))


def _same_vectors(a: Library, b: Library, *, atol: float = 1e-5) -> None:
    """Same segments (the same cut) and vectors of both spaces, track vectors too."""
    for m in builtin_models():
        va, vb = _by_segment(a, m), _by_segment(b, m)
        assert va.keys() == vb.keys() and len(va) > 0
        assert max(np.abs(va[k] - vb[k]).max() for k in va) < atol, m
    assert np.abs(load_track_vectors(a)[1] - load_track_vectors(b)[1]).max() < atol


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_pass_equals_import_then_embed_and_a_bad_file_fails_alone(tmp_path, jobs):
    d = tmp_path / "music"
    _music(d)
    (d / "corrupt.ogg").write_bytes(b"OggS" + bytes(range(256)) * 8)
    with Library(tmp_path / "one", create=True) as lib, _two_pass(tmp_path, d) as two:
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=jobs))
        assert r.ingest.added == 4 and [p.rsplit("/", 1)[1] for p, _ in r.ingest.failed] == ["corrupt.ogg"]
        assert r.embed.failed == [] and not r.embed.cancelled
        assert r.embed.computed == 2 * len(lib.segments()["id"])  # both spaces, every segment
        _same_vectors(lib, two)


def test_vectors_come_from_the_import_decode_and_a_failed_tap_falls_back(tmp_path, monkeypatch):
    d = tmp_path / "music"
    files = _music(d, 3)
    decoded = []
    real_load = inference.load

    def spy(path, **kw):  # what the embed step decodes again: only what the import did not embed
        decoded.append(Path(path).name)
        return real_load(path, **kw)

    with Library(tmp_path / "one", create=True) as lib, _two_pass(tmp_path, d) as two:
        monkeypatch.setattr(inference, "load", spy)
        drive(iter_ingest_embed(lib, [files[0]], segments=SEG, jobs=1))
        assert decoded == []
        real_result, calls = ingest_embed._EmbedRun.result, []

        def flaky(self, starts):
            calls.append(starts)
            if len(calls) == 1:  # the first file this import decodes (t1.flac): its vectors fail in the import
                raise RuntimeError("boom")
            return real_result(self, starts)

        monkeypatch.setattr(ingest_embed._EmbedRun, "result", flaky)
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1))
        assert r.ingest.added == 2 and r.ingest.unchanged == 1 and r.ingest.failed == []
        assert decoded == ["t1.flac"]  # its vectors computed from a second decode
        _same_vectors(lib, two)
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1))  # nothing new: nothing decoded or computed
        assert r.ingest.unchanged == 3 and r.embed.computed == 0 and decoded == ["t1.flac"]


def test_tracks_imported_without_vectors_are_embedded_by_the_next_one_pass(tmp_path):
    d = tmp_path / "music"
    _music(d, 3)
    with Library(tmp_path / "one", create=True) as lib, _two_pass(tmp_path, d) as two:
        drive(iter_ingest(lib, [d], segments=SEG, jobs=1))
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1))
        assert r.ingest.unchanged == 3 and r.embed.computed == 2 * len(lib.segments()["id"])
        _same_vectors(lib, two)


def _consistent(lib: Library) -> None:
    """Catalogue intact; the current vectors of both spaces are exactly those of catalogued segments."""
    assert lib.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = lib.segments()["id"]
    for m in builtin_models():
        emb = load_embeddings(lib, m)
        assert np.isin(emb.ids, ids).all() and len(emb.ids) == len(np.unique(emb.ids))


@pytest.mark.parametrize("jobs", [1, 2])
def test_cancelled_one_pass_keeps_what_it_imported_then_resumes(tmp_path, jobs):
    d = tmp_path / "music"
    _music(d, 5)
    token = CancelToken()
    with Library(tmp_path / "one", create=True) as lib, _two_pass(tmp_path, d) as two:
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=jobs, cancel=token),
                  lambda e: e.stage == "ingest" and e.done == 2 and token.cancel())
        assert r.ingest.cancelled and r.ingest.added == 2
        _consistent(lib)
        assert len(load_embeddings(lib, "default").ids) == len(lib.segments()["id"])  # the 2 files' vectors kept
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=jobs))
        assert r.ingest.added == 3 and r.ingest.unchanged == 2 and not r.ingest.cancelled
        _same_vectors(lib, two)


def test_an_import_interrupted_mid_way_publishes_no_vectors_and_the_next_run_completes(tmp_path):
    d = tmp_path / "music"
    _music(d, 4)

    def crash(e):
        if e.stage == "ingest" and e.done == 2:
            raise KeyboardInterrupt

    with Library(tmp_path / "one", create=True) as lib, _two_pass(tmp_path, d) as two:
        with pytest.raises(KeyboardInterrupt):
            drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1), crash)
        assert len(lib.tracks()) == 2 and not (lib.root / "embeddings").exists()
        drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1))
        _consistent(lib)
        _same_vectors(lib, two)


def test_a_file_the_model_gives_nan_for_fails_as_in_embed(tmp_path, monkeypatch):
    """The import's vectors were stored without the check ``embed`` makes: NaN vectors broke every later search.
    Now the file is listed as failed by the embed step, naming the model, and nothing of it is stored."""
    d = tmp_path / "music"
    _music(d, 2)
    t = np.arange(7 * 16000) / 16000
    sf.write(d / "loud.wav", (0.9 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 16000)
    call = inference.Embedder.__call__

    def overflowing(self, clips):  # the model overflows on the loud file's clips only
        out = call(self, clips)
        return np.where(np.abs(clips).max(axis=1, keepdims=True) > 0.6, np.inf, out).astype(np.float32)

    monkeypatch.setattr(inference.Embedder, "__call__", overflowing)
    with Library(tmp_path / "one", create=True) as lib:
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1))
        loud = lib.track_by_path(str(d / "loud.wav"))
        assert r.ingest.added == 3 and r.embed.failed == [
            (loud.path, "'default' gives NaN or infinite values for it (its weights are damaged, or it overflowed)")]
        seg = lib.segments()
        for m in builtin_models():
            emb = load_embeddings(lib, m)
            assert np.isfinite(np.asarray(emb.vectors)).all()
            assert emb.ids.tolist() == seg["id"][seg["track_id"] != loud.id].tolist()
