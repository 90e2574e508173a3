"""Exact-value tests for mrcnn/modeling/proposals.py: top-k, decode, clip, NMS, padding."""

import math

import numpy as np
import tensorflow as tf

from mrcnn.modeling import proposals

# Matterport's Config values, given explicitly: the function has no defaults.
MATTERPORT = {"nms_threshold": 0.7, "pre_nms_limit": 6000, "std_dev": (0.1, 0.1, 0.2, 0.2)}


def generate_proposals(probs, deltas, anchors, **kw):
    return proposals.generate_proposals(probs, deltas, anchors, **{**MATTERPORT, **kw})


ANCHORS = np.array(
    [
        [0.1, 0.1, 0.3, 0.3],
        [0.11, 0.1, 0.31, 0.3],  # IoU 0.905 with anchor 0 (and with its decoded box)
        [0.6, 0.6, 0.9, 0.9],
        [-0.1, 0.8, 0.2, 1.1],  # sticks out of the image
        [0.5, 0.0, 0.6, 0.1],
    ],
    np.float32,
)
LOG2 = math.log(2.0)


def _probs(scores):
    scores = np.asarray(scores, np.float32)
    return np.stack([1 - scores, scores], axis=-1)


def _inputs():
    probs = np.stack([_probs([0.9, 0.8, 0.7, 0.6, 0.1]), _probs([0.9, 0.95, 0.3, 0.2, 0.5])])
    deltas = np.zeros((2, 5, 4), np.float32)
    deltas[0, 0] = [1.0, 0.0, 0.0, 0.0]  # dy = 1 * 0.1 * height 0.2 = 0.02
    deltas[0, 2] = [0.0, 0.0, LOG2 / 0.2, 0.0]  # height doubled: 0.6, centre 0.75
    return probs, deltas


def test_generate_proposals_exact_boxes():
    probs, deltas = _inputs()
    out = generate_proposals(probs, deltas, ANCHORS, proposal_count=6).numpy()
    assert out.shape == (2, 6, 4) and out.dtype == np.float32
    expected0 = [
        [0.12, 0.1, 0.32, 0.3],  # top anchor, moved by its deltas
        # anchor 1 (0.8) is suppressed by it
        [0.45, 0.6, 1.0, 0.9],  # decoded (0.45, 0.6, 1.05, 0.9), clipped
        [0.0, 0.8, 0.2, 1.0],  # anchor 3, clipped
        [0.5, 0.0, 0.6, 0.1],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    np.testing.assert_allclose(out[0], expected0, atol=1e-5)
    # image 1: anchor 1 scores highest and suppresses anchor 0; no deltas
    expected1 = [
        [0.11, 0.1, 0.31, 0.3],
        [0.5, 0.0, 0.6, 0.1],
        [0.6, 0.6, 0.9, 0.9],
        [0.0, 0.8, 0.2, 1.0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    np.testing.assert_allclose(out[1], expected1, atol=1e-5)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_generate_proposals_nms_threshold():
    probs, deltas = _inputs()
    out = generate_proposals(
        probs, deltas, ANCHORS, proposal_count=6, nms_threshold=0.95
    ).numpy()
    # IoU 0.9 is below the threshold now: anchor 1 survives in second place
    np.testing.assert_allclose(out[0, 1], [0.11, 0.1, 0.31, 0.3], atol=1e-5)
    np.testing.assert_allclose(out[1, :2], [[0.11, 0.1, 0.31, 0.3], [0.1, 0.1, 0.3, 0.3]],
                               atol=1e-5)
    assert np.any(out[:, 4] != 0, axis=-1).all() and np.all(out[:, 5] == 0)


def test_generate_proposals_count_and_pre_nms_limit():
    probs, deltas = _inputs()
    out = generate_proposals(probs, deltas, ANCHORS, proposal_count=2).numpy()
    assert out.shape == (2, 2, 4)
    np.testing.assert_allclose(out[0], [[0.12, 0.1, 0.32, 0.3], [0.45, 0.6, 1.0, 0.9]],
                               atol=1e-5)
    # Only the 2 best anchors are candidates: the second one is suppressed.
    out = generate_proposals(
        probs, deltas, ANCHORS, proposal_count=4, pre_nms_limit=2
    ).numpy()
    np.testing.assert_allclose(out[0], [[0.12, 0.1, 0.32, 0.3]] + [[0, 0, 0, 0]] * 3, atol=1e-5)
    np.testing.assert_allclose(out[1], [[0.11, 0.1, 0.31, 0.3]] + [[0, 0, 0, 0]] * 3, atol=1e-5)


def test_generate_proposals_std_dev_and_no_gradient():
    probs, deltas = _inputs()
    probs, deltas = tf.constant(probs), tf.constant(deltas)
    with tf.GradientTape() as tape:
        tape.watch(deltas)
        out = generate_proposals(
            probs, deltas, ANCHORS, proposal_count=6, std_dev=(1.0, 1.0, 1.0, 1.0)
        )
        loss = tf.reduce_sum(out)
    # dy = 1 * 0.2: (0.3, 0.1, 0.5, 0.3)
    np.testing.assert_allclose(out.numpy()[0, 0], [0.3, 0.1, 0.5, 0.3], atol=1e-5)
    assert tape.gradient(loss, deltas) is None
