"""The same network on TensorFlow and on JAX (issue 16): with the same
weights, the same losses (relative 1e-4) and detections (same classes,
boxes within 1e-3 normalised, scores within 1e-4); the JAX side runs with
TensorFlow blocked (tests/mrcnn/modeling/backend_run.py) and trains 3
compiled steps with finite losses.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mrcnn.config import LOSS_NAMES
from mrcnn.modeling import network
from tests.mrcnn.modeling.tiny import TinyConfig, assert_same_detections

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _run(backend, weights, out):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.mrcnn.modeling.backend_run", str(weights), str(out)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(out)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    pytest.importorskip("jax")
    tmp = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(5)
    config = TinyConfig()
    train, infer = network.build_network(config, "training"), network.build_network(config,
                                                                                     "inference")
    # Class 1 likeliest for every ROI: detections whatever the random weights.
    bias = np.zeros(infer.classifier.class_logits.bias.shape, np.float32)
    bias[1] = 5.0
    infer.classifier.class_logits.bias.assign(bias)
    weights = {**{f"w_train_{i}": w for i, w in enumerate(train.get_weights())},
               **{f"w_infer_{i}": w for i, w in enumerate(infer.get_weights())}}
    np.savez(tmp / "weights.npz", **weights)
    return {b: _run(b, tmp / "weights.npz", tmp / f"{b}.npz") for b in ("tensorflow", "jax")}


def test_same_losses(results):
    tf_out, jax_out = results["tensorflow"], results["jax"]
    assert str(jax_out["backend"]) == "jax"
    for name in LOSS_NAMES:
        assert float(tf_out[name]) > 0, name
        assert float(jax_out[name]) == pytest.approx(float(tf_out[name]), rel=1e-4), name


def test_same_detections(results):
    assert_same_detections(results["jax"]["detections"], results["tensorflow"]["detections"],
                           box_atol=1e-3, score_atol=1e-4)


def test_jax_trains_with_finite_losses(results):
    losses = results["jax"]["train_losses"]
    assert np.isfinite(losses).all()
