"""Fault judging in context: fades, quiet intros and a track's silent tail are not dead, edge silence is no
dropout, recording faults last (a breakdown, a noise sweep, a percussive passage or a sample-exact loop is
music), and thresholds follow the library's typical track."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import signal

from musicemb_core.analysis import fault_judge as J
from musicemb_core.analysis import faults as F
from musicemb_core.data.synthesis import render_song

SR = 22050
SEG = 3 * SR


def measures(y: np.ndarray) -> tuple[list[dict], np.ndarray]:
    y = np.atleast_2d(y)
    starts = np.arange(0, y.shape[1] - SEG + 1, SEG)
    return [F.measure(y[:, a:a + SEG], SR) for a in starts], starts / SR


def found(y: np.ndarray, **kw) -> list[Counter]:
    ms, starts = measures(y)
    return [Counter(f.kind for f in seg) for seg in J.judge(ms, starts=starts, **kw)]


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return render_song("rock", seed=21, duration_s=30.0, sr=SR).astype(np.float64)


def test_fades_and_quiet_intro_are_not_dead(song):
    n = len(song)
    y = song * np.r_[np.linspace(0, 1, 6 * SR), np.ones(n - 12 * SR), np.linspace(1, 0, 6 * SR)] ** 4
    y[:3 * SR] *= 10 ** (-50 / 20)  # an intro 50 dB down, under the dead threshold
    assert sum(found(y), Counter())["dead"] == 0
    # the same quiet segment inside the track is not dead either (a quiet passage), but digital silence is
    inner = song.copy()
    inner[12 * SR:15 * SR] *= 10 ** (-50 / 20)
    assert sum(found(inner), Counter())["dead"] == 0
    inner[12 * SR:15 * SR] = 0.0
    res = found(inner)
    assert res[4]["dead"] == 1 and sum(res, Counter())["dead"] == 1


def test_a_dead_recording_is_dead_throughout(song):
    quiet = song / np.sqrt(np.mean(song ** 2)) * 10 ** (-62 / 20)
    res = found(quiet)
    assert all(r == Counter({"dead": 1}) for r in res)


def test_a_track_that_ends_early_in_silence_is_not_dead(song):
    y = song.copy()
    y[9 * SR:] = 0.0  # a short cue, then digital silence to the end of the file: most of it silent
    assert sum(found(y), Counter())["dead"] == 0


def test_silence_at_the_track_edges_is_no_dropout(song):
    y = song.copy()
    y[:int(0.3 * SR)] = 0.0  # a silent lead-in, then the music starts abruptly
    y[-int(0.2 * SR):] = 0.0
    assert sum(found(y), Counter())["dropouts"] == 0
    y[int(10.2 * SR):int(10.5 * SR)] = 0.0  # the same gap inside the track is a dropout
    res = found(y)
    assert res[3]["dropouts"] == 1 and sum(res, Counter())["dropouts"] == 1


def _clicks(y: np.ndarray, rate: float, rng: np.random.Generator, a: int = 0, b: int | None = None) -> np.ndarray:
    y = y.copy()
    b = b or len(y)
    for p in rng.integers(a, b - 30, int(rate * (b - a) / SR)):
        y[p:p + 8] += rng.choice([-1, 1]) * 0.5 * np.exp(-np.arange(8) / 2)
    return np.clip(y, -1, 1)


def test_crackle_must_be_steady_not_one_burst(song):
    rng = np.random.default_rng(3)
    burst = _clicks(song, 2.0, rng, 12 * SR, 15 * SR)  # 6 clicks in one segment: a burst, not a worn record
    assert sum(found(burst), Counter())["crackle"] == 0
    steady = _clicks(song, 4.0, rng)
    assert sum(found(steady), Counter())["crackle"] >= 8


@pytest.fixture(scope="module")
def minute() -> np.ndarray:
    return render_song("rock", seed=22, duration_s=60.0, sr=SR).astype(np.float64)


def test_crackle_must_be_steady_not_a_percussive_passage(minute):
    rng = np.random.default_rng(4)
    passage = _clicks(minute, 10.0, rng, 24 * SR, 36 * SR)  # 12 s of dense hits in a minute: bursts
    ms, starts = measures(passage)
    v = J.track_values(ms, starts=starts)
    assert v["click_rate"].max() >= F.THRESHOLDS["crackle"]  # the pooled rate alone would flag it
    assert sum(found(passage), Counter())["crackle"] == 0
    steady = _clicks(minute, 4.0, rng)
    assert sum(found(steady), Counter())["crackle"] >= 16


def _white(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(len(x))
    return w * np.sqrt(np.mean(x ** 2) / np.mean(w ** 2)) * 10 ** (-snr_db / 20)


def test_noise_must_last_and_lie_over_a_signal(minute):
    sweep = minute.copy()
    sweep[24 * SR:30 * SR] += _white(minute, -3.0)[24 * SR:30 * SR]  # a 6 s noise riser in the music
    ms, _ = measures(sweep)
    assert min(m["snr_db"] for m in ms) <= F.THRESHOLDS["noise"]
    assert sum(found(sweep), Counter())["noise"] == 0
    assert sum(found(minute + _white(minute, 0.0)), Counter())["noise"] >= 16  # hiss over the whole recording
    wind = signal.sosfilt(signal.butter(4, 2000, "high", fs=SR, output="sos"), _white(minute, 0.0))
    assert sum(found(wind), Counter())["noise"] == 0  # a noise sound alone (no music under it) is no fault


def test_a_short_breakdown_is_not_muffled(minute):
    y = minute.copy()
    lowpass = signal.sosfilt(signal.butter(8, 600, fs=SR, output="sos"), minute)
    y[24 * SR:30 * SR] = lowpass[24 * SR:30 * SR]  # a 6 s filter sweep or bass-only break
    ms, _ = measures(y)
    assert min(m["hf_db"] for m in ms) <= F.NOMINAL_HF_DB - F.THRESHOLDS["muffled"]
    assert sum(found(y), Counter())["muffled"] == 0


def test_a_loop_repeating_ten_times_a_second_is_no_hum(song):
    rng = np.random.default_rng(0)
    period = np.zeros(SR // 10)
    period[:300] = rng.standard_normal(300) * np.exp(-np.arange(300) / 60)  # a sample-exact 10 Hz loop
    loop = np.tile(period, len(song) // len(period) + 1)[:len(song)]
    y = song + loop * np.sqrt(np.mean(song ** 2) / np.mean(loop ** 2)) * 10 ** (-10 / 20)
    ms, _ = measures(y)
    combs = np.array([np.sort(np.nan_to_num(m["hum_prom"][:2], nan=-np.inf), axis=1)[:, -2] for m in ms])
    assert (combs.min(axis=1) >= F.THRESHOLDS["hum"]).sum() >= 3  # lines on both the 50 and the 60 Hz grid
    assert sum(found(y), Counter())["hum"] == 0


def test_marginal_dc_offset_must_last_a_strong_one_need_not(song):
    y = song * 0.8
    y[3 * SR:6 * SR] += 0.06  # one segment just over the threshold: a swell, not the recording chain
    assert sum(found(y), Counter())["dc_offset"] == 0
    y[3 * SR:6 * SR] += 0.1  # 0.16: three times the threshold
    assert found(y)[1]["dc_offset"] == 1


def _library(snr_db: float | None, n: int = 10) -> list[dict]:
    out = []
    for seed in range(n):
        x = render_song("folk", seed=100 + seed, duration_s=12.0, sr=SR).astype(np.float64)
        if snr_db is not None:
            w = np.random.default_rng(seed).standard_normal(len(x))
            x = x + w * np.sqrt(np.mean(x ** 2) / np.mean(w ** 2)) * 10 ** (-snr_db / 20)
        ms, starts = measures(x)
        out.append(J.track_values(ms, starts=starts))
    return out


def test_thresholds_follow_the_library():
    hissy = _library(3.0, n=9)
    clean = _library(None)
    noisy = sum(Counter(f.kind for seg in J.decide(v) for f in seg)["noise"] for v in hissy)
    assert noisy >= 9  # judged alone (or in a library of clean music) a 3 dB SNR track is noisy
    in_clean = J.LibraryReference.fit(clean + hissy[:1])
    assert in_clean.threshold("snr_db", F.THRESHOLDS["noise"]) == F.THRESHOLDS["noise"]
    assert Counter(f.kind for seg in J.decide(hissy[0], reference=in_clean) for f in seg)["noise"] >= 1
    in_hissy = J.LibraryReference.fit(hissy)  # a library of hissy recordings: its typical track is no fault
    assert in_hissy.threshold("snr_db", F.THRESHOLDS["noise"]) < F.THRESHOLDS["noise"] - 5
    assert not any(f.kind == "noise" for v in hissy for seg in J.decide(v, reference=in_hissy) for f in seg)
    worse = _library(-12.0, n=1)[0]  # ... but a far noisier one still stands out
    res = J.decide(worse, reference=in_hissy)
    assert any(f.kind == "noise" and "typical track" in f.reason for seg in res for f in seg)


def test_small_libraries_keep_fixed_thresholds():
    ref = J.LibraryReference.fit(_library(3.0, n=J.MIN_LIBRARY_TRACKS - 1))
    assert ref.threshold("snr_db", 5.0) == 5.0 and ref.stats == {}


def test_a_quiet_field_recording_with_a_loud_event_is_not_dead():
    """A minute of -70 dBFS ambience with one call at -18 dBFS (a field recording): every segment was 'dead',
    the call included, 'the recording is near-silent (-70 dBFS RMS in its loudest passages)'."""
    rng = np.random.default_rng(3)
    y = rng.standard_normal(60 * SR) * 10 ** (-70 / 20)
    t = np.arange(3 * SR) / SR
    y[30 * SR:33 * SR] += np.sqrt(2) * 10 ** (-18 / 20) * np.sin(2 * np.pi * (2000 + 500 * np.sin(8 * t)) * t)
    assert sum(found(y), Counter())["dead"] == 0
    y[30 * SR:33 * SR] *= 10 ** (-40 / 20)  # the call 40 dB down, at -58 dBFS: nothing but a near-silent recording
    res = found(y)
    assert all(r["dead"] == 1 for r in res)
    ms, starts = measures(y)
    reason = J.judge(ms, starts=starts)[0][0].reason
    assert reason.startswith("dead: the recording is near-silent (90 % of it at or below -70 dBFS RMS, its loudest "
                             "segment -5")
