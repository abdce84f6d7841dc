"""FluidSynth training renderings for QBH: the reserved soundfont and collections are refused, arrangements keep
the melody where the timeline says, the tune split's figures are never drawn for training."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.common.errors import ConfigError
from musicemb_core.data import soundfont_songs as sfs
from musicemb_core.data.melodies import Melody
from musicemb_core.training.qbh_fit import QBHTrainConfig

FLUIDR3 = sfs.SOUNDFONT_DIRS[0] / "FluidR3_GM.sf2"


def _melody(name: str = "essenFolksong/erk1.abc#0", n: int = 24) -> Melody:
    rng = np.random.default_rng(len(name))
    pitch = 60 + np.cumsum(rng.integers(-2, 3, n))
    dur = rng.choice([0.5, 1.0, 1.0, 2.0], n).astype(np.float32)
    return Melody(name, "", pitch.astype(np.int16), np.concatenate([[0.0], np.cumsum(dur)[:-1]]).astype(np.float32),
                  dur)


@pytest.mark.parametrize("path", ["/usr/share/sounds/sf2/TimGM6mb.sf2", "/elsewhere/timgm6mb.SF2"])
def test_the_evaluation_soundfont_is_refused(path, tmp_path):
    with pytest.raises(ConfigError, match="reserved for evaluation"):
        sfs.check_soundfont(path)
    with pytest.raises(ConfigError, match="reserved for evaluation"):
        QBHTrainConfig(soundfonts=(path,), n_soundfont_songs=10)
    with pytest.raises(ConfigError, match="reserved for evaluation"):
        sfs.render_songs([_melody()], [1], soundfont=path)
    target = tmp_path / "TimGM6mb.sf2"
    target.write_bytes(b"")
    link = tmp_path / "default-GM.sf2"  # as Debian's alternatives link may point to it
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="reserved for evaluation"):
        sfs.check_soundfont(link)
    assert sfs.check_soundfont(tmp_path / "FluidR3_GM.sf2").name == "FluidR3_GM.sf2"


@pytest.mark.parametrize("name", ["oneills1850/0001-0050.abc#3", "bach/bwv66.6.mxl#0", "essenFolksong/han0001.abc#0",
                                  "airdsAirs/book1.abc#2"])
def test_reserved_melodies_are_refused_before_rendering(name):
    for split in ("train", "tune"):
        with pytest.raises(ConfigError, match="reserved for evaluation"):
            sfs.render_songs([_melody(), _melody(name)], [1, 2], soundfont=FLUIDR3, split=split)


def test_soundfont_songs_need_soundfonts():
    with pytest.raises(ConfigError, match="soundfonts"):
        QBHTrainConfig(n_soundfont_songs=5)
    with pytest.raises(ConfigError, match="soundfonts"):
        QBHTrainConfig(n_poly_songs=5)
    assert QBHTrainConfig().n_soundfont_songs == 0  # the library's `train --strategy qbh` needs no FluidSynth


def test_tune_figures_are_never_drawn_for_training():
    m = _melody()
    train = [sfs.draw_arrangement(np.random.default_rng(i), m) for i in range(300)]
    tune = [sfs.draw_arrangement(np.random.default_rng(i), m, split="tune") for i in range(300)]
    for layer in ("harmony", "bass", "drums"):
        held_out = set(sfs.TUNE_FIGURES[layer]) - {"none"}
        assert not held_out & {getattr(a, layer) for a in train}
        assert {getattr(a, layer) for a in tune} == set(sfs.TUNE_FIGURES[layer])
    assert {a.harmony for a in train} == set(sfs.HARMONY)
    assert all(-6 <= a.level_db <= 6 for a in train)


def test_poly_figures_are_their_own_split():
    m = _melody()
    poly = [sfs.draw_arrangement(np.random.default_rng(i), m, split="poly") for i in range(100)]
    assert {a.harmony for a in poly} == set(sfs.POLY_FIGURES["harmony"]) and {a.drums for a in poly} == {"none"}
    assert not set(sfs.POLY_FIGURES["harmony"]) & (set(sfs.HARMONY) | set(sfs.TUNE_FIGURES["harmony"]))
    with pytest.raises(ConfigError, match="split"):
        sfs.draw_arrangement(np.random.default_rng(0), m, split="check")


@pytest.mark.parametrize("harmony", ["hymn", "hymn_passing", "chorale", "arp_cross", "alberti", "pad", "strum"])
def test_the_timeline_is_where_the_lead_plays_and_the_hymn_stays_under_it(harmony):
    m = _melody()
    rng = np.random.default_rng(3)
    arr = sfs.draw_arrangement(rng, m)
    arr.harmony, arr.bass, arr.drums = harmony, "walking", "jazz"
    msgs, timeline, length = sfs.song_events(m, arr, rng, max_s=30.0)
    lead_on = sorted(t for t, b in msgs if b[0] == 0x90)
    assert len(timeline) >= 2 and length > timeline[-1, 0] + timeline[-1, 1]
    for on, _, pitch, _ in timeline:  # every melody note starts on channel 0 at its time and pitch
        assert any(abs(t - on) < 1e-6 and b[0] == 0x90 and b[1] == pitch for t, b in msgs), (on, pitch)
    assert lead_on[0] <= timeline[0, 0] + 1e-6
    if harmony in sfs.FOUR_PART:
        if harmony == "chorale":  # a chord a beat, and the inner voices move in eighths between them
            offbeat = [t for t, b in msgs if b[0] == 0x91 and abs((t * arr.bpm / 60) % 1 - 0.5) < 0.01]
            assert len(offbeat) >= 3
        for t, b in msgs:
            if b[0] == 0x91:  # alto and tenor: below the melody sounding then
                sounding = timeline[(timeline[:, 0] <= t + 1e-6) & (timeline[:, 0] + timeline[:, 1] > t + 1e-6)]
                assert not len(sounding) or b[1] < sounding[:, 2].min() + 1e-6


@pytest.mark.skipif(not (sfs.fluidsynth_available() and FLUIDR3.exists()),
                    reason="needs fluidsynth and fluid-soundfont-gm")
def test_fluidsynth_renders_a_batch_of_songs():
    ms = [_melody(), _melody("generated#1", 30)]
    out = sfs.render_songs(ms, [5, 6], soundfont=FLUIDR3, max_s=12.0)
    assert len(out) == 2
    for y, timeline, arr in out:
        assert y.dtype == np.float32 and 0.25 < np.abs(y).max() <= 0.95
        assert len(y) / 16000 >= timeline[-1, 0]
        first = int(timeline[0, 0] * 16000)
        assert np.abs(y[first:first + 8000]).max() > 0.01  # sound where the melody starts
        assert arr.style.startswith("gm-")
