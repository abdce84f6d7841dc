"""The numpy onset envelope, pitch-class filter and beat tracker give librosa's results (they replaced it)."""

import librosa
import numpy as np
import pytest

from musicemb_core.data.synthesis import render_song
from musicemb_core.features import onsets
from musicemb_core.features import tempo_key as tk


@pytest.fixture(scope="module", params=["rock", "folk", "ambient"])
def song(request):
    return render_song(request.param, seed=7, duration_s=20.0, sr=tk.SR).astype(np.float32)


def test_chroma_filter_is_librosas():
    np.testing.assert_allclose(onsets.chroma_filter(tk.SR, 1024), librosa.filters.chroma(sr=tk.SR, n_fft=1024,
                                                                                          tuning=0.0), atol=1e-6)


def test_spectrogram_and_onset_envelope_are_librosas(song):
    S = tk.spectrogram(song)
    ref = np.abs(librosa.stft(song, n_fft=1024, hop_length=tk.HOP))
    assert S.shape == ref.shape
    assert np.abs(S - ref).max() < 1e-5 * ref.max()
    mel = librosa.feature.melspectrogram(S=ref ** 2, sr=tk.SR, n_mels=64, fmax=tk.SR / 2)
    env_ref = librosa.onset.onset_strength(S=librosa.power_to_db(mel, ref=np.max), sr=tk.SR, hop_length=tk.HOP)
    env = tk.onset_envelope(None, S=S)
    assert env.shape == env_ref.shape
    assert np.abs(env - env_ref).max() < 1e-3 * env_ref.max()


@pytest.mark.parametrize("bpm", [90.0, 128.0, 174.0])
def test_beat_tracker_finds_librosas_beats(song, bpm):
    env = tk.onset_envelope(song)
    _, ref = librosa.beat.beat_track(onset_envelope=env, sr=tk.SR, hop_length=tk.HOP, bpm=bpm, units="frames")
    np.testing.assert_array_equal(onsets.beat_track(env, bpm, tk.SR / tk.HOP), ref)


def test_beats_of_a_click_track_are_its_clicks():
    fps = tk.SR / tk.HOP
    env = np.zeros(int(30 * fps), np.float32)
    clicks = np.round(np.arange(1.0, 29.0, 0.5) * fps).astype(int)  # 120 BPM
    env[clicks] = 1.0
    beats = onsets.beat_track(env, 120.0, fps)
    assert len(beats) >= len(clicks) - 2
    assert np.isin(beats, clicks).all()
    assert len(onsets.beat_track(np.zeros(500, np.float32), 120.0, fps)) == 0
