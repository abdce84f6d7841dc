import time, numpy as np, pytest, os, subprocess
import sounddevice as sd

def run(dev, bs=1024, kind="in", lat=None, sr=48000):
    n = []
    if kind == "in":
        def cb(indata, frames, t, status): n.append(frames)
        s = sd.InputStream(device=dev, samplerate=sr, channels=1, blocksize=bs, callback=cb, latency=lat)
    else:
        def cb(outdata, frames, t, status): outdata[:] = 0; n.append(frames)
        s = sd.OutputStream(device=dev, samplerate=sr, channels=1, blocksize=bs, callback=cb, latency=lat)
    t1 = time.monotonic()
    with s:
        time.sleep(0.3)
    return (len(n), sum(n), round(time.monotonic() - t1, 2))

@pytest.mark.audio_device
def test_dbg(pulse_null_sink):
    for dev in ("pulse", "default"):
        for bs in (0, 512, 1024, 2048):
            for lat in ("low", "high", 0.05, 0.1):
                print(dev, bs, lat, run(dev, bs, "out", lat))
