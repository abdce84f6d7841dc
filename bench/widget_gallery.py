"""Screenshots of the display widgets with realistic fake data, for looking at them.
Run: .venv/bin/python bench/widget_gallery.py [OUT_DIR]   (default bench/results/screens/; headless is fine)"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from musicemb_gui.widgets.confusion_view import ConfusionView  # noqa: E402
from musicemb_gui.widgets.curve_view import CurveView  # noqa: E402
from musicemb_gui.widgets.spectrogram_view import SpectrogramView, hz_to_mel, mel_to_hz  # noqa: E402

SR, N_FFT, HOP, N_MELS, FMIN, FMAX = 16000, 512, 160, 64, 0.0, 8000.0  # the models' features


def chirp(seconds: float = 4.0) -> np.ndarray:
    """An exponential chirp 100 Hz -> 6 kHz with one harmonic, a 1 kHz tone burst and a little noise."""
    t = np.arange(int(SR * seconds)) / SR
    phase = 2 * np.pi * 100 * seconds / np.log(60) * (60 ** (t / seconds) - 1)
    y = 0.5 * np.sin(phase) + 0.15 * np.sin(2 * phase)
    y += 0.3 * np.sin(2 * np.pi * 1000 * t) * ((t > 1.0) & (t < 1.5))
    return y + 0.003 * np.random.default_rng(0).standard_normal(len(t))


def log_mel(y: np.ndarray) -> np.ndarray:
    """Slaney-normalised mel power in dB (ref = max, 80 dB floor), shape (n_mels, frames), numpy only."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, N_FFT // 2, mode="reflect"), N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT + 1)[:-1], axis=1)) ** 2
    mel_f = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))
    ramps = mel_f[:, None] - np.fft.rfftfreq(N_FFT, 1 / SR)[None, :]
    fb = np.maximum(0, np.minimum(-ramps[:-2] / np.diff(mel_f)[:-1, None], ramps[2:] / np.diff(mel_f)[1:, None]))
    mel = (fb * (2 / (mel_f[2:] - mel_f[:-2]))[:, None]) @ power.T
    db = 10 * np.log10(np.maximum(mel, 1e-10) / mel.max())
    return np.maximum(db, -80.0).astype(np.float32)


def curves(view: CurveView) -> None:
    rng = np.random.default_rng(1)
    for step in range(0, 3000, 10):
        p = 1 - np.exp(-step / 700)
        view.add_point("train loss", step, 2.2 * (1 - 0.85 * p) + 0.08 * rng.standard_normal())
        view.add_point("train acc", step, np.clip(0.2 + 0.75 * p + 0.03 * rng.standard_normal(), 0, 1))
        if step % 250 == 0:
            view.add_point("val loss", step, 2.2 * (1 - 0.75 * p) + 0.03 * rng.standard_normal())
            view.add_point("val acc", step, 0.2 + 0.62 * p + 0.01 * rng.standard_normal())


def confusion(rng: np.random.Generator, labels: list[str]) -> np.ndarray:
    k = len(labels)
    cm = rng.integers(0, 6, (k, k)) + np.diag(rng.integers(20, 60, k))
    cm[0, k - 1] += 15  # one notable confusion
    return cm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", nargs="?", default=Path(__file__).parent / "results" / "screens", type=Path)
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    S = log_mel(chirp())
    shots: list[tuple[str, QWidget, tuple[int, int]]] = []

    spec = SpectrogramView()
    spec.set_spectrogram(S, sr=SR, hop_length=HOP, fmin=FMIN, fmax=FMAX, title="chirp 100 Hz -> 6 kHz, log-mel")
    shots.append(("spectrogram_db", spec, (900, 360)))
    norm = SpectrogramView(colormap="viridis")
    norm.set_spectrogram((S - S.mean()) / S.std(), sr=SR, hop_length=HOP, fmin=FMIN, fmax=FMAX,
                         unit="normalised", title="the same, standardised as the model sees it")
    shots.append(("spectrogram_normalised", norm, (900, 360)))
    live = SpectrogramView(max_frames=300)
    live.start_live(N_MELS, sr=SR, hop_length=HOP, fmin=FMIN, fmax=FMAX, levels=(-80, 0), title="live")
    for i in range(0, S.shape[1], 4):  # 25 updates/s of 4 frames; more than the window, so it has scrolled
        live.append_columns(S[:, i:i + 4])
    shots.append(("spectrogram_live", live, (900, 360)))

    cv = CurveView()
    curves(cv)
    shots.append(("curves", cv, (1100, 400)))

    rng = np.random.default_rng(2)
    labels = ["ambient", "chiptune", "folk", "rock", "techno"]
    conf = ConfusionView()
    conf.set_matrix(confusion(rng, labels), labels, title="genre probe, validation")
    shots.append(("confusion", conf, (620, 560)))
    long_labels = [f"{g} {s}" for g in ("electronic", "acoustic", "orchestral") for s in ("ambience", "drums", "voice",
                                                                                            "strings")]
    conf_long = ConfusionView()
    conf_long.set_matrix(confusion(rng, long_labels), long_labels, normalise_rows=False, title="12 long labels, counts")
    shots.append(("confusion_long_labels", conf_long, (760, 680)))

    for name, widget, (w, h) in shots:
        widget.resize(w, h)
        widget.show()
        app.processEvents()
        path = out / f"{name}.png"
        widget.grab().save(str(path))
        print(path)


if __name__ == "__main__":
    main()
