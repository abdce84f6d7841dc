"""A hum played into PulseAudio's null sink, recorded back from its monitor by `musicemb hum --record`, finds the
song it was hummed from."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.audio import devices
from musicemb_core.audio.devices import play
from musicemb_core.cli import main as cli
from musicemb_core.common.progress import drive
from musicemb_core.data.hum_synthesis import render_hum, render_melody_song
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.search.qbh import HumSearcher
from tests.core.test_qbh import TUNES, _tune

SR = 16000


@pytest.mark.audio_device
def test_recorded_hum_finds_its_song(tmp_path, pulse_null_sink, capsys, monkeypatch):
    tunes = [_tune(name) for name in list(TUNES)[:4]]
    timelines = []
    for i, m in enumerate(tunes):
        y, tl, _ = render_melody_song(m, style=("rock", "chiptune")[i % 2], seed=90 + i, sr=SR)
        sf.write(tmp_path / f"song{i}.wav", y, SR)
        timelines.append(tl)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / f"song{i}.wav" for i in range(4)]))
        target = lib.track_by_path(str((tmp_path / "song2.wav").resolve())).id
    tl = timelines[2]
    sel = tl[(tl[:, 0] >= tl[3, 0]) & (tl[:, 0] < tl[3, 0] + 8.0)]
    hum = render_hum(np.stack([sel[:, 0] - sel[0, 0], sel[:, 1], sel[:, 2]], 1), seed=4242, sr=SR)
    assert len(hum.y) / SR < 11.0

    started, start = threading.Event(), devices.Recorder.start

    def start_then_say(self):
        start(self)
        started.set()
    monkeypatch.setattr(devices.Recorder, "start", start_then_say)

    def later():  # once the recorder runs (the CLI builds the melody index first: seconds on a loaded machine)
        if started.wait(120):
            time.sleep(0.3)
            play(hum.y, SR, blocking=True)

    player = threading.Thread(target=later)
    player.start()
    try:
        code = cli(["hum", str(tmp_path / "lib"), "--record", "13", "--json", "-k", "4", "-q"])
    finally:
        player.join()
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["query"] == "(recording)"
    results = out[0]["results"]
    assert results and results[0]["track_id"] == target, results
    assert results[0]["score"] > results[1]["score"]
    with Library(tmp_path / "lib") as lib:  # the recording scores as the hum itself does: nothing lost on the way
        clean = HumSearcher.open(lib).query(hum.y, SR, k=4)
    # each track's score, not the order of the other songs: they lie within 0.01 of each other and may swap
    recorded, hummed = ({r["track_id"]: r["score"] for r in rs} for rs in (results, clean))
    assert recorded.keys() == hummed.keys()
    assert max(abs(recorded[t] - hummed[t]) for t in hummed) < 0.05
    assert abs(results[0]["melody_score"] - clean[0]["melody_score"]) < 0.03
