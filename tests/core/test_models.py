"""Encoders, heads and the registry: shapes on real spectrogram sizes, exact parameter counts, freezing,
local VGG16 weights, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from musicemb_core.common.errors import ConfigError
from musicemb_core.models import (
    ENCODERS,
    ClassifierHead,
    Decoder,
    Encoder,
    ModelConfig,
    ProjectionHead,
    VGGEncoder,
    build_encoder,
    count_parameters,
    register_encoder,
)

ARCHS = ("resnet18", "cnn2", "vgg")
SHAPES = [(2, 1, 64, 64), (2, 1, 64, 301), (2, 1, 128, 431)]  # tiles, 3 s at 64 mels, 5 s at 128 mels


def _small(arch: str, **kw) -> torch.nn.Module:
    """Small width where the width is configurable (resnet18); cnn2 and vgg have fixed sizes."""
    return build_encoder(ModelConfig(arch=arch, width=8, **kw))


# --- shapes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[2]}x{s[3]}")
def test_encoder_output_shape(arch, shape):
    enc = _small(arch).eval()
    with torch.inference_mode():
        z = enc(torch.randn(shape))
    assert z.shape == (2, 128)
    assert torch.isfinite(z).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_encoder_dim_1024_and_smallest_input(arch):
    enc = _small(arch, dim=1024).eval()
    assert enc.dim == 1024
    with torch.inference_mode():
        assert enc(torch.randn(3, 1, 64, 301)).shape == (3, 1024)
        assert enc(torch.randn(1, 1, 32, 32)).shape == (1, 1024)


# --- parameter counts -------------------------------------------------------------------------------------

def _conv(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def _bn(c):
    return 2 * c


def _linear(n_in, n_out):
    return n_in * n_out + n_out


def _resnet18_body(w, c_in=1):
    """torchvision resnet18 without fc, ``c_in`` stem channels, base width ``w``."""
    def block(a, b, downsample):
        n = _conv(a, b, 3, False) + _bn(b) + _conv(b, b, 3, False) + _bn(b)
        return n + (_conv(a, b, 1, False) + _bn(b) if downsample else 0)

    n = _conv(c_in, w, 7, False) + _bn(w)
    n += 2 * block(w, w, False)
    for a, b in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)):
        n += block(a, b, True) + block(b, b, False)
    return n


def _vgg16_convs(c_in=1):
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    return sum(_conv(a, b, 3) for a, b in zip([c_in, *widths[:-1]], widths, strict=True))


def test_parameter_count_cnn2():
    enc = build_encoder(ModelConfig(arch="cnn2", dim=16))
    expected = _conv(1, 8, 5) + _conv(8, 32, 3) + _linear(32, 32) + _linear(32, 16)
    assert count_parameters(enc) == expected == 4128


def test_parameter_count_resnet18():
    enc = build_encoder(ModelConfig(arch="resnet18", width=64, dim=128))
    # torchvision's resnet18 has 11,689,512 parameters: fc 512 -> 1000 is 513,000, the 3-channel stem 9,408
    assert _resnet18_body(64) == 11_689_512 - 513_000 - 9_408 + 64 * 49
    assert count_parameters(enc) == _resnet18_body(64) + _linear(512, 128)
    assert count_parameters(build_encoder(ModelConfig(width=16, dim=32))) == _resnet18_body(16) + _linear(128, 32)


def test_parameter_count_vgg():
    enc = build_encoder(ModelConfig(arch="vgg", dim=128))
    assert _vgg16_convs(3) == 14_714_688  # torchvision vgg16.features
    assert count_parameters(enc) - count_parameters(enc.fc) == _vgg16_convs(1)
    assert count_parameters(enc.fc) == _linear(512, 128)
    rgb = build_encoder(ModelConfig(arch="vgg", vgg_rgb=True))
    assert count_parameters(rgb) - count_parameters(rgb.fc) == _vgg16_convs(3)


# --- freezing ---------------------------------------------------------------------------------------------

def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_freeze_until_layer3_trains_only_layer4_and_fc():
    torch.manual_seed(0)
    enc = build_encoder(ModelConfig(width=8, dim=16))
    enc.freeze_until("layer3")
    assert enc.frozen == ("stem", "layer1", "layer2", "layer3")
    enc.train()
    assert enc.training and enc.layer4.training and not enc.layer3.training and not enc.stem[1].training
    before = _snapshot(enc)
    opt = torch.optim.SGD(enc.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss = enc(torch.randn(4, 1, 64, 64)).pow(2).mean()
    loss.backward()
    opt.step()
    after = enc.state_dict()
    for key, old in before.items():
        layer = key.split(".")[0]
        if layer in enc.frozen:  # parameters and BatchNorm running statistics alike
            assert torch.equal(after[key], old), key
        else:
            assert not torch.equal(after[key], old), key
    assert count_parameters(enc, trainable_only=True) == (count_parameters(enc.layer4)
                                                          + count_parameters(enc.fc))


def test_freeze_keeps_earlier_layers_and_rejects_unknown_names():
    enc = build_encoder(ModelConfig(width=8))
    enc.freeze_until("layer2")
    enc.freeze_until("stem")  # does not unfreeze layer1..layer2
    assert enc.frozen == ("stem", "layer1", "layer2")
    with pytest.raises(ConfigError, match="layer9.*stem, layer1, layer2, layer3, layer4, fc"):
        enc.freeze_until("layer9")


@pytest.mark.parametrize("arch", ARCHS)
def test_freeze_everything(arch):
    enc = _small(arch)
    assert enc.layer_names[-1] == "fc"
    enc.freeze_until("fc")
    assert count_parameters(enc, trainable_only=True) == 0
    enc.train()
    assert enc.training and not any(getattr(enc, name).training for name in enc.layer_names)


# --- heads ------------------------------------------------------------------------------------------------

def test_decoder_reconstructs_a_tile_in_unit_range():
    dec = Decoder(128)
    x = dec(torch.randn(5, 128) * 10)
    assert x.shape == (5, 1, 64, 64)
    assert x.min() >= 0 and x.max() <= 1
    torch.nn.functional.binary_cross_entropy(x, torch.rand_like(x)).backward()
    assert dec.fc[0].weight.grad is not None


@pytest.mark.parametrize("out_shape", [(32, 32), (128, 128), (128, 64), (4, 16)])
def test_decoder_other_powers_of_two(out_shape):
    assert Decoder(16, out_shape, channels=16)(torch.randn(2, 16)).shape == (2, 1, *out_shape)


def test_decoder_rejects_other_sizes():
    with pytest.raises(ConfigError, match="powers of two"):
        Decoder(16, (60, 64))


def test_classifier_and_projection_heads():
    assert ClassifierHead(128, 16)(torch.randn(4, 128)).shape == (4, 16)
    proj = ProjectionHead(128)
    assert proj(torch.randn(4, 128)).shape == (4, 128)
    assert ProjectionHead(32, hidden=64, out=8)(torch.randn(3, 32)).shape == (3, 8)
    with pytest.raises(ConfigError):
        ClassifierHead(128, 0)


# --- VGG weights from a local file -------------------------------------------------------------------------

def _torchvision_vgg16_state(c_in=3):
    """Random tensors under torchvision's vgg16 names (features + a classifier, which must be ignored)."""
    torch.manual_seed(1)
    state, i = {}, 0
    widths = [(64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)]
    for block in widths:
        for c_out in block:
            state[f"features.{i}.weight"] = torch.randn(c_out, c_in, 3, 3) * 0.05
            state[f"features.{i}.bias"] = torch.randn(c_out) * 0.05
            c_in, i = c_out, i + 2
        i += 1
    state["classifier.6.weight"] = torch.randn(1000, 4096)
    state["classifier.6.bias"] = torch.randn(1000)
    return state


def test_vgg_loads_torch_save_file_and_sums_rgb_kernels(tmp_path):
    state = _torchvision_vgg16_state()
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    enc = build_encoder(ModelConfig(arch="vgg", weights=str(path)))
    w0 = state["features.0.weight"]
    torch.testing.assert_close(enc.block1[0].weight, w0.sum(dim=1, keepdim=True))
    assert torch.equal(enc.block1[0].bias, state["features.0.bias"])
    assert torch.equal(enc.block5[4].weight, state["features.28.weight"])
    assert len(enc.load_weights(path)) == 26

    # summing the kernels is exact: 1-channel input through the summed kernels == duplicated input through RGB
    rgb = build_encoder(ModelConfig(arch="vgg", vgg_rgb=True, weights=str(path))).eval()
    assert torch.equal(rgb.block1[0].weight, w0)
    rgb.fc.load_state_dict(enc.fc.state_dict())
    x = torch.rand(2, 1, 32, 48)
    with torch.inference_mode():
        torch.testing.assert_close(enc.eval()(x), rgb(x), rtol=1e-4, atol=1e-5)


def test_vgg_loads_safetensors_partially(tmp_path):
    full = _torchvision_vgg16_state(c_in=1)
    state = {k: v for k, v in full.items() if k.startswith(("features.0.", "features.2.", "classifier."))}
    state["features.5.weight"] = torch.randn(7, 7, 3, 3)  # wrong shape: skipped
    path = tmp_path / "vgg16.safetensors"
    save_file(state, str(path))
    enc = VGGEncoder(ModelConfig(arch="vgg"))
    before = enc.block2[0].weight.detach().clone()
    assert enc.load_weights(path) == ["block1.0.weight", "block1.0.bias", "block1.2.weight", "block1.2.bias"]
    assert torch.equal(enc.block1[0].weight, full["features.0.weight"])
    assert torch.equal(enc.block2[0].weight, before)


def test_vgg_weights_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope" / "vgg16.pth"
    with pytest.raises(ConfigError, match="nope/vgg16.pth"):
        build_encoder(ModelConfig(arch="vgg", weights=str(missing)))
    for name, data in (("junk.pth", b"not a pickle"), ("empty.pt", b""), ("junk.safetensors", b"\x00" * 20)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match=name):
            build_encoder(ModelConfig(arch="vgg", weights=str(tmp_path / name)))
    unrelated = tmp_path / "other.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, str(unrelated))
    with pytest.raises(ConfigError, match="other.safetensors.*no VGG16"):
        VGGEncoder(ModelConfig(arch="vgg")).load_weights(unrelated)


def test_model_weights_overwritten_in_place_are_refused_naming_the_file(tmp_path):
    """Bytes of a saved model's weights overwritten in place (same size, the safetensors header intact) loaded as
    other weights, without an error: every vector embedded with them was wrong."""
    from musicemb_core.common.config import FeatureConfig
    from musicemb_core.models import checkpoint as ckpt

    cfg = ModelConfig(arch="cnn2", dim=8)
    ckpt.save_model(tmp_path, ckpt.ModelInfo("toy", cfg, FeatureConfig(), 3.0), {"encoder": build_encoder(cfg)})
    ckpt.load_encoder(tmp_path)
    path = ckpt.weights_path(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-400] + bytes(400))  # the last tensor's values zeroed
    with pytest.raises(ConfigError, match=rf"{path.name}: damaged model weights"):
        ckpt.load_encoder(tmp_path)


# --- configuration and registry ---------------------------------------------------------------------------

def test_model_config_validation_and_round_trip():
    with pytest.raises(ConfigError, match="resnet51.*cnn2, resnet18, simstats, vgg"):
        ModelConfig(arch="resnet51")
    for bad in ({"dim": 0}, {"width": -8}, {"in_channels": 0}, {"dropout": 1.0}, {"weights": "w.pth"},
                {"vgg_rgb": True}, {"arch": "vgg", "vgg_rgb": True, "in_channels": 2}):
        with pytest.raises(ConfigError):
            ModelConfig(**bad)
    cfg = ModelConfig(arch="vgg", dim=64, dropout=0.5, vgg_rgb=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert build_encoder(cfg).config == cfg


def test_registry_and_arch_mismatch():
    assert set(ARCHS) <= set(ENCODERS)
    assert all(ENCODERS[a].arch == a for a in ARCHS)

    @register_encoder("test-tiny")
    class Tiny(Encoder):
        layer_names = ("fc",)

        def __init__(self, cfg=None):
            super().__init__(cfg)
            self.fc = torch.nn.Linear(1, self.dim)

        def forward(self, x):
            return self.fc(x.mean(dim=(1, 2, 3))[:, None])

    try:
        enc = build_encoder(ModelConfig(arch="test-tiny", dim=5))
        assert isinstance(enc, Tiny) and enc(torch.randn(2, 1, 32, 32)).shape == (2, 5)
        with pytest.raises(ValueError, match="already registered"):
            register_encoder("test-tiny")(Tiny)
    finally:
        del ENCODERS["test-tiny"]
    with pytest.raises(ConfigError, match="VGGEncoder is arch 'vgg'"):
        VGGEncoder(ModelConfig(arch="cnn2"))


@pytest.mark.parametrize("arch", ARCHS)
def test_same_seed_same_weights(arch):
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(_small(arch).state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(1)
    assert not all(torch.equal(states[0][k], v) for k, v in _small(arch).state_dict().items())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("arch", ARCHS)
def test_runs_on_cuda(arch):
    enc = _small(arch).cuda()
    z = enc(torch.randn(4, 1, 64, 301, device="cuda"))
    assert z.shape == (4, 128) and z.is_cuda
    z.sum().backward()


def test_the_registry_names_each_builtin_encoders_module_and_the_frozen_app_collects_them():
    """A config is checked against the built-in encoders' names without importing them (no torch for reading
    stored vectors): each name must be registered by the module the registry names, and the package's lazily
    loaded modules must be in the frozen app (PyInstaller cannot see a module imported by name)."""
    import musicemb_core.models as models
    from musicemb_core.models.registry import BUILTIN_ARCHS

    assert {name: cls.__module__ for name, cls in ENCODERS.items() if name in BUILTIN_ARCHS} == {
        name: f"musicemb_core.models.{module}" for name, module in BUILTIN_ARCHS.items()}
    spec = (Path(__file__).resolve().parents[2] / "packaging" / "musicemb.spec").read_text()
    for module in set(models._WHERE.values()) | set(BUILTIN_ARCHS.values()):
        assert f'"{module}"' in spec, module
    assert models.__all__ == sorted(models._WHERE) and all(getattr(models, n) is not None for n in models.__all__)
    with pytest.raises(AttributeError):
        models.NoSuchThing  # noqa: B018


def test_a_config_naming_an_unknown_encoder_lists_the_builtin_ones():
    with pytest.raises(ConfigError, match=r"unknown encoder 'nope'; registered: .*cnn2, resnet18, simstats.*vgg"):
        ModelConfig(arch="nope")
