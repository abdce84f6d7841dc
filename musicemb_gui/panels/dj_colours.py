"""Map colourings for DJs: tempo as a ramp of BPM bands, key as the Camelot wheel (neighbouring codes, which
mix, get neighbouring hues; minor "A" codes a lighter shade of the major "B" code beside them), and the dimming
of points left out by the library's filters. Categories, palettes and legend names, as the scatter takes them."""

from __future__ import annotations

import colorsys
import math

import numpy as np

from musicemb_core.features.camelot import camelot, key_name, parse_key
from musicemb_core.workflows.dj import track_bpm, track_key

DJ_MODES = ("BPM", "key")
NO_VALUE = "#9a9a9a"
FILTERED_OUT = "#454545"
_RAMP = ("#4575b4", "#74add1", "#e0f3f8", "#fee090", "#f46d43", "#d73027")  # slow blue to fast red, on black


def camelot_colour(code: str) -> str:
    """Wheel colour of a Camelot code: hue by number (12 around the wheel), A lighter than B."""
    n, minor = int(code[:-1]), code[-1].upper() == "A"
    r, g, b = colorsys.hsv_to_rgb(((n - 1) / 12 + 0.45) % 1.0, 0.45 if minor else 0.8, 1.0 if minor else 0.9)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _wheel_order(code: str) -> tuple[int, str]:
    return int(code[:-1]), code[-1]


def key_colours(codes: list[str | None]) -> tuple[np.ndarray, list[str], list[str]]:
    """Category per point from its Camelot code (None: no key), the wheel colours of the codes present in wheel
    order, and names like "8A  A minor"."""
    present = sorted({c for c in codes if c}, key=_wheel_order)
    index = {c: i for i, c in enumerate(present)}
    cats = np.array([index.get(c, len(present)) for c in codes], dtype=np.int64)
    names = [f"{c}  {key_name(parse_key(c))}" for c in present]
    return cats, [camelot_colour(c) for c in present] + [NO_VALUE], names + ["(no key)"]


def _ramp(t: float) -> str:
    """Colour at ``t`` in [0, 1] along the ramp."""
    x = min(max(t, 0.0), 1.0) * (len(_RAMP) - 1)
    i = min(int(x), len(_RAMP) - 2)
    a, b = (np.array([int(c[k:k + 2], 16) for k in (1, 3, 5)], float) for c in _RAMP[i:i + 2])
    r, g, bl = np.round(a + (b - a) * (x - i)).astype(int)
    return f"#{r:02x}{g:02x}{bl:02x}"


def bpm_colours(bpms: list[float | None], *, max_bands: int = 8) -> tuple[np.ndarray, list[str], list[str]]:
    """Category per point from its tempo in bands of 5, 10, 20... BPM (at most ``max_bands`` over the range
    present), coloured along a ramp from slow to fast; names like "120-130 BPM"; None: no tempo."""
    known = [b for b in bpms if b]
    if not known:
        return np.zeros(len(bpms), np.int64), [NO_VALUE], ["(no tempo)"]
    width = next(w for w in (5, 10, 20, 40, 80, 1000) if (max(known) - min(known)) / w < max_bands)
    lo = math.floor(min(known) / width) * width
    n = int((max(known) - lo) // width) + 1
    cats = np.array([int((b - lo) // width) if b else n for b in bpms], dtype=np.int64)
    palette = [_ramp(i / max(1, n - 1)) for i in range(n)] + [NO_VALUE]
    names = [f"{lo + i * width:g}-{lo + (i + 1) * width:g} BPM" for i in range(n)] + ["(no tempo)"]
    return cats, palette, names


def track_colours(mode: str, tracks: list) -> tuple[np.ndarray, list[str], list[str]]:
    """``mode`` ("BPM" or "key") colouring of points given each point's catalogue track: our estimate, else the
    tag's, as the table and the filters show them."""
    if mode == "BPM":
        return bpm_colours([track_bpm(t) for t in tracks])
    return key_colours([None if (k := track_key(t)) is None else camelot(k) for t in tracks])


def dim_filtered(colouring: tuple[np.ndarray, list[str], list[str]], keep: np.ndarray | None
                 ) -> tuple[np.ndarray, list[str], list[str]]:
    """Points where ``keep`` (n,) is False drawn in one dim grey (the filtered tracks stand out); None: as is."""
    if keep is None:
        return colouring
    cats, palette, names = colouring
    cats = np.where(keep, cats, len(palette))
    named = len(names) >= len(palette)  # a colouring without a legend (by track) gets no legend entry
    return cats, [*palette, FILTERED_OUT], [*names, "(filtered out)"] if named else names
