"""The top voice of a mix (a second stored melody for query by humming) and its place in the QBH index."""

from __future__ import annotations

import numpy as np

from musicemb_core.search.qbh import MelodyStore, dense_melody
from musicemb_core.search.top_voice import top_voice, top_voice_chroma

SR = 16000
HOP = 640


def _tone(midi: float, n: int, *, amp: float = 0.2) -> np.ndarray:
    """An organ-like harmonic tone (8 partials, 1/h amplitudes)."""
    t = np.arange(n) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(amp / h * np.sin(2 * np.pi * h * f * t) for h in range(1, 9) if h * f < 0.45 * SR)


def _four_voices(seconds_per_note: float = 0.5):
    """A four-part texture in one timbre: a soprano walking a tune over alto, tenor and bass that move too
    (eighth notes in the alto), all at the same level. Returns (audio, the soprano's pitch per note)."""
    soprano = [72, 74, 76, 77, 76, 74, 72, 71, 72, 76, 79, 77]
    bass = [48, 43, 48, 41, 48, 43, 45, 43, 48, 48, 43, 41]
    tenor = [55, 59, 60, 60, 60, 59, 57, 55, 55, 60, 59, 57]
    alto = [64, 65, 67, 69, 67, 65, 64, 62, 64, 67, 67, 69]
    n = int(seconds_per_note * SR)
    y = np.zeros(n * len(soprano))
    for k in range(len(soprano)):
        seg = slice(k * n, (k + 1) * n)
        y[seg] += _tone(soprano[k], n) + _tone(tenor[k], n) + _tone(bass[k], n)
        half = n // 2  # the alto moves in eighths: chord tone, then a passing tone a step up
        y[k * n:k * n + half] += _tone(alto[k], half)
        y[k * n + half:(k + 1) * n] += _tone(alto[k] + 2, n - half)
    return y.astype(np.float32), np.array(soprano)


def test_top_voice_follows_the_soprano_over_moving_lower_voices():
    y, soprano = _four_voices()
    m = top_voice(y, SR, hop_length=HOP)
    per_note = int(0.5 * SR / HOP)
    hits = []
    for k, p in enumerate(soprano):
        mid = m[k * per_note + 3:(k + 1) * per_note - 3]  # away from the note changes
        hits += list(np.rint(mid[np.isfinite(mid)]) % 12 == p % 12)
    assert np.mean(hits) > 0.8, np.mean(hits)
    silent = top_voice(np.zeros(SR, np.float32), SR, hop_length=HOP)
    assert np.isnan(silent).all()


def test_top_voice_chroma_and_its_place_beside_the_stored_melody():
    y, soprano = _four_voices()
    n_frames = len(y) // HOP // 2
    T = top_voice_chroma(y, SR, hop_length=HOP, pool=2, n_frames=n_frames)
    assert T.shape == (n_frames, 12) and set(np.unique(T)) <= {0.0, 1.0} and (T.sum(1) <= 2).all()  # 2: a change
    assert np.argmax(T[3]) == soprano[0] % 12
    bins = np.zeros((n_frames, 3), np.uint8)
    probs = np.zeros((n_frames, 3), np.uint8)
    store = MelodyStore(np.array([7]), np.array([0, n_frames]), bins, probs,
                        np.argmax(T, 1)[:, None].astype(np.uint8), (T.max(1)[:, None] * 255).astype(np.uint8))
    np.testing.assert_array_equal(store.top_chroma(7), dense_melody(store.top_bins, store.top_probs))
    assert np.argmax(store.top_chroma(7)[3]) == soprano[0] % 12
    assert store.coarse.C_.max() == 255  # the coarse pass sees the top voice too
    assert MelodyStore(np.array([7]), np.array([0, n_frames]), bins, probs).top_chroma(7) is None


def test_the_voice_search_reads_only_the_harmonic_bins_yet_finds_what_the_whole_spectrum_gives():
    """The search takes each harmonic bin's 3-bin maximum at the bins harmonics fall on only (2.4x faster than
    filtering the whole spectrum); pitches and saliences must stay those of the whole-spectrum maximum filter,
    written out here as it was."""
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    from musicemb_core.search.top_voice import _cancel_voices

    def reference(Y, sr, n_fft, lo, hi, harmonics, voices):
        T, n_bins = Y.shape
        cands = np.arange(lo, hi + 0.01, 0.5)
        f0 = 440.0 * 2.0 ** ((cands - 69.0) / 12.0)
        hb = np.rint(np.outer(f0, np.arange(1, harmonics + 1)) * n_fft / sr).astype(np.int64)
        w = ((f0[:, None] + 52.0) / (np.outer(f0, np.arange(1, harmonics + 1)) + 320.0)).astype(Y.dtype)
        w[hb >= n_bins - 3] = 0.0
        hb = np.minimum(hb, n_bins - 3)
        found, sal, rows = np.full((T, voices), np.nan), np.zeros((T, voices)), np.arange(T)[:, None]
        for k in range(voices):
            Ym = maximum_filter1d(Y, 3, axis=1)
            S = np.einsum("tch,ch->tc", Ym[:, hb], w)
            c = S.argmax(axis=1)
            found[:, k], sal[:, k] = cands[c], S[rows[:, 0], c]
            b = hb[c]
            a = Ym[rows, b]
            cut = np.minimum(a, uniform_filter1d(a, 3, axis=1, mode="nearest"))
            for j in range(-2, 3):
                idx = np.clip(b + j, 0, n_bins - 1)
                Y[rows, idx] = np.maximum(Y[rows, idx] - cut, 0.0)
        return found, sal

    rng = np.random.default_rng(3)
    Y = (rng.random((40, 2049)) ** 8).astype(np.float32)  # peaky spectra, partials everywhere
    for args in ((16000, 4096, 45.0, 92.0, 10, 4), (22050, 2048, 40.0, 100.0, 6, 3)):
        Yb = Y[:, :args[1] // 2 + 1]
        got, want = _cancel_voices(Yb.copy(), *args), reference(Yb.copy(), *args)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
