"""Exact-value tests for mrcnn/modeling/detection.py: class choice, thresholds, per-class NMS."""

import numpy as np
import tensorflow as tf

from mrcnn.modeling import detection

WINDOW = np.array([0.0, 0.0, 0.9, 0.95], np.float32)
# Matterport's Config values, given explicitly: the functions have no defaults.
MATTERPORT = {"min_confidence": 0.7, "nms_threshold": 0.3, "std_dev": (0.1, 0.1, 0.2, 0.2)}


def refine_detections(rois, probs, deltas, window, **kw):
    return detection.refine_detections(rois, probs, deltas, window, **{**MATTERPORT, **kw})


def _case():
    rois = np.array(
        [
            [0.1, 0.1, 0.3, 0.3],  # class 1, 0.9, moved down by 0.02
            [0.11, 0.1, 0.31, 0.3],  # class 1, 0.8: overlaps ROI 0 -> suppressed
            [0.1, 0.1, 0.3, 0.3],  # class 2, 0.85: same place, other class -> kept
            [0.5, 0.5, 0.6, 0.6],  # background
            [0.4, 0.0, 0.5, 0.1],  # class 2, 0.6 < min_confidence
            [0.0, 0.0, 0.0, 0.0],  # padding row (confident class 1)
            [0.8, 0.8, 1.2, 1.2],  # class 1, 0.75: clipped to the window
        ],
        np.float32,
    )
    probs = np.array(
        [
            [0.05, 0.9, 0.05],
            [0.1, 0.8, 0.1],
            [0.1, 0.05, 0.85],
            [0.95, 0.03, 0.02],
            [0.2, 0.2, 0.6],
            [0.0, 1.0, 0.0],
            [0.1, 0.75, 0.15],
        ],
        np.float32,
    )
    # Large deltas on the channels that must not be used.
    deltas = np.full((7, 3, 4), 5.0, np.float32)
    for i, c in enumerate(probs.argmax(1)):
        deltas[i, c] = 0.0
    deltas[0, 1] = [1.0, 0.0, 0.0, 0.0]  # dy = 1 * 0.1 * 0.2 = 0.02
    return rois, probs, deltas


def test_refine_detections_exact():
    rois, probs, deltas = _case()
    out = refine_detections(rois, probs, deltas, WINDOW, max_instances=5).numpy()
    assert out.shape == (5, 6) and out.dtype == np.float32
    expected = [
        [0.12, 0.1, 0.32, 0.3, 1, 0.9],
        [0.1, 0.1, 0.3, 0.3, 2, 0.85],
        [0.8, 0.8, 0.9, 0.95, 1, 0.75],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_refine_detections_same_class_suppressed_only_above_threshold():
    rois, probs, deltas = _case()
    out = refine_detections(
        rois, probs, deltas, WINDOW, max_instances=6, nms_threshold=0.95
    ).numpy()
    # IoU 0.9 < 0.95: ROI 1 survives, sorted by score between 0.85 and 0.75
    np.testing.assert_allclose(out[:4, 5], [0.9, 0.85, 0.8, 0.75], atol=1e-6)
    np.testing.assert_allclose(out[2, :5], [0.11, 0.1, 0.31, 0.3, 1], atol=1e-5)
    np.testing.assert_array_equal(out[4:], 0)


def test_refine_detections_two_classes_overlap_both_survive():
    rois = np.array([[0.1, 0.1, 0.5, 0.5]] * 4, np.float32)
    probs = np.array(
        [[0, 0.9, 0.1], [0, 0.1, 0.95], [0, 0.8, 0.2], [0, 0.2, 0.8]], np.float32
    )
    deltas = np.zeros((4, 3, 4), np.float32)
    out = refine_detections(
        rois, probs, deltas, [0, 0, 1, 1], max_instances=4
    ).numpy()
    # one box per class, identical boxes
    np.testing.assert_allclose(out[:, 4:], [[2, 0.95], [1, 0.9], [0, 0], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(out[:2, :4], [[0.1, 0.1, 0.5, 0.5]] * 2, atol=1e-6)


def test_refine_detections_min_confidence_and_max_instances():
    rois, probs, deltas = _case()
    out = refine_detections(
        rois, probs, deltas, WINDOW, max_instances=2, min_confidence=0.5
    ).numpy()
    # ROI 4 (0.6) now passes, but only the 2 best are returned
    assert out.shape == (2, 6)
    np.testing.assert_allclose(out[:, 4:], [[1, 0.9], [2, 0.85]], atol=1e-6)
    out = refine_detections(
        rois, probs, deltas, WINDOW, max_instances=6, min_confidence=0.5
    ).numpy()
    np.testing.assert_allclose(out[:4, 5], [0.9, 0.85, 0.75, 0.6], atol=1e-6)
    np.testing.assert_allclose(out[3, :5], [0.4, 0.0, 0.5, 0.1, 2], atol=1e-6)


def test_refine_detections_nothing_detected():
    rois, probs, deltas = _case()
    out = refine_detections(
        rois, probs, deltas, WINDOW, max_instances=3, min_confidence=0.99
    ).numpy()
    np.testing.assert_array_equal(out, np.zeros((3, 6)))


def test_detect_batch():
    rois, probs, deltas = _case()
    windows = np.stack([WINDOW, [0.0, 0.0, 0.25, 1.0]]).astype(np.float32)
    out = detection.detect_batch(
        tf.constant(np.stack([rois, rois])),
        tf.constant(np.stack([probs, probs])),
        tf.constant(np.stack([deltas, deltas])),
        tf.constant(windows),
        max_instances=5, **MATTERPORT,
    ).numpy()
    assert out.shape == (2, 5, 6)
    np.testing.assert_allclose(out[0], refine_detections(
        rois, probs, deltas, WINDOW, max_instances=5).numpy(), atol=1e-6)
    # second window cuts at y = 0.25; ROI 6 clips to an empty box, which is
    # kept (Matterport drops zero-area boxes only when unmolding)
    np.testing.assert_allclose(
        out[1, :3],
        [[0.12, 0.1, 0.25, 0.3, 1, 0.9], [0.1, 0.1, 0.25, 0.3, 2, 0.85],
         [0.25, 0.8, 0.25, 1.0, 1, 0.75]],
        atol=1e-5,
    )
    np.testing.assert_array_equal(out[1, 3:], 0)
