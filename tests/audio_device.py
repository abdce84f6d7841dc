"""Real audio I/O for tests: a private PulseAudio daemon with a null sink, reached by PortAudio's "pulse" device.

The daemon runs as root with its own HOME and XDG_RUNTIME_DIR (a temporary folder), so it never meets a
user's sound server; this process finds it through PULSE_SERVER. Whatever is played on the null sink
``musicemb_test`` can be recorded back from its monitor ``musicemb_test.monitor`` (the default source).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time

import pytest

SINK = "musicemb_test"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its (re)parent counts as gone
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have gone already
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies (Linux prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _reinit_portaudio(sd) -> None:
    """Make PortAudio enumerate the devices again (it lists them only when initialised)."""
    sd._terminate()
    sd._initialize()


def _streams_run(sd, frames: int = 9600, tries: int = 3) -> bool:
    """Warm up: open duplex streams until one moves ``frames`` frames within 3 s (the first may stall)."""
    for _ in range(tries):
        moved = []

        def callback(indata, outdata, n, time_info, status, moved=moved):
            outdata[:] = 0
            moved.append(n)

        with sd.Stream(samplerate=48000, channels=1, callback=callback):
            deadline = time.monotonic() + 3
            while sum(moved) < frames and time.monotonic() < deadline:
                time.sleep(0.01)
        if sum(moved) >= frames:
            return True
    return False


@pytest.fixture(scope="session")
def pulse_null_sink(tmp_path_factory):
    """Start PulseAudio with a 48 kHz stereo null sink as the default sink and its monitor as default source.

    Yields a dict: ``pid``, ``server`` (PULSE_SERVER), ``sink``, ``source``, ``device`` (PortAudio index of
    "pulse", also made sounddevice's default in and out). Skips with the reason when that cannot be set up.
    """
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("pulseaudio/pactl not installed: apt-get install -y pulseaudio pulseaudio-utils "
                    "libasound2-plugins")
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        pytest.skip(f"sounddevice/PortAudio unavailable ({e}): apt-get install -y libportaudio2")
    home = tmp_path_factory.mktemp("pulse")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    server = f"unix:{runtime}/pulse/native"
    daemon_env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
                  "XDG_CONFIG_HOME": str(home / ".config")}
    daemon_env.pop("PULSE_SERVER", None)
    # Not --exit-idle-time=-1: if this test process is killed before its teardown, the keep-alive recorder
    # below dies with it and the daemon, left without clients, exits by itself 10 s later.
    cmd = ["pulseaudio", "-D", "-n", "--exit-idle-time=10", f"--log-target=newfile:{home}/pulse.log",
           "--load=module-native-protocol-unix",
           f"--load=module-null-sink sink_name={SINK} rate=48000 channels=2"]
    try:
        r = subprocess.run(cmd, env=daemon_env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.skip("pulseaudio -D did not return within 30 s")
    pid_file = runtime / "pulse" / "pid"
    if r.returncode != 0 or not pid_file.exists():
        log = (home / "pulse.log").read_text() if (home / "pulse.log").exists() else ""
        pytest.skip(f"pulseaudio could not start (exit {r.returncode}): {(r.stderr + log).strip()[-800:]}")
    pid = int(pid_file.read_text().split()[0])
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_COOKIE")}
    keepalive = None
    try:
        os.environ["PULSE_SERVER"] = server
        os.environ["PULSE_COOKIE"] = str(home / ".config" / "pulse" / "cookie")
        for args in (["set-default-sink", SINK], ["set-default-source", f"{SINK}.monitor"]):
            r = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                pytest.skip(f"pactl {' '.join(args)} failed: {r.stderr.strip()}")
        # An idle null sink renders 2 s ahead, so every new stream would stall for up to 2 s: a low-latency
        # recorder kept on its monitor holds the sink's latency at 10 ms (and keeps the daemon from idling).
        keepalive = subprocess.Popen(["parecord", "--raw", "--latency-msec=10", f"--device={SINK}.monitor",
                                      os.devnull], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        _reinit_portaudio(sd)
        names = [d["name"] for d in sd.query_devices()]
        if "pulse" not in names:
            pytest.skip(f"PortAudio sees no 'pulse' ALSA device (libasound2-plugins missing?); devices: {names}")
        index = names.index("pulse")
        sd.default.device = (index, index)
        if not _streams_run(sd):
            pytest.skip("PortAudio streams through PulseAudio's null sink moved no audio in 3 tries of 3 s")
        yield {"pid": pid, "server": server, "sink": SINK, "source": f"{SINK}.monitor", "device": index}
    finally:
        sd.default.device = None  # back to PortAudio's own default
        if keepalive is not None:
            keepalive.terminate()
            keepalive.wait(5)
        _kill(pid)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reinit_portaudio(sd)
