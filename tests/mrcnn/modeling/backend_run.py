"""The tiny network's losses and detections on one Keras backend, from
given weights: the other side of tests/mrcnn/modeling/test_backends.py.

    KERAS_BACKEND=jax python -m tests.mrcnn.modeling.backend_run IN.npz OUT.npz

IN holds the weights of the training and inference networks (w_train_*,
w_infer_*, in `get_weights` order). Under any backend but TensorFlow,
importing TensorFlow fails here: the network, its targets, losses and
detection must not need it. Writes OUT with the five losses (unweighted,
of `compute_losses` in one compiled test step), "detections",
"mrcnn_mask", and "train_losses": the total loss of 3 SGD steps (Keras'
own train step, compiled) on the same batch.
"""

import os
import sys

if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    sys.modules["tensorflow"] = None  # any import of TensorFlow fails

import keras
import numpy as np

from mrcnn.config import LOSS_NAMES
from mrcnn.modeling import network
from tests.mrcnn.modeling.tiny import TinyConfig, tiny_inputs


def _weights(data, prefix):
    keys = sorted((k for k in data.files if k.startswith(prefix)), key=lambda k: int(k[len(prefix):]))
    return [data[k] for k in keys]


def main(in_path, out_path):
    data = np.load(in_path)
    config = TinyConfig()
    inputs = tiny_inputs(config)
    out = {}

    train = network.build_network(config, "training")
    train.set_weights(_weights(data, "w_train_"))
    train.compile(optimizer=keras.optimizers.SGD(1e-4), jit_compile=True)
    logs = train.test_on_batch(inputs, return_dict=True)
    for name in LOSS_NAMES:
        out[name] = np.float64(logs[name])
    out["train_losses"] = np.array(
        [train.train_on_batch(inputs, return_dict=True)["loss"] for _ in range(3)])

    infer = network.build_network(config, "inference")
    infer.set_weights(_weights(data, "w_infer_"))
    infer.compile(jit_compile=True)
    result = infer.predict_on_batch({k: inputs[k] for k in ("image", "image_meta")})
    out["detections"] = np.asarray(result["detections"])
    out["mrcnn_mask"] = np.asarray(result["mrcnn_mask"])
    out["backend"] = np.array(keras.backend.backend())
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
