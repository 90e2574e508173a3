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

from mrcnn.config import Config
from mrcnn.data.image import compose_image_meta
from mrcnn.modeling import network

SIZE = 64


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 3
    BACKBONE = "resnet14"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = SIZE
    IMAGE_MAX_DIM = SIZE
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_CONV_DIM = 16
    RPN_CONV_DIM = 32
    MINI_MASK_SHAPE = (28, 28)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 1024  # >= the 1023 anchors of 64 x 64
    POST_NMS_ROIS_TRAINING = 8
    POST_NMS_ROIS_INFERENCE = 8
    MAX_GT_INSTANCES = 3
    TRAIN_ROIS_PER_IMAGE = 11  # = proposals + instances: all are taken
    ROI_POSITIVE_RATIO = 1.0
    DETECTION_MAX_INSTANCES = 24  # >= proposals x classes: no cut among ties
    DETECTION_MIN_CONFIDENCE = 0.0
    WEIGHT_DECAY = 1e-4


def _inputs(config):
    rng = np.random.default_rng(0)
    meta = compose_image_meta(0, (SIZE, SIZE, 3), (SIZE, SIZE, 3), (0, 0, SIZE, SIZE), 1.0,
                              np.ones(config.NUM_CLASSES))
    boxes = np.array([[[0.1, 0.1, 0.5, 0.6], [0.5, 0.4, 0.9, 0.95], [0, 0, 0, 0]],
                      [[0.2, 0.3, 0.7, 0.6], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
    masks = np.zeros((2, 3, 28, 28), np.uint8)
    masks[:, :2, 4:24, 6:20] = 1
    return {
        "image": rng.normal(0, 50, (2, SIZE, SIZE, 3)).astype(np.float32),
        "image_meta": np.stack([meta, meta]).astype(np.float32),
        "gt_class_ids": np.array([[1, 2, 0], [-1, 0, 0]], np.int32),  # a crowd too
        "gt_boxes": boxes,
        "gt_masks": masks,
    }


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
    model = network.build_network(config, "inference")
    inputs = {k: tf.constant(v) for k, v in _inputs(config).items()
              if k in ("image", "image_meta")}
    # Class 1 likeliest for every ROI: detections whatever the random weights.
    bias = np.zeros(model.classifier.class_logits.bias.shape, np.float32)
    bias[1] = 5.0
    model.classifier.class_logits.bias.assign(bias)
    out = {}
    for jit in (False, True):
        graph = tf.function(lambda x: model(x, training=False), jit_compile=jit)
        out[jit] = {k: v.numpy() for k, v in graph(inputs).items()}
    for image in range(2):
        on, off = out[True]["detections"][image], out[False]["detections"][image]
        on, off = on[on[:, 4] > 0], off[off[:, 4] > 0]
        assert len(off) > 0 and len(on) == len(off)
        # The same detections, up to the order of equal scores.
        on, off = on[np.lexsort(on[:, :5].T)], off[np.lexsort(off[:, :5].T)]
        np.testing.assert_array_equal(on[:, 4], off[:, 4])
        np.testing.assert_allclose(on[:, :4], off[:, :4], atol=1e-5)
        np.testing.assert_allclose(on[:, 5], off[:, 5], atol=1e-5)
    np.testing.assert_allclose(out[True]["mrcnn_mask"], out[False]["mrcnn_mask"], atol=1e-4)
