"""Judging signal faults in context: a segment's :func:`~musicemb_core.analysis.faults.measure` numbers against
fixed thresholds, its own track and the whole library.

Three steps: :func:`track_values` turns one track's measures into per-segment numbers read in the track's
context; :class:`LibraryReference` holds robust statistics (median, MAD) of those numbers over the library's
tracks; :func:`decide` turns one track's values into :class:`~musicemb_core.analysis.faults.Fault` findings.
:func:`judge` does all three for one track, :func:`detect` for one clip.

Context rules:

- **Quiet openings and endings** (the run of segments from a track's start or end that lie far below the
  track's median level: fade-ins, fade-outs, silent lead-ins and tails) carry no findings: they are not dead,
  muffled, noisy, humming or crackling, and a digital silence touching the track's first or last sample is no
  dropout.
- ``dead`` is a dead recording (even the track's loud passages, :data:`LOUD_PERCENTILE`, at or below the
  threshold, and none of it more than :data:`EVENT_DB` above: a quiet field recording with a few loud events
  is not dead), a dead channel, or digital silence inside the track. A quiet passage inside music is not a fault.
- Steady faults are pooled over the segments within ``pool_s``: hum on the mean harmonic prominence,
  crackle on the mean click rate, so one drum fill or one sustained bass note is not a fault.
- **Recording faults last**; the music's own passages do not. Below twice its threshold, hum, DC offset,
  broadband noise and a muffled high band each need half the track's body segments within
  :data:`HUM_SPAN_S` (a bass swell, a noise riser, a filter sweep or a bass-only break is not enough), and
  crackle's clicks must come at random, not in bursts (:func:`_bursty`: a percussive passage). Mains hum is a
  comb on one grid (:func:`_mains_comb`); noise must lie over music or speech (lit low octaves), not be a
  noise sound on its own.
- **Library-relative thresholds** for the measures where style matters (hum, crackle, noise, muffled): the
  threshold is the fixed one or the library's typical track (the median over tracks of each track's median)
  moved by :data:`MARGINS`, whichever is further from normal; so in a library of lo-fi, noisy or drone music
  only what stands out from that music is flagged. DC offset, clipping and dropouts are defects whatever the
  style and keep fixed thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicemb_core.analysis.faults import (
    DEAD_CHANNEL_DB,
    MUFFLED_REL_DB,
    NOISE_FLATNESS,
    NOMINAL_HF_DB,
    THRESHOLDS,
    Fault,
    hum_strength,
    measure,
)

LOUD_PERCENTILE = 90    # a track's loud passages: this percentile of its segments' levels (dead below the threshold)
EVENT_DB = 20.0         # a segment this far above the dead threshold: the recording is not dead (a loud event)
EDGE_DB = 20.0          # an opening/closing segment this far below the track's median level is a fade or an intro
SILENCE_DB = -80.0      # digital silence (dBFS RMS)
CRACKLE_DISPERSION = 3.0  # crackle's click counts per segment vary like random events: variance <= this x mean
HUM_SPAN_S = 60.0       # hum and DC offset must hold in half the segments within this many seconds
MIN_LIBRARY_TRACKS = 8  # fewer tracks than this: fixed thresholds only
_MAD = 1.4826
# graded measures: name -> (threshold key, +1 if higher is worse else -1)
GRADED = {"hum": ("hum", 1), "click_rate": ("crackle", 1), "snr_db": ("noise", -1), "hf_db": ("muffled", -1)}
# how far from the library's typical track a value must be (in the measure's unit) to be a fault
MARGINS = {"hum": 6.0, "click_rate": 1.5, "snr_db": 10.0, "hf_db": 40.0}


def _pooled(values: np.ndarray, ok: np.ndarray, starts: np.ndarray | None, pool_s: float) -> np.ndarray:
    """Mean of ``values`` (n, ...) over the ``ok`` segments starting within ``pool_s`` of each one."""
    out = values.astype(np.float64).copy()
    if starts is None or not ok.any():
        return out
    idx = np.flatnonzero(ok)
    for i in idx:
        near = idx[np.abs(starts[idx] - starts[i]) <= pool_s]
        out[i] = values[near].mean(axis=0)
    return out


def _edges(quiet: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The runs of ``quiet`` segments touching the track's start or end (segments in ``starts`` order)."""
    edge = np.zeros(len(quiet), bool)
    by_time = np.argsort(starts, kind="stable")
    for order in (by_time, by_time[::-1]):
        for i in order:
            if not quiet[i]:
                break
            edge[i] = True
    return edge


def dead_recording(loud_db: float, peak_db: float, dead_db: float) -> bool:
    """Whether a recording is dead: its loud passages (``loud_db``) at or below the threshold and not one segment
    (``peak_db``) :data:`EVENT_DB` above it."""
    return loud_db <= dead_db and peak_db <= dead_db + EVENT_DB


def track_values(measures: list[dict], *, starts: np.ndarray | None = None, pool_s: float = 12.0,
                 dead_db: float = THRESHOLDS["dead"]) -> dict:
    """One track's per-segment numbers in the track's context (arrays of length ``len(measures)``).

    ``starts``: segment start times (s) in track order; without them segments are judged alone and none is
    an opening or ending.
    """
    n = len(measures)
    measured = np.array(["clip_frac" in m for m in measures], bool)
    level = np.array([m["rms_db"] for m in measures], float)
    sounding = measured & (level > dead_db)
    track_db = float(np.median(level)) if n else -np.inf
    loud_db = float(np.percentile(level, LOUD_PERCENTILE)) if n else -np.inf
    peak_db = float(level.max()) if n else -np.inf
    quiet = level <= max(dead_db, track_db - EDGE_DB)
    edge = _edges(quiet, np.asarray(starts)) if starts is not None else np.zeros(n, bool)
    edge &= not dead_recording(loud_db, peak_db, dead_db)  # a dead recording is dead throughout
    body = sounding & ~edge

    def get(key, default=0.0):
        return np.array([m.get(key, default) if measured[i] else default for i, m in enumerate(measures)], float)

    has_hum = np.array([m.get("hum_prom") is not None for m in measures]) & body
    hum, hum_f0, hum_lines = np.zeros(n), np.zeros(n, int), [[] for _ in range(n)]
    if has_hum.any():
        blank = np.zeros_like(measures[int(np.argmax(has_hum))]["hum_prom"])
        prom = np.stack([m["hum_prom"] if has_hum[i] else blank for i, m in enumerate(measures)])
        pooled = _pooled(prom, has_hum, starts, pool_s)
        for i in np.flatnonzero(has_hum):
            hum[i], hum_f0[i], hum_lines[i] = hum_strength(pooled[i])
    dropout_s = get("dropout_s")
    if starts is not None and n:
        first, last = int(np.argmin(starts)), int(np.argmax(starts))
        dropout_s[first] -= measures[first].get("dropout_edge_s", (0.0, 0.0))[0]
        dropout_s[last] -= measures[last].get("dropout_edge_s", (0.0, 0.0))[1]
    hf = get("hf_db")
    track_hf = float(np.median(hf[body])) if body.sum() >= 4 else None
    chans = [np.asarray(m["channel_db"], float) for m in measures]
    return {"n": n, "starts": None if starts is None else np.asarray(starts, float), "measured": measured, "level": level, "track_db": track_db,
            "loud_db": loud_db, "peak_db": peak_db, "edge": edge, "body": body,
            "sounding": sounding, "clip_frac": get("clip_frac"), "dropout_s": np.maximum(dropout_s, 0.0),
            "dropout_n": get("dropout_n"), "dc": np.array([m["dc"] for m in measures], float),
            "hum": hum, "hum_f0": hum_f0, "hum_lines": hum_lines,
            "click_rate": _pooled(get("click_rate"), body, starts, pool_s), "clicks": get("clicks"),
            "snr_db": get("snr_db", 99.0), "flatness": get("floor_flatness"), "hf_db": hf, "track_hf": track_hf,
            "low_octaves": get("low_octaves"), "sr": np.array([m["sr"] for m in measures], float),
            "chan_gap": np.array([c.max() - c.min() if len(c) > 1 else 0.0 for c in chans]),
            "chan_low": np.array([int(np.argmin(c)) if len(c) else 0 for c in chans]),
            "chan_min": np.array([c.min() if len(c) else -np.inf for c in chans])}


@dataclass(frozen=True)
class LibraryReference:
    """Median and robust scale (1.4826 MAD, reported) over tracks of each graded measure's per-track median."""

    stats: dict
    tracks: int

    @classmethod
    def fit(cls, tracks: list[dict]) -> LibraryReference:
        """From :func:`track_values` of each track (tracks without sounding body segments are left out)."""
        stats = {}
        used = [v for v in tracks if v["body"].any()]
        for name in GRADED:
            meds = np.array([np.median(v[name][v["body"]]) for v in used])
            if len(meds) >= MIN_LIBRARY_TRACKS:
                med = float(np.median(meds))
                stats[name] = (med, _MAD * float(np.median(np.abs(meds - med))))
        return cls(stats, len(used))

    def threshold(self, name: str, fixed: float) -> float:
        """The fixed threshold, or the library-relative one where that is further from the typical track."""
        if name not in self.stats:
            return fixed
        sign = GRADED[name][1]
        relative = self.stats[name][0] + sign * MARGINS[name]
        return max(fixed, relative) if sign > 0 else min(fixed, relative)


NO_REFERENCE = LibraryReference({}, 0)


def _fault(kind: str, severity: float, value: float, threshold: float, reason: str, **extra) -> Fault:
    return Fault(kind, round(float(severity), 4), reason,
                 {"value": round(float(value), 6), "threshold": round(float(threshold), 6), **extra})


def _lib(t: float, fixed: float, unit: str) -> str:
    return "" if t == fixed else f" (threshold {t:.1f}{unit}, set by this library's typical track)"


def decide(v: dict, *, reference: LibraryReference = NO_REFERENCE, thresholds: dict | None = None
           ) -> list[list[Fault]]:
    """Findings of each segment of one track from its :func:`track_values`."""
    t = {**THRESHOLDS, **(thresholds or {})}
    th = {name: reference.threshold(name, t[key]) for name, (key, _) in GRADED.items()}
    th["hf_db"] = reference.threshold("hf_db", NOMINAL_HF_DB - t["muffled"])
    h = _hits(v, th, t)
    out: list[list[Fault]] = []
    for i in range(v["n"]):
        if dead_recording(v["loud_db"], v["peak_db"], t["dead"]) or not v["measured"][i]:
            lvl = v["level"][i]
            out.append([_fault("dead", 1 + (t["dead"] - lvl) / 10, lvl, t["dead"],
                               f"dead: the recording is near-silent ({LOUD_PERCENTILE} % of it at or below "
                               f"{v['loud_db']:.0f} dBFS RMS, its loudest segment {v['peak_db']:.0f}, this one "
                               f"{lvl:.0f})")])
            continue
        if v["edge"][i]:
            out.append([])
            continue
        found: list[Fault] = []
        if v["level"][i] <= SILENCE_DB:
            out.append([_fault("dead", 1 + (SILENCE_DB - v["level"][i]) / 10, v["level"][i], SILENCE_DB,
                               f"dead: digital silence inside the track ({v['level'][i]:.0f} dBFS RMS)")])
            continue
        if v["chan_gap"][i] >= DEAD_CHANNEL_DB:
            c = int(v["chan_low"][i])
            found.append(_fault("dead", v["chan_gap"][i] / DEAD_CHANNEL_DB, v["chan_min"][i], -DEAD_CHANNEL_DB,
                                f"dead channel: channel {c + 1} at {v['chan_min'][i]:.0f} dBFS, "
                                f"{v['chan_gap'][i]:.0f} dB below the other", channel=c))
        if v["clip_frac"][i] >= t["clipping"]:
            found.append(_fault("clipping", v["clip_frac"][i] / t["clipping"], v["clip_frac"][i], t["clipping"],
                                f"clipped: {100 * v['clip_frac'][i]:.2g} % of samples at full scale"))
        if v["dropout_s"][i] >= t["dropouts"]:
            k = int(v["dropout_n"][i])
            found.append(_fault("dropouts", v["dropout_s"][i] / t["dropouts"], v["dropout_s"][i], t["dropouts"],
                                f"dropouts: {k} gap{'s' * (k > 1)} of digital silence, {v['dropout_s'][i]:.2f} s "
                                "in all", gaps=k))
        dc = h["dc"]
        if dc[i] >= 1 and _lasting(v, i, dc >= 1, dc[i]):
            found.append(_fault("dc_offset", abs(v["dc"][i]) / t["dc_offset"], v["dc"][i], t["dc_offset"],
                                f"DC offset: mean {v['dc'][i]:+.3f} of full scale"))
        if v["body"][i]:
            found += _graded(v, i, th, t, h)
        out.append(found)
    return out


def _mains_comb(lines: list[int]) -> bool:
    """A mains comb: at least three lines, among them the fundamental or its octave (a note's overtones at
    200 and 400 Hz are no hum)."""
    return len(lines) >= 3 and bool({1, 2} & set(lines))


def _hits(v: dict, th: dict, t: dict) -> dict:
    """One track's per-segment severities and hits that :func:`decide` reads segment by segment: DC offset (in
    thresholds), broadband noise, the muffled band's absolute and track-relative severities and their hits."""
    hf, track_hf = v["hf_db"], v["track_hf"]
    absolute = (NOMINAL_HF_DB - hf) / (NOMINAL_HF_DB - th["hf_db"])
    relative = (track_hf - hf) / MUFFLED_REL_DB if track_hf is not None else np.zeros_like(hf)
    muffled = np.maximum(absolute, relative)
    return {"dc": np.abs(v["dc"]) / t["dc_offset"],
            "noisy": (v["snr_db"] <= th["snr_db"]) & (v["flatness"] >= NOISE_FLATNESS) & (v["low_octaves"] >= 3),
            "hf_absolute": absolute, "hf_relative": relative, "muffled_severity": muffled,
            "muffled": (muffled >= 1) & (v["low_octaves"] >= 3) & (v["sr"] >= 8000)}


def _around(v: dict, i: int) -> np.ndarray:
    """The body segments within :data:`HUM_SPAN_S` of segment ``i`` (a mask)."""
    return v["body"] & (np.abs(v["starts"] - v["starts"][i]) <= HUM_SPAN_S)


def _lasting(v: dict, i: int, hit: np.ndarray, severity: float) -> bool:
    """True if ``severity`` is twice the threshold's or ``hit`` holds in at least half the body segments within
    :data:`HUM_SPAN_S` of segment ``i``."""
    if v["starts"] is None or severity >= 2:
        return True
    return bool(hit[_around(v, i)].mean() >= 0.5)


def _bursty(v: dict, i: int, severity: float) -> bool:
    """True if the clicks of the body segments within :data:`HUM_SPAN_S` of segment ``i`` come in bursts (their
    counts' variance over :data:`CRACKLE_DISPERSION` times their mean: a drum pattern, a percussive passage)
    rather than at random as crackle does, unless ``severity`` is twice the threshold's."""
    if v["starts"] is None or severity >= 2:
        return False
    counts = v["clicks"][_around(v, i)]
    return len(counts) >= 4 and counts.var() > CRACKLE_DISPERSION * max(counts.mean(), 1e-9)


def _graded(v: dict, i: int, th: dict, t: dict, h: dict) -> list[Fault]:
    """The style-dependent kinds of one body segment: hum, crackle, noise, muffled (``h``: :func:`_hits`)."""
    found = []
    if (v["hum"][i] >= th["hum"] and _mains_comb(v["hum_lines"][i])
            and _lasting(v, i, v["hum"] >= th["hum"], v["hum"][i] / th["hum"])):
        lines = ", ".join(str(h * int(v["hum_f0"][i])) for h in v["hum_lines"][i])
        found.append(_fault("hum", v["hum"][i] / th["hum"], v["hum"][i], th["hum"],
                            f"hum: {int(v['hum_f0'][i])} Hz mains lines ({lines} Hz), {v['hum'][i]:.0f} dB above "
                            f"the spectrum{_lib(th['hum'], t['hum'], ' dB')}", f0_hz=int(v["hum_f0"][i])))
    if v["click_rate"][i] >= th["click_rate"] and not _bursty(v, i, v["click_rate"][i] / th["click_rate"]):
        found.append(_fault("crackle", v["click_rate"][i] / th["click_rate"], v["click_rate"][i], th["click_rate"],
                            f"crackle: {v['click_rate'][i]:.1f} clicks per second around here ({int(v['clicks'][i])} "
                            f"in this segment){_lib(th['click_rate'], t['crackle'], '/s')}"))
    severity = 1 + (th["snr_db"] - v["snr_db"][i]) / 10
    if h["noisy"][i] and _lasting(v, i, h["noisy"], severity):
        found.append(_fault("noise", severity, v["snr_db"][i], th["snr_db"],
                            f"noise: broadband floor, estimated SNR {v['snr_db'][i]:.1f} dB"
                            f"{_lib(th['snr_db'], t['noise'], ' dB')}", flatness=round(float(v["flatness"][i]), 3)))
    hf, track_hf, severity = v["hf_db"], v["track_hf"], h["muffled_severity"]
    if h["muffled"][i] and _lasting(v, i, h["muffled"], severity[i]):
        than = (f"{track_hf - hf[i]:.0f} dB below the rest of its track ({track_hf:.0f} dB)"
                if h["hf_relative"][i] >= h["hf_absolute"][i] else
                f"{NOMINAL_HF_DB - hf[i]:.0f} dB below ordinary music ({NOMINAL_HF_DB:.0f} dB)")
        found.append(_fault("muffled", severity[i], hf[i], th["hf_db"],
                            f"muffled: high band (1.5 kHz up) at {hf[i]:.0f} dB of the total, {than}"))
    return found


def judge(measures: list[dict], *, starts: np.ndarray | None = None, pool_s: float = 12.0,
          thresholds: dict | None = None, reference: LibraryReference = NO_REFERENCE) -> list[list[Fault]]:
    """Faults of each segment of one track, from their :func:`~musicemb_core.analysis.faults.measure` dicts."""
    dead = {**THRESHOLDS, **(thresholds or {})}["dead"]
    return decide(track_values(measures, starts=starts, pool_s=pool_s, dead_db=dead), reference=reference,
                  thresholds=thresholds)


def detect(y: np.ndarray, sr: int, *, thresholds: dict | None = None) -> list[Fault]:
    """Faults of one clip judged on its own (no track or library context)."""
    return judge([measure(y, sr)], thresholds=thresholds)[0]
