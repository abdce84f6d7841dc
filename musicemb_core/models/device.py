"""The torch device a ``--device`` name asks for, checked to exist on this machine."""

from __future__ import annotations

import torch

from musicemb_core.common.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA if there is a GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; one that this
    machine lacks is a :class:`ConfigError` naming it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:  # "gpu", "": torch's own long message
        raise ConfigError(f"--device {name!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from e
    if device.type not in ("cpu", "cuda", "mps"):  # "meta", "xla"...: nothing this project runs on
        raise ConfigError(f"--device {name}: not a device this project runs on; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"--device {name}: no CUDA GPU here (or torch built without CUDA); use --device cpu")
        if (device.index or 0) >= n:
            raise ConfigError(f"--device {name}: this machine has {n} CUDA GPU{'s' if n > 1 else ''} "
                              f"(cuda:0 to cuda:{n - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: Apple's MPS is not available here; use --device cpu")
    return device
