"""Musical keys for DJs: names ("A minor"), Camelot codes ("8A") and Open Key codes ("1m"), and harmonic
compatibility on the Camelot wheel. Pure functions, no audio.

A key is a pair (tonic pitch class 0-11 with C = 0, mode "major" | "minor"). Camelot: C major is 8B, A minor 8A;
one step clockwise is a fifth up. Open Key: C major is 1d, A minor 1m.
"""

from __future__ import annotations

import re

import numpy as np

from musicemb_core.common.errors import ConfigError

NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAME = re.compile(r"([A-Ga-g])\s*([#♯b♭]?)\s*(.*)")
_MINOR = {"m", "min", "minor", "moll", "-", "mi"}
_MAJOR = {"", "maj", "major", "dur", "ma", "M"}
_ACCIDENTAL_WORD = re.compile(r"(?<=[A-Ga-g])[\s-]*(flat|sharp)\b", re.IGNORECASE)  # "E flat minor", "F-sharp"
# German: "a-Moll", "Fis-Dur", "es-moll"; B is B flat and H is B
_GERMAN = re.compile(r"([A-Ha-h])(is|es|s)?\s*-?\s*(moll|dur)", re.IGNORECASE)
_GERMAN_PC = {**_PC, "B": 10, "H": 11}
_KEY_PARTS = re.compile(r"\s*[/|,;]\s*|\s+-\s+")  # "8A/Am", "4A - Fm" ("A-" alone is A minor)

Key = tuple[int, str]


def as_key(key: Key | str) -> Key:
    """``key`` as a :data:`Key`: a (pitch class, "major" | "minor") pair as it is, text through :func:`parse_key`;
    a :class:`ConfigError` for anything else (another mode, a pitch class that is not a whole number)."""
    if isinstance(key, str):
        return parse_key(key)
    try:
        pc, mode = key
    except (TypeError, ValueError):
        pc = mode = None
    if mode not in ("major", "minor") or isinstance(pc, bool) or not isinstance(pc, int | np.integer):
        raise ConfigError(f"not a key: {key!r} (give (pitch class 0-11, 'major' or 'minor'), or a name or code "
                          "such as 'A minor' or '8A')")
    return int(pc), mode


def key_name(key: Key | str) -> str:
    """(9, "minor") -> "A minor"."""
    pc, mode = as_key(key)
    return f"{NAMES[pc % 12]} {mode}"


def camelot(key: Key | str) -> str:
    """(9, "minor") -> "8A"; (0, "major") -> "8B"; "Am" -> "8A"."""
    pc, mode = as_key(key)
    major_pc = pc % 12 if mode == "major" else (pc + 3) % 12
    n = (8 + 7 * major_pc) % 12 or 12
    return f"{n}{'B' if mode == 'major' else 'A'}"


def open_key(key: Key | str) -> str:
    """(9, "minor") -> "1m"; (0, "major") -> "1d"."""
    code = camelot(key)
    n = (int(code[:-1]) - 8) % 12 + 1
    return f"{n}{'d' if code[-1] == 'B' else 'm'}"


def _from_wheel(n: int, minor: bool) -> Key:
    if not 1 <= n <= 12:
        raise ConfigError(f"not a key: Camelot and Open Key numbers run from 1 to 12, got {n}")
    major_pc = (7 * (n - 8)) % 12  # 7 is its own inverse mod 12
    return ((major_pc - 3) % 12, "minor") if minor else (major_pc, "major")


def parse_key(text: str) -> Key:
    """A key from a name ("A minor", "Am", "F# maj", "Bb", German "fis-Moll"), a Camelot code ("8A") or an Open
    Key code ("1m").

    Raises :class:`ConfigError` with the accepted forms for anything else.
    """
    s = _ACCIDENTAL_WORD.sub(lambda w: "#" if w.group(1).lower() == "sharp" else "b", str(text).strip())
    m = re.fullmatch(r"(\d{1,2})\s*([ABab]|[mdMD])", s)
    if m:
        n, letter = int(m.group(1)), m.group(2)
        if letter in "ABab":
            return _from_wheel(n, letter.upper() == "A")
        if not 1 <= n <= 12:
            return _from_wheel(n, False)  # the range error
        return _from_wheel((n + 6) % 12 + 1, letter.lower() == "m")
    m = _GERMAN.fullmatch(s)
    if m:
        pc = _GERMAN_PC[m.group(1).upper()] + {"is": 1, "es": -1, "s": -1}.get((m.group(2) or "").lower(), 0)
        return pc % 12, "minor" if m.group(3).lower() == "moll" else "major"
    m = _NAME.fullmatch(s)
    if m:
        pc = _PC[m.group(1).upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)
        rest = m.group(3).strip()
        if rest.startswith("-") and rest != "-":  # "C#-Moll"
            rest = rest[1:].strip()
        mode = "minor" if rest in _MINOR or rest.lower() in ("min", "minor", "moll") else (
            "major" if rest in _MAJOR or rest.lower() in ("maj", "major", "dur") else None)
        if mode is not None:
            return pc % 12, mode
    raise ConfigError(f"not a key: {text!r} (give a name like 'A minor', 'F#m', 'Bb', a Camelot code like '8A' "
                      "or an Open Key code like '1m')")


def parse_key_or_none(text: str | None) -> Key | None:
    """Like :func:`parse_key` for a tag value; None for empty or unreadable text. A tag holding the key twice
    ("8A/Am", "4A - Fm", as DJ tools write them) is read when its parts agree."""
    if not text:
        return None
    keys = set()
    for part in _KEY_PARTS.split(str(text)):
        try:
            keys.add(parse_key(part))
        except ConfigError:
            if part.strip():
                return None
    return keys.pop() if len(keys) == 1 else None


def compatible(a: Key | str, b: Key | str) -> bool:
    """Harmonically mixable: same Camelot code, one step either way on the wheel with the same letter, or the
    relative major/minor (same number, other letter)."""
    ca, cb = camelot(a), camelot(b)
    na, nb = int(ca[:-1]), int(cb[:-1])
    if ca[-1] == cb[-1]:
        return (na - nb) % 12 in (0, 1, 11)
    return na == nb


def compatible_codes(key: Key | str) -> list[str]:
    """The Camelot codes compatible with ``key`` (itself first)."""
    code = camelot(key)
    n, letter = int(code[:-1]), code[-1]
    up, down = n % 12 + 1, (n - 2) % 12 + 1
    return [code, f"{up}{letter}", f"{down}{letter}", f"{n}{'A' if letter == 'B' else 'B'}"]
