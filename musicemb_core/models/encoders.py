"""Spectrogram encoders: ResNet18-style, the seeds' small 2-conv CNN, and VGG16 (optionally with local weights).

Every encoder maps log-mel input ``(batch, in_channels, n_mels, frames)``, any ``n_mels, frames >= 32``, to
``(batch, dim)`` through global average pooling, and names its layers (``layer_names``) for ``freeze_until``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from musicemb_core.common.errors import ConfigError
from musicemb_core.models.base import Encoder
from musicemb_core.models.config import ModelConfig
from musicemb_core.models.registry import register_encoder


def _init_convs(module: nn.Module) -> None:
    """torchvision's initialisation: Kaiming-normal convolutions (fan out), zero biases, unit BatchNorm."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN with an identity (or 1x1 conv-BN) shortcut.

    ``(batch, c_in, h, w)`` -> ``(batch, c_out, ceil(h / stride), ceil(w / stride))``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + shortcut)


@register_encoder("resnet18")
class ResNetEncoder(Encoder):
    """ResNet18 body (torchvision layout, ``cfg.in_channels`` input channels) + linear ``fc`` to ``cfg.dim``.

    Stem: 7x7 conv stride 2 + BN + ReLU + 3x3 max-pool stride 2; four stages of two basic blocks with widths
    ``w, 2w, 4w, 8w`` (``w = cfg.width``) and strides ``1, 2, 2, 2``; global average pooling; dropout; ``fc``.
    At ``width=64`` the body is torchvision's resnet18 (11,170,240 parameters with a 1-channel stem).
    """

    layer_names = ("stem", "layer1", "layer2", "layer3", "layer4", "fc")

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__(cfg)
        cfg = self.config
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(BasicBlock(w, w), BasicBlock(w, w))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w))
        self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w))
        self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 2), BasicBlock(8 * w, 8 * w))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(8 * w, cfg.dim)
        _init_convs(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, n_mels, frames)`` -> ``(batch, dim)``."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.dropout(x.mean(dim=(2, 3))))


@register_encoder("cnn2")
class CNN2Encoder(Encoder):
    """The seeds' small baseline: two strided convolutions, max-pool, global average pool, two dense layers.

    ``conv1``: 5x5 conv stride 2, 8 filters, ReLU; ``conv2``: 3x3 conv stride 2, 32 filters, ReLU, 2x2 max-pool;
    global average pooling (any input size); ``fc1``: dense 32 + ReLU; dropout; ``fc``: dense ``cfg.dim``
    (the embedding: the seeds' softmax over 16 classes belongs to a ``ClassifierHead``). Padding ``k // 2`` gives
    Keras ``same`` output sizes, ``ceil(n / 2)``. ``cfg.width`` is not used.
    """

    layer_names = ("conv1", "conv2", "fc1", "fc")

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__(cfg)
        cfg = self.config
        self.conv1 = nn.Sequential(nn.Conv2d(cfg.in_channels, 8, 5, 2, 2), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(8, 32, 3, 2, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.fc1 = nn.Sequential(nn.Linear(32, 32), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(32, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, n_mels, frames)`` -> ``(batch, dim)``."""
        x = self.conv2(self.conv1(x)).mean(dim=(2, 3))
        return self.fc(self.dropout(self.fc1(x)))


VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
"""Conv widths of VGG16's five blocks (configuration D); each block ends in a 2x2 max-pool."""


def _torchvision_names() -> dict[str, str]:
    """torchvision's ``features.N`` prefix of each VGG16 conv -> ours, ``blockB.J``."""
    names, i = {}, 0
    for b, widths in enumerate(VGG16_BLOCKS, 1):
        for j in range(len(widths)):
            names[f"features.{i}"] = f"block{b}.{2 * j}"
            i += 2  # conv, ReLU
        i += 1  # max-pool
    return names


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, weights_only=True, map_location="cpu")
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError, SafetensorError) as e:
        raise ConfigError(f"{path}: cannot read weights: {e}") from e
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    if odd := next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None):
        raise ConfigError(f"{path}: expected a state dict of tensors, {odd!r} is a {type(state[odd]).__name__}")
    return state


@register_encoder("vgg")
class VGGEncoder(Encoder):
    """VGG16 convolutions (plain conv + ReLU, no BatchNorm), global average pooling, dropout, linear ``fc``.

    The first conv takes ``cfg.in_channels`` channels, or 3 with ``cfg.vgg_rgb`` (a 1-channel input is then
    duplicated). A max-pool never shrinks a side below 1, so short inputs work. With ``cfg.weights`` the conv
    weights are read from that local file (see ``load_weights``). ``cfg.width`` is not used.
    """

    layer_names = ("block1", "block2", "block3", "block4", "block5", "fc")

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__(cfg)
        cfg = self.config
        c_in = 3 if cfg.vgg_rgb else cfg.in_channels
        for b, widths in enumerate(VGG16_BLOCKS, 1):
            layers: list[nn.Module] = []
            for c_out in widths:
                layers += [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.ReLU(inplace=True)]
                c_in = c_out
            setattr(self, f"block{b}", nn.Sequential(*layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c_in, cfg.dim)
        _init_convs(self)
        if cfg.weights is not None:
            self.load_weights(cfg.weights)

    def load_weights(self, path: str | Path) -> list[str]:
        """Copy VGG16 conv weights from a local file with torchvision key names (``features.N.weight|bias``).

        ``.safetensors`` files are read with safetensors, anything else with ``torch.load(weights_only=True)``.
        Only tensors of matching shape are copied; RGB kernels of the first conv are summed over their input
        channels when this encoder takes 1 channel. Classifier and unknown keys are ignored.

        Returns
        -------
        list of str
            Our parameter names that were loaded.
        """
        path = Path(path)
        state = _read_state_dict(path)
        own = self.state_dict()
        loaded = []
        with torch.no_grad():
            for theirs, ours in _torchvision_names().items():
                for kind in ("weight", "bias"):
                    src, dst = state.get(f"{theirs}.{kind}"), own[f"{ours}.{kind}"]
                    if src is None:
                        continue
                    if src.ndim == 4 and src.shape[1] == 3 and dst.shape[1] == 1:
                        src = src.sum(dim=1, keepdim=True)
                    if src.shape == dst.shape:
                        dst.copy_(src)
                        loaded.append(f"{ours}.{kind}")
        if not loaded:
            raise ConfigError(f"{path}: no VGG16 conv weights ('features.N.weight') of matching shape")
        return loaded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, n_mels, frames)`` -> ``(batch, dim)``."""
        if self.config.vgg_rgb:
            x = x.expand(-1, 3, -1, -1)
        for name in self.layer_names[:-1]:
            x = getattr(self, name)(x)
            x = F.max_pool2d(x, (min(2, x.shape[-2]), min(2, x.shape[-1])))
        return self.fc(self.dropout(x.mean(dim=(2, 3))))
