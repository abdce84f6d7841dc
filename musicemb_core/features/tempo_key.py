"""Tempo (BPM) and key of a whole track, for DJs.

Estimators of each, compared by ``bench/bench_tempo_key.py`` on songs rendered with known tempo and key:

- tempo ``"tempogram"``: the onset-strength envelope's autocorrelation tempogram, averaged over the track, with
  librosa's log-normal tempo prior (``librosa.feature.tempo``), refined by parabolic interpolation;
  ``"beats"``: librosa's dynamic-programming beat tracker, BPM = 60 / median inter-beat interval;
  ``"comb"`` (ours, :func:`comb_tempo`): a comb over the envelope's autocorrelation with a tempo prior.
- key ``"krumhansl"`` (Krumhansl-Kessler probe-tone profiles) and ``"temperley"`` (Temperley's Kostka-Payne
  corpus profiles) correlated with the track's mean chroma; ``"bgate"`` and ``"edma"``: Essentia's
  ``KeyExtractor`` (HPCP, those profiles), where the ``essentia`` wheel is installed.

The defaults (:data:`TEMPO_METHOD`, :data:`KEY_PROFILE`) are the best of each on that benchmark's tune split
(Essentia's ``RhythmExtractor2013`` and ``PercivalBpmEstimator`` were measured there too, and lost to ``comb``).
A track too short or too quiet, or without a steady beat / a clear tonal centre (for Essentia's profiles: a
coarse chroma's correlation with the Temperley profiles), gets no value and a reason.

Import feeds decoded blocks to :class:`Analyser` as it checks the file, so the audio is decoded once.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from musicemb_core.features import onsets
from musicemb_core.features.camelot import NAMES, camelot, key_name, open_key, parse_key_or_none

SR = 11025  # analysis rate: chroma up to 5.5 kHz and onsets need no more
HOP = 256  # onset envelope: 43 frames per second
CHROMA_FFT, CHROMA_HOP = 4096, 2048
MAX_ANALYSIS_S = 480.0  # at most the first 8 minutes are analysed (memory: 21 MB)
MIN_TEMPO_S, MIN_KEY_S = 6.0, 3.0
QUIET_DBFS = -50.0  # RMS of the analysed audio below this: too quiet
TEMPO_METHOD = "comb"
# A change to what the estimates give must bump musicemb_core.data.ingest.ANALYSIS_VERSION (imports re-analyse).
TEMPO_METHODS = ("tempogram", "beats", "comb")
ESSENTIA_PROFILES = ("bgate", "edma")  # Essentia's KeyExtractor on the audio
ESSENTIA_HOP = 8192  # its 4096-sample frames every 0.74 s: 40 % less time than every 4096, same MIREX (tune split)
TEMPO_CONF_MIN = 0.2  # below: "no steady beat"
KEY_CONF_MIN = 0.35  # below: "no clear tonal centre" (chosen on the tune split: 0.3-0.45 tried)
# "comb": log-normal tempo prior (centre, width in octaves) and the fastest tempo read. Chosen by
# bench/tempo_prior.py on the tune splits of both song sets (FluidSynth through FluidR3 and sf_GMbank, and our
# synthesiser): 120 BPM / 1.5 octaves / up to 240 BPM read songs at 175-200 BPM at half their tempo, and songs
# without drums at 105-120 BPM at double
COMB_PRIOR_BPM, COMB_PRIOR_OCTAVES, COMB_MAX_BPM = 140.0, 1.75, 200.0
COMB_POWER = 1  # "comb" correlates envelope ** this (2, accents weighing more, was no better on the tune split)
COMB_MULTIPLES = 8  # "comb" averages the autocorrelation at this many multiples of the period (tune split, always
# answering: 4 -> 8 took Acc1 / Acc2 0.567 / 0.800 -> 0.600 / 0.833; prior centres 90-120 BPM also tried)

PROFILES = {
    "krumhansl": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                  (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    "temperley": ((0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
                  (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330)),
}
# Essentia's bgate: MIREX 0.952 on the tune split against Temperley's 0.888 on our chroma (bench_tempo_key.py)
KEY_PROFILE = "bgate" if importlib.util.find_spec("essentia") else "temperley"
KEY_PROFILES = (*PROFILES, *ESSENTIA_PROFILES)
_ENHARMONIC = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}


@dataclass(frozen=True)
class TempoKey:
    """What the analysis found. ``bpm``/``key`` None with ``*_reason`` saying why; confidences in [0, 1]."""

    bpm: float | None = None
    bpm_confidence: float | None = None
    bpm_reason: str = ""
    key: str | None = None  # "A minor"
    key_confidence: float | None = None
    key_reason: str = ""

    @property
    def camelot(self) -> str | None:
        return key_camelot(self.key)

    def to_dict(self) -> dict:
        return asdict(self)


def tag_bpm(tags: dict) -> float | None:
    """The tempo a file's tags give (``bpm``, a decimal comma allowed), None unless a number in 20-400 (NaN, 0 or a
    typo is no tempo)."""
    try:
        v = float(str(tags.get("bpm", "")).replace(",", "."))
    except ValueError:
        return None
    return v if 20 <= v <= 400 else None


def key_camelot(name: str | None) -> str | None:
    """"A minor" -> "8A"; None for None or a name that is no key (a catalogue edited by hand: "A# minor" is read,
    "Dorian" is None; it raised, and the app's table showed no rows)."""
    key = parse_key_or_none(name)
    return None if key is None else camelot(key)


def key_open(name: str | None) -> str | None:
    """"A minor" -> "1m"; None as :func:`key_camelot`."""
    key = parse_key_or_none(name)
    return None if key is None else open_key(key)


def spectrogram(y: np.ndarray) -> np.ndarray:
    """Magnitude STFT (513, frames) of ``y`` at :data:`SR`, 1024-point frames every :data:`HOP` samples."""
    return onsets.stft_magnitude(y, 1024, HOP)


def onset_envelope(y: np.ndarray | None, sr: int = SR, *, S: np.ndarray | None = None) -> np.ndarray:
    """Spectral flux on a 64-band log-mel spectrogram of ``y`` (or of its :func:`spectrogram` ``S``): (frames,) at
    ``sr / HOP`` frames per second."""
    return onsets.onset_strength(spectrogram(y) if S is None else S, sr, HOP)


def gate_chroma(S: np.ndarray) -> np.ndarray:
    """(12,) chroma of a :func:`spectrogram`, C first, no tuning: too coarse in pitch to name the key, enough to say
    whether there is a tonal centre (:func:`estimate_key`'s confidence) before Essentia names it."""
    return onsets.chroma_filter(SR, 1024) @ S.sum(axis=1)  # the frames' sum: one product


def _interp_bpm(env: np.ndarray, bpm: float, sr: int) -> tuple[float, float]:
    """Refine ``bpm`` to the autocorrelation peak nearest it (parabolic interpolation of the lag); also the
    peak's height relative to lag 0 (pulse clarity, 0-1)."""
    fps = sr / HOP
    x = env - env.mean()
    n = len(x)
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:n]
    lag = 60.0 * fps / bpm
    lo, hi = max(2, int(lag * 0.94)), min(n - 2, int(np.ceil(lag * 1.06)))
    if hi <= lo or ac[0] <= 0:
        return bpm, 0.0
    i = lo + int(np.argmax(ac[lo:hi + 1]))
    a, b, c = ac[i - 1], ac[i], ac[i + 1]
    den = a - 2 * b + c
    shift = 0.5 * (a - c) / den if den < 0 else 0.0
    clarity = float(np.clip(b / ac[0], 0.0, 1.0))
    return float(60.0 * fps / (i + float(np.clip(shift, -0.5, 0.5)))), clarity


def _acf(env: np.ndarray) -> np.ndarray:
    x = env - env.mean()
    n = len(x)
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n)) ** 2)[:n]
    return ac / ac[0] if ac[0] > 0 else ac


def comb_tempo(env: np.ndarray, *, sr: int = SR, lo: float = 40.0, hi: float = COMB_MAX_BPM,
               prior_bpm: float = COMB_PRIOR_BPM, prior_octaves: float = COMB_PRIOR_OCTAVES) -> float:
    """The beat period whose first :data:`COMB_MULTIPLES` multiples (fewer, at least 4, where the envelope is too
    short for the slowest tempo) all fall on autocorrelation peaks (a comb), weighted by a
    log-normal prior around ``prior_bpm``: a lag of 1.5 beats, which a plain peak pick takes when off-beat hats make
    every eighth-note lag a peak, scores lower than the beat because only its even multiples line up with the
    strong beats. Between a tempo and its half, whose combs both fit, the prior decides; nothing faster than ``hi``
    is read (a song at 110 BPM with running eighths is not 220)."""
    fps = sr / HOP
    ac = _acf(np.asarray(env, np.float64) ** COMB_POWER)
    n = len(ac)
    peak = ac.copy()  # the largest value within one frame: multiples of a fractional lag round either way
    peak[1:] = np.maximum(peak[1:], ac[:-1])
    peak[:-1] = np.maximum(peak[:-1], ac[1:])
    m = int(np.clip((n - 2) // (60 * fps / lo), 4, COMB_MULTIPLES))
    lags = np.arange(max(2.0, 60 * fps / hi), min((n - 2) / m, 60 * fps / lo), 0.25)  # quarter-frame steps
    if len(lags) == 0:
        return 120.0
    vals = np.mean([peak[np.round(k * lags).astype(int)] for k in range(1, m + 1)], axis=0)
    bpms = 60 * fps / lags
    score = vals * np.exp(-0.5 * (np.log2(bpms / prior_bpm) / prior_octaves) ** 2)
    return float(bpms[int(np.argmax(score))])


def estimate_tempo(env: np.ndarray, *, sr: int = SR, method: str = TEMPO_METHOD) -> tuple[float, float]:
    """(BPM, confidence) from an onset envelope (:func:`onset_envelope`).

    Confidence: the regularity of the beats tracked at that tempo (1 - coefficient of variation of the
    inter-beat intervals / 0.1, clipped) times the pulse clarity (the envelope's autocorrelation at the beat
    period relative to lag 0, saturating at 0.5): a pad with a few chord changes has regular tracked "beats"
    but no pulse.
    """
    import librosa  # lazy: its beat module (numba) is loaded only by the two methods that call it

    if method == "tempogram":
        bpm = float(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=HOP, aggregate=np.mean)[0])
        bpm, clarity = _interp_bpm(env, bpm, sr)
        _, beats = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=HOP, bpm=bpm, units="frames")
    elif method == "comb":
        bpm, clarity = _interp_bpm(env, comb_tempo(env, sr=sr), sr)
        beats = onsets.beat_track(env, bpm, sr / HOP)
    elif method == "beats":
        tempo, beats = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=HOP, units="frames")
        ibi = np.diff(beats)
        bpm = float(60.0 * sr / HOP / np.median(ibi)) if len(ibi) else float(np.atleast_1d(tempo)[0])
        clarity = _interp_bpm(env, bpm, sr)[1]
    else:
        raise ValueError(f"unknown tempo method {method!r}; valid: {', '.join(TEMPO_METHODS)}")
    ibi = np.diff(beats).astype(float)
    if len(ibi) < 3 or env.mean() <= 0:
        return bpm, 0.0
    regularity = float(np.clip(1.0 - (ibi.std() / ibi.mean()) / 0.1, 0.0, 1.0))
    return bpm, round(regularity * float(np.clip(clarity / 0.5, 0.0, 1.0)), 3)


def mean_chroma(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """(12,) chroma magnitude of the whole track, C first (tuning estimated)."""
    import librosa

    S = np.abs(librosa.stft(y, n_fft=CHROMA_FFT, hop_length=CHROMA_HOP)) ** 2
    with warnings.catch_warnings():  # no pitched peaks at all: tuning 0, said by the key's reason instead
        warnings.simplefilter("ignore", UserWarning)
        tuning = librosa.estimate_tuning(S=S[:, ::3], sr=sr, n_fft=CHROMA_FFT)  # every 3rd frame is plenty
    # from the magnitude, not the power: loud bass notes and drums dominate a power chroma (tune split: Temperley
    # 0.877 -> 0.888 MIREX, Krumhansl 0.765 -> 0.848)
    C = librosa.feature.chroma_stft(S=np.sqrt(S), sr=sr, n_fft=CHROMA_FFT, tuning=tuning, norm=None)
    return C.sum(axis=1)


def key_scores(chroma: np.ndarray, *, profile: str = "temperley") -> np.ndarray:
    """(24,) Pearson correlation of ``chroma`` with each key's profile: 0-11 major C..B, 12-23 minor C..B."""
    if profile not in PROFILES:
        raise ValueError(f"unknown key profile {profile!r}; valid: {', '.join(PROFILES)}")
    c = np.asarray(chroma, float)
    c = (c - c.mean()) / (c.std() + 1e-12)
    out = np.empty(24)
    for m, prof in enumerate(PROFILES[profile]):
        p = np.asarray(prof)
        p = (p - p.mean()) / p.std()
        for pc in range(12):
            out[12 * m + pc] = float(np.dot(c, np.roll(p, pc))) / 12
    return out


def estimate_key(chroma: np.ndarray, *, profile: str = "temperley") -> tuple[tuple[int, str], float]:
    """((tonic pitch class, mode), confidence) from a mean chroma. Confidence: the best correlation, scaled down
    when the runner-up is close (margin under 0.1)."""
    r = key_scores(chroma, profile=profile)
    order = np.argsort(r)[::-1]
    best, second = int(order[0]), float(r[order[1]])
    conf = max(0.0, float(r[best])) * min(1.0, 0.5 + 5.0 * (float(r[best]) - second))
    return (best % 12, "major" if best < 12 else "minor"), round(conf, 3)


def essentia_key(y: np.ndarray, *, profile: str = "bgate") -> tuple[int, str]:
    """(tonic pitch class, mode) of mono ``y`` at :data:`SR` by Essentia's ``KeyExtractor`` with ``profile``."""
    if profile not in ESSENTIA_PROFILES:
        raise ValueError(f"unknown Essentia key profile {profile!r}; valid: {', '.join(ESSENTIA_PROFILES)}")
    import essentia

    essentia.log.infoActive = False  # else its import tells stderr that no classifier models are configured
    import essentia.standard as es

    extractor = es.KeyExtractor(profileType=profile, sampleRate=SR, hopSize=ESSENTIA_HOP)
    tonic, mode, _strength = extractor(np.ascontiguousarray(y, np.float32))
    return NAMES.index(_ENHARMONIC.get(tonic, tonic)), str(mode)


def resample_to_analysis(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 ``y`` at :data:`SR` (checked by :func:`~musicemb_core.audio.resample.mono_samples`)."""
    from musicemb_core.audio.resample import mono_samples, resample

    y = mono_samples(y)
    return y if sr == SR else resample(y, sr, SR, quality="MQ")


def analyse(y: np.ndarray, sr: int = SR, *, tempo_method: str = TEMPO_METHOD,
            key_profile: str = KEY_PROFILE) -> TempoKey:
    """Tempo and key of mono ``y`` (any rate; resampled to :data:`SR`). Never guesses: too short, too quiet,
    no steady beat or no tonal centre gives None and a reason."""
    y = resample_to_analysis(y, sr)[: int(MAX_ANALYSIS_S * SR)]
    dur = len(y) / SR
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) if len(y) else 0.0
    level = 20 * np.log10(max(rms, 1e-12))
    if level < QUIET_DBFS:
        why = f"too quiet ({level:.0f} dBFS RMS, below {QUIET_DBFS:.0f})"
        return TempoKey(bpm_reason=why, key_reason=why)
    fields: dict = {}
    S = spectrogram(y) if dur >= min(MIN_TEMPO_S, MIN_KEY_S) else None
    if dur < MIN_TEMPO_S:
        fields["bpm_reason"] = f"too short for tempo ({dur:.1f} s, needs {MIN_TEMPO_S:g} s)"
    else:
        env = onset_envelope(None, S=S)
        bpm, conf = estimate_tempo(env, method=tempo_method)
        if conf < TEMPO_CONF_MIN:
            fields["bpm_reason"] = "no steady beat"
        else:
            fields.update(bpm=round(bpm, 2), bpm_confidence=conf)
    if dur < MIN_KEY_S:
        fields["key_reason"] = f"too short for key ({dur:.1f} s, needs {MIN_KEY_S:g} s)"
    else:
        essentia = key_profile in ESSENTIA_PROFILES  # then our chroma only says whether there is a tonal centre
        key, conf = estimate_key(gate_chroma(S), profile="temperley") if essentia else \
            estimate_key(mean_chroma(y), profile=key_profile)
        if conf < KEY_CONF_MIN:
            fields["key_reason"] = "no clear tonal centre"
        else:
            fields.update(key=key_name(essentia_key(y, profile=key_profile) if essentia else key), key_confidence=conf)
    return TempoKey(**fields)


class Analyser:
    """Collects decoded blocks (frames, channels) as a file is scanned, downmixed and resampled to :data:`SR` on
    the fly (at most :data:`MAX_ANALYSIS_S` kept); :meth:`result` analyses them."""

    def __init__(self, sr: int):
        import soxr

        self.sr = sr
        self._rs = None if sr == SR else soxr.ResampleStream(sr, SR, 1, dtype="float32", quality="MQ")
        self._parts: list[np.ndarray] = []
        self._n = 0
        self._limit = int(MAX_ANALYSIS_S * SR)

    def __call__(self, block: np.ndarray) -> None:
        if self._n >= self._limit:
            return
        if block.ndim == 2:  # a matrix-vector product: 10x faster than mean(axis=1) on (frames, channels)
            ch = block.shape[1]
            mono = block[:, 0] if ch == 1 else block @ np.full(ch, 1.0 / ch, np.float32)
        else:
            mono = np.asarray(block, np.float32)
        if self._rs is not None:
            mono = self._rs.resample_chunk(mono)
        self._parts.append(mono)
        self._n += len(mono)

    def result(self) -> TempoKey:
        if self._rs is not None and self._n < self._limit:
            self._parts.append(self._rs.resample_chunk(np.zeros(0, np.float32), last=True))
        y = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        self._parts = []
        return analyse(y, SR)
