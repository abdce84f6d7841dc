"""Convert musicnn's MSD checkpoint (TensorFlow, in the ``musicnn`` wheel on PyPI, ISC licence) to the safetensors
file ``musicemb_core.models.musicnn`` loads (``resources/models/musicnn-msd/weights.safetensors``).

Reading the checkpoint needs TensorFlow, which musicemb does not depend on: run this in a separate environment.

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu numpy safetensors
    .venv/bin/pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn && unzip /tmp/musicnn/*.whl -d /tmp/musicnn
    /tmp/tfenv/bin/python bench/convert_musicnn.py /tmp/musicnn/musicnn/MSD_musicnn resources/models/musicnn-msd
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

EPS = 1e-3  # TensorFlow's batch-norm epsilon
CONVS = {"conv2d": "timbral.0", "conv2d_1": "timbral.1", "conv2d_2": "temporal.0", "conv2d_3": "temporal.1",
         "conv2d_4": "temporal.2", "conv2d_5": "mid.0", "conv2d_6": "mid.1", "conv2d_7": "mid.2"}
NORMS = {"batch_normalization": "bn_in", "batch_normalization_1": "bn_front.0", "batch_normalization_2": "bn_front.1",
         "batch_normalization_3": "bn_front.2", "batch_normalization_4": "bn_front.3",
         "batch_normalization_5": "bn_front.4", "batch_normalization_6": "bn_mid.0", "batch_normalization_7": "bn_mid.1",
         "batch_normalization_8": "bn_mid.2", "batch_normalization_9": "bn_pool", "batch_normalization_10": "bn_dense"}


def convert(read) -> dict[str, np.ndarray]:
    """``read(name)`` -> a checkpoint variable; returns the tagger's state dict (float32, contiguous)."""
    out = {}
    for tf_name, name in CONVS.items():  # (time, freq, in, out) -> (out, in, time, freq)
        out[f"{name}.weight"] = read(f"{tf_name}/kernel").transpose(3, 2, 0, 1)
        out[f"{name}.bias"] = read(f"{tf_name}/bias")
    for tf_name, name in NORMS.items():  # inference batch norm -> scale and shift
        gamma, beta = read(f"{tf_name}/gamma"), read(f"{tf_name}/beta")
        mean, var = read(f"{tf_name}/moving_mean"), read(f"{tf_name}/moving_variance")
        scale = gamma / np.sqrt(var + EPS)
        out[f"{name}.scale"], out[f"{name}.shift"] = scale, beta - mean * scale
    out["dense.weight"], out["dense.bias"] = read("dense/kernel").T, read("dense/bias")
    out["head.weight"], out["head.bias"] = read("dense_1/kernel").T, read("dense_1/bias")  # the 50 tags
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def main() -> None:
    import tensorflow as tf
    from safetensors.numpy import save_file

    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    reader = tf.compat.v1.train.NewCheckpointReader(str(src) + "/")
    dst.mkdir(parents=True, exist_ok=True)
    save_file(convert(reader.get_tensor), str(dst / "weights.safetensors"), metadata={"source": "musicnn 0.1.0 MSD_musicnn"})
    print(f"wrote {dst / 'weights.safetensors'}")


if __name__ == "__main__":
    main()
