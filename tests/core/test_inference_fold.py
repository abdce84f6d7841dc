"""The inference copy of an encoder folds its batch norms without torch.fx: fx's tracing swaps
``nn.Module.__call__`` for the whole process, and a model run in another thread meanwhile failed ("module is not
installed as a submodule": the app's hum spectrogram, an evaluation started while a model loaded)."""

from __future__ import annotations

import threading

import torch

from musicemb_core.inference import _inference_net
from musicemb_core.models import ModelConfig
from musicemb_core.models.registry import build_encoder


def _resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    enc = build_encoder(ModelConfig(arch="resnet18", dim=16, width=8)).eval()
    for m in enc.modules():  # statistics a trained model has, so that folding them changes the weights
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return enc


def test_the_folded_copy_gives_the_encoders_vectors_without_a_batch_norm_left():
    enc = _resnet()
    x = torch.randn(4, 1, 64, 47)
    with torch.inference_mode():
        want = enc(x)
        net = _inference_net(enc)
        got = net(x.contiguous(memory_format=torch.channels_last))
    assert net is not enc and not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())  # the encoder itself is untouched
    assert torch.allclose(got, want, atol=1e-5)


def test_a_model_running_in_another_thread_while_an_encoder_is_folded_is_not_disturbed():
    enc, other = _resnet(), torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU()).eval()
    errors, done = [], threading.Event()

    def run_other():
        x = torch.randn(1, 1, 8, 8)
        while not done.is_set():
            try:
                with torch.inference_mode():
                    other(x)
            except Exception as e:  # noqa: BLE001 - what the other thread met is the finding
                errors.append(repr(e))
                return

    worker = threading.Thread(target=run_other)
    worker.start()
    try:
        for _ in range(30):
            _inference_net(enc)
    finally:
        done.set()
        worker.join(30)
    assert errors == []
