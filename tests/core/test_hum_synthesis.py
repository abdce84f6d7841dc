"""Melody collections (training/evaluation split enforced), synthetic hums and songs rendered from melodies."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.common.errors import ConfigError
from musicemb_core.data import melodies as mel
from musicemb_core.data.hum_synthesis import melody_notes, render_hum, render_melody_song
from musicemb_core.features.pitch import pitch_contour

SR = 16000


def _melody(pitches=(60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 72, 60), beats=1.0, rest_after=3):
    n = len(pitches)
    onset = np.arange(n, dtype=np.float32) * beats
    onset[rest_after + 1:] += 1.0  # a one-beat rest
    return mel.Melody("test#0", "scale", np.array(pitches, np.int16), onset, np.full(n, beats, np.float32))


@pytest.mark.parametrize("name", [*mel.RESERVED_COLLECTIONS, "essenFolksong/china", "bach/bwv1.6"])
def test_reserved_collections_are_refused_for_training(name):
    with pytest.raises(ConfigError, match="reserved for evaluation"):
        mel.check_training([name])
    with pytest.raises(ConfigError, match="reserved"):
        next(mel.iter_load_collection(name, purpose="train"))


def test_training_collections_and_files():
    assert mel.check_training(mel.TRAINING_COLLECTIONS) == list(mel.TRAINING_COLLECTIONS)
    with pytest.raises(ConfigError, match="unknown training collection"):
        mel.check_training(["nottingham-dataset"])
    assert mel.is_reserved("essenFolksong/han1.abc") and mel.is_reserved("oneills1850/0001-0050.abc")
    assert mel.is_reserved("essenFolksong/lot.abc") and mel.is_reserved("bach/bwv10.7.mxl")
    assert not mel.is_reserved("essenFolksong/erk10.abc") and not mel.is_reserved("ryansMammoth/AcaciaReel.abc")
    files = mel.corpus_files("essenFolksong/erk")
    assert files and all(f.startswith("essenFolksong/erk") for f in files)
    assert not any(mel.is_reserved(f) for c in mel.TRAINING_COLLECTIONS if c != "generated"
                   for f in mel.corpus_files(c)[:50])


def test_parse_file_and_cache_round_trip(tmp_path):
    rel = "ryansMammoth/AcaciaReel.abc"
    tunes = mel.parse_file(mel.corpus_root() / rel, relpath=rel)
    m = tunes[0]
    assert m.name == rel + "#0" and "Acacia" in m.title and len(m) > 40
    assert np.all(np.diff(m.onset) > 0) and np.all(m.duration > 0) and m.onset[0] == 0
    assert 50 < np.median(m.pitch) < 90
    path = tmp_path / "c.npz"
    mel._save(path, tunes + mel.generated_melodies(2))
    back = mel._load(path)
    assert [b.name for b in back] == [m.name, "generated#0", "generated#1"]
    np.testing.assert_array_equal(back[0].pitch, m.pitch)
    np.testing.assert_allclose(back[0].onset, m.onset)


def test_sequence_keeps_rests_and_timeline_skips_them():
    m = _melody()
    seq = m.as_sequence(transpose=2)
    assert len(seq) == len(m) + 1 and seq[4] == (-1, 1.0) and seq[0] == (62, 1.0)
    y, timeline, style = render_melody_song(m, style="folk", seed=1, sr=SR)
    assert style == "folk" and len(timeline) == len(m)  # the whole melody once, rests left out
    np.testing.assert_array_equal(timeline[:, 3], np.arange(len(m)))
    intervals = np.diff(timeline[:, 2])
    np.testing.assert_array_equal(intervals, np.diff(m.pitch))  # played in another key, same tune
    assert abs(len(y) / SR - (timeline[-1, 0] + timeline[-1, 1] + 0.5)) < 0.05


def test_hum_follows_the_melody_in_its_own_key_and_tempo():
    notes = melody_notes(_melody(), bpm=100)
    h = render_hum(notes, seed=3, sr=SR, tempo=1.25, register=50.0, syllable="la")
    assert h.y.dtype == np.float32 and 0.1 < np.abs(h.y).max() <= 1.0
    span_meant = h.notes[-1, 0] - h.notes[0, 0]
    assert abs(span_meant - (notes[-1, 0] - notes[0, 0]) / 1.25) < 0.15 * span_meant
    np.testing.assert_allclose(np.diff(h.notes[:, 2]), np.diff(notes[:, 2]))  # intervals kept
    assert abs(np.median(h.notes[:, 2]) - 50.0) < 1e-9
    c = pitch_contour(h.y, SR)
    errs = []
    for on, dur, p in h.notes:
        mid = (c.times > on + 0.3 * dur) & (c.times < on + 0.7 * dur) & c.voiced
        if mid.any():
            errs.append(np.median(c.midi[mid]) - p)
    errs = np.abs(np.array(errs))
    assert len(errs) >= 0.8 * len(notes) and np.median(errs) < 0.6  # intonation errors, not wrong tunes


def test_hums_are_reproducible_and_varied():
    notes = melody_notes(_melody(), bpm=110)
    a, b, c = (render_hum(notes, seed=s, sr=SR) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.y, b.y)
    assert a.params != c.params and not np.array_equal(a.y[:1000], c.y[:1000])
    for k in ("tempo", "transpose", "intonation", "noise_db", "rt60"):
        assert k in a.params


def test_syllables_have_their_own_timbre():
    notes = melody_notes(_melody(), bpm=90)

    def centroid(y):
        spec = np.abs(np.fft.rfft(y))
        f = np.fft.rfftfreq(len(y), 1 / SR)
        return float((spec * f).sum() / spec.sum())

    hums = {s: render_hum(notes, seed=2, sr=SR, syllable=s, register=52.0, noise_db=-60.0).y
            for s in ("mmm", "la", "da", "dum")}
    assert centroid(hums["mmm"]) < 0.7 * centroid(hums["la"])
    def openness(y):  # energy of 500-1200 Hz (the "a" formants) over 200-500 Hz ("m", "u")
        spec, f = np.abs(np.fft.rfft(y)), np.fft.rfftfreq(len(y), 1 / SR)
        return spec[(f > 500) & (f < 1200)].sum() / spec[(f > 200) & (f < 500)].sum()
    openness = {k: openness(y) for k, y in hums.items()}
    assert openness["mmm"] < openness["dum"] < 0.5 * openness["da"]  # "u" between the closed "m" and open "a"
    drawn = {render_hum(notes, seed=k, sr=SR).params["syllable"] for k in range(40)}
    assert drawn == {"mmm", "la", "da"}  # "dum" only when asked for (never in training hums)
    with pytest.raises(ValueError, match="syllable"):
        render_hum(notes, seed=2, syllable="ooh")


def test_a_damaged_melody_cache_is_parsed_again_not_a_traceback(tmp_path):
    """Bytes of the cache overwritten in place (same size) raised zlib.error or BadZipFile out of the loader."""
    path = tmp_path / "c.npz"
    mel._save(path, mel.generated_melodies(20))
    data = path.read_bytes()
    for at in (len(data) // 4, len(data) // 2):
        path.write_bytes(data[:at] + b"\x55" * 16 + data[at + 16:])
        assert mel._load(path) is None
