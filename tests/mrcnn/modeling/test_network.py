"""MaskRCNNModel as one static graph: the training step and the inference
graph compiled with XLA (jit_compile=True) equal the same graph run op by
op (jit_compile=False), on TensorFlow on the CPU.

Tolerances (issue 16): losses relative 1e-4, gradients relative 1e-3 on
every trainable variable, detections the same (classes, boxes, scores).
The sampling takes every candidate anchor and ROI (no random subset), and
the model's SeedGenerator starts from the same state in both runs, so both
see the same targets in the same order.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import network
from tests.mrcnn.modeling.tiny import (
    TinyConfig,
    assert_same_detections,
    small_box_regressions,
)
from tests.mrcnn.modeling.tiny import tiny_inputs as _inputs


def _close(a, b, rtol):
    return np.linalg.norm(a - b) <= rtol * max(np.linalg.norm(b), 1e-12)


@pytest.fixture(scope="module")
def config():
    keras.utils.set_random_seed(3)
    return TinyConfig()


def test_training_step_jit_on_equals_off(config):
    model = network.build_network(config, "training")
    inputs = {k: tf.constant(v) for k, v in _inputs(config).items()}
    state = model.seed_generator.state.numpy()

    def step(x):
        with tf.GradientTape() as tape:
            parts = model.compute_losses(x, model(x, training=True))
            total = model.total_loss(parts)
        return parts, tape.gradient(total, model.trainable_variables)

    results = {}
    for jit in (False, True):
        model.seed_generator.state.assign(state)
        parts, grads = tf.function(step, jit_compile=jit)(inputs)
        results[jit] = ({k: float(v) for k, v in parts.items()}, [g.numpy() for g in grads])
    (off_parts, off_grads), (on_parts, on_grads) = results[False], results[True]
    assert all(v > 0 for v in off_parts.values()), off_parts  # every loss covers something
    for name, value in off_parts.items():
        assert on_parts[name] == pytest.approx(value, rel=1e-4), name
    for variable, on, off in zip(model.trainable_variables, on_grads, off_grads):
        assert _close(on, off, 1e-3), variable.path


def test_detections_jit_on_equal_off(config):
    keras.utils.set_random_seed(4)  # the weights, whichever tests ran before
    model = network.build_network(config, "inference")
    inputs = {k: tf.constant(v) for k, v in _inputs(config).items()
              if k in ("image", "image_meta")}
    # Class 1 likeliest for every ROI: detections whatever the random weights.
    bias = np.zeros(model.classifier.class_logits.bias.shape, np.float32)
    bias[1] = 5.0
    model.classifier.class_logits.bias.assign(bias)
    # Without it, random box regressions make slivers whose IoU in NMS
    # turns on the convolutions' last bits (XLA's and oneDNN's differ).
    small_box_regressions(model)
    out = {}
    for jit in (False, True):
        graph = tf.function(lambda x: model(x, training=False), jit_compile=jit)
        out[jit] = {k: v.numpy() for k, v in graph(inputs).items()}
    assert_same_detections(out[True]["detections"], out[False]["detections"],
                           box_atol=1e-4, score_atol=1e-4,
                           masks=(out[True]["mrcnn_mask"], out[False]["mrcnn_mask"]),
                           mask_atol=1e-4)
