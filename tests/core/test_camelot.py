"""Key names, Camelot and Open Key codes, harmonic compatibility (pure functions)."""

from __future__ import annotations

import pytest

from musicemb_core.common.errors import ConfigError
from musicemb_core.features import camelot as cm
from musicemb_core.features.camelot import compatible, compatible_codes, key_name, open_key, parse_key


@pytest.mark.parametrize(("key", "code", "ok"), [
    ((9, "minor"), "8A", "1m"), ((0, "major"), "8B", "1d"), ((7, "major"), "9B", "2d"),
    ((4, "minor"), "9A", "2m"), ((5, "major"), "7B", "12d"), ((11, "major"), "1B", "6d"),
    ((8, "minor"), "1A", "6m"), ((6, "major"), "2B", "7d"), ((3, "major"), "5B", "10d"),
])
def test_codes(key, code, ok):
    assert cm.camelot(key) == code
    assert open_key(key) == ok
    assert parse_key(code) == key
    assert parse_key(ok) == key
    assert parse_key(key_name(key)) == key


@pytest.mark.parametrize(("text", "key"), [
    ("A minor", (9, "minor")), ("Am", (9, "minor")), ("a min", (9, "minor")), ("F#m", (6, "minor")),
    ("Bb", (10, "major")), ("Db major", (1, "major")), ("C", (0, "major")), ("8a", (9, "minor")),
    ("12B", (4, "major")), ("E flat minor", (3, "minor")), ("F sharp major", (6, "major")),
    ("F-sharp minor", (6, "minor")), ("a-Moll", (9, "minor")), ("C-Dur", (0, "major")), ("A-", (9, "minor")),
])
def test_parse_names(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("bad", ["", "H minor", "13A", "0B", "C lydian", "8C", "hello"])
def test_parse_rejects(bad):
    with pytest.raises(ConfigError, match="key"):
        parse_key(bad)


def test_compatibility_on_the_wheel():
    am = (9, "minor")  # 8A
    assert compatible(am, am)
    assert compatible(am, parse_key("9A")) and compatible(am, parse_key("7A"))
    assert compatible(am, parse_key("8B"))  # relative major: C major
    assert not compatible(am, parse_key("9B")) and not compatible(am, parse_key("10A"))
    assert not compatible(am, parse_key("A major"))  # parallel major is 11B
    assert compatible(parse_key("12A"), parse_key("1A"))  # the wheel wraps
    assert sorted(compatible_codes(am)) == sorted(["8A", "9A", "7A", "8B"])
    assert compatible_codes(parse_key("1B")) == ["1B", "2B", "12B", "1A"]


@pytest.mark.parametrize(("tag", "code"), [
    ("8A/Am", "8A"), ("4A - Fm", "4A"), ("Am | 8A", "8A"), ("8A/Em", None), ("8A/nonsense", None), ("A-", "8A"),
    ("", None), ("  ", None),
])
def test_a_tag_holding_the_key_twice_is_read_when_its_parts_agree(tag, code):
    """DJ tools write "8A/Am" or "4A - Fm"; such tags had no key at all."""
    key = cm.parse_key_or_none(tag)
    assert (None if key is None else cm.camelot(key)) == code


def test_key_codes_of_a_hand_edited_catalogue_key():
    """A key stored otherwise than the estimator spells it raised ValueError (the app's track table then showed no
    rows at all); a name that is no key is no code."""
    from musicemb_core.features.tempo_key import key_camelot, key_open

    assert key_camelot("A# minor") == key_camelot("Bb minor") == "3A" and key_open("A# minor") == "8m"
    assert key_camelot("Dorian") is key_open("Dorian") is key_camelot("") is None
