"""The tiny network's losses and detections on one Keras backend, from
given weights: the other side of tests/mrcnn/modeling/test_backends.py.

    KERAS_BACKEND=jax python -m tests.mrcnn.modeling.backend_run IN.npz OUT.npz

IN holds the weights of the training and inference networks (w_train_*,
w_infer_*, in `get_weights` order). Under any backend but TensorFlow,
importing TensorFlow fails here: the network, its targets, losses and
detection must not need it. Writes OUT with the five losses (unweighted,
of `compute_losses` in one test step), "detections" and "mrcnn_mask"
(compiled on JAX; TensorFlow runs op by op: jit on vs off is
tests/mrcnn/modeling/test_network.py's), and, through the user API
(`MaskRCNN` loading IN's folder's infer.h5 by name, `detect` on two
images), api{i}_rois / class_ids / scores / masks.
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
    jit = keras.backend.backend() != "tensorflow"
    train.compile(optimizer=keras.optimizers.SGD(1e-4), jit_compile=jit)
    logs = train.test_on_batch(inputs, return_dict=True)
    for name in LOSS_NAMES:
        out[name] = np.float64(logs[name])

    infer = network.build_network(config, "inference")
    infer.set_weights(_weights(data, "w_infer_"))
    infer.compile(jit_compile=jit)
    result = infer.predict_on_batch({k: inputs[k] for k in ("image", "image_meta")})
    out["detections"] = np.asarray(result["detections"])
    out["mrcnn_mask"] = np.asarray(result["mrcnn_mask"])
    out["backend"] = np.array(keras.backend.backend())
    out.update(detect_from_h5(os.path.join(os.path.dirname(in_path), "infer.h5"),
                              os.path.dirname(out_path)))
    np.savez(out_path, **out)


def detect_from_h5(weights, model_dir):
    """The user API on this backend: MaskRCNN built, its weights loaded by
    name from a legacy .h5 file, detect() on two images -> dict of arrays."""
    from mrcnn.model import MaskRCNN

    model = MaskRCNN("inference", TinyConfig(), model_dir)
    model.load_weights(weights, by_name=True)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (48, 64, 3)).astype(np.uint8),
              rng.integers(0, 255, (64, 40, 3)).astype(np.uint8)]
    out = {}
    for i, r in enumerate(model.detect(images)):
        for key in ("rois", "class_ids", "scores", "masks"):
            out[f"api{i}_{key}"] = r[key]
    return out


if __name__ == "__main__":
    main(*sys.argv[1:3])
