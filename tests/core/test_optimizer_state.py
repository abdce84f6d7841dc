"""The optimizer state of a resumable run is saved without pickle (safetensors + JSON) and read back exactly."""

from __future__ import annotations

import pytest
import torch

from musicemb_core.common.errors import ConfigError
from musicemb_core.models import checkpoint as ckpt


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("make", [lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-4),
                                  lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)])
def test_optimizer_state_round_trips_exactly_without_pickle(tmp_path, make):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = make(net.parameters())
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    ckpt.save_resume(tmp_path, {"net": net}, opt, {"epoch": 1, "step": 0})
    files = sorted(p.name for p in (tmp_path / "resume").iterdir())
    assert files == ["model.safetensors", "optimizer.json", "optimizer.safetensors", "state.json"]
    _, state, counters = ckpt.load_resume(tmp_path)
    assert _same(opt.state_dict(), state) and counters == {"epoch": 1, "step": 0}
    # A fresh optimizer loaded with it takes the very same next step.
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    twin.load_state_dict(net.state_dict())
    opt2 = make(twin.parameters())
    opt2.load_state_dict(state)
    x = torch.randn(5, 3)
    for o, n in ((opt, net), (opt2, twin)):
        o.zero_grad()
        n(x).pow(2).sum().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters(), strict=True))


def test_damaged_optimizer_state_is_a_config_error(tmp_path):
    net = torch.nn.Linear(2, 2)
    ckpt.save_resume(tmp_path, {"net": net}, torch.optim.AdamW(net.parameters()), {"epoch": 0, "step": 0})
    (tmp_path / "resume" / "optimizer.json").write_text("{not json")
    with pytest.raises(ConfigError, match="optimizer.json: cannot read the optimizer state"):
        ckpt.load_resume(tmp_path)
