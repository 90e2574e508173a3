"""Exact-value tests for mrcnn/modeling/box_ops.py: IoU, encode/decode, clip, normalize."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import box_ops


def _np(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


# ------------------------------------------------------------------------ area
def test_area():
    boxes = np.array([[0, 0, 10, 10], [2, 3, 5, 11], [4, 4, 4, 9]], np.float32)
    np.testing.assert_allclose(_np(box_ops.area(boxes)), [100, 24, 0])


# ------------------------------------------------------------------------- iou
def test_iou_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    others = np.array(
        [
            [0, 0, 10, 10],  # identical -> 1
            [20, 20, 30, 30],  # disjoint -> 0
            [0, 5, 10, 15],  # half of each overlaps: 50 / 150 -> 1/3
            [2, 2, 7, 7],  # contained: 25 / 100
            [10, 0, 20, 10],  # touching edge only -> 0
            [-5, -5, 15, 15],  # contains a: 100 / 400
        ],
        np.float32,
    )
    out = _np(box_ops.iou(a, others))
    assert out.shape == (1, 6)
    np.testing.assert_allclose(out[0], [1.0, 0.0, 1.0 / 3.0, 0.25, 0.0, 0.25], rtol=1e-6)


def test_iou_is_symmetric_and_pairwise_shape():
    rng = np.random.default_rng(0)
    y1x1 = rng.uniform(0, 50, (5, 2))
    b1 = np.concatenate([y1x1, y1x1 + rng.uniform(1, 30, (5, 2))], 1).astype(np.float32)
    y1x1 = rng.uniform(0, 50, (3, 2))
    b2 = np.concatenate([y1x1, y1x1 + rng.uniform(1, 30, (3, 2))], 1).astype(np.float32)
    ab = _np(box_ops.iou(b1, b2))
    ba = _np(box_ops.iou(b2, b1))
    assert ab.shape == (5, 3)
    np.testing.assert_allclose(ab, ba.T, rtol=1e-6)
    assert (ab >= 0).all() and (ab <= 1 + 1e-6).all()


def test_iou_degenerate_boxes_give_zero_not_nan():
    degenerate = np.array([[5, 5, 5, 5], [0, 0, 0, 10], [0, 0, 0, 0]], np.float32)
    normal = np.array([[0, 0, 10, 10]], np.float32)
    out = _np(box_ops.iou(degenerate, degenerate))
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, np.zeros((3, 3)))
    out = _np(box_ops.iou(degenerate, normal))
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, np.zeros((3, 1)))


def test_iou_gradient_of_degenerate_pairs_is_zero_not_nan():
    boxes = tf.constant([[5, 5, 5, 5], [0, 0, 10, 10]], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        out = box_ops.iou(boxes, boxes)
    grad = _np(tape.gradient(out, boxes))
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[0], np.zeros(4))  # only in 0 / 0 pairs


def test_iou_empty_inputs():
    a = np.zeros((0, 4), np.float32)
    b = np.array([[0, 0, 1, 1]], np.float32)
    assert _np(box_ops.iou(a, b)).shape == (0, 1)
    assert _np(box_ops.iou(b, a)).shape == (1, 0)


# -------------------------------------------------------------- encode/decode
def test_encode_hand_computed():
    box = [0.0, 0.0, 10.0, 10.0]  # centre (5, 5), 10 x 10
    target = [2.0, 4.0, 12.0, 24.0]  # centre (7, 14), 10 x 20
    np.testing.assert_allclose(
        _np(box_ops.encode([box], [target]))[0], [0.2, 0.9, 0.0, math.log(2.0)], rtol=1e-6
    )
    np.testing.assert_allclose(
        _np(box_ops.encode([box], [target], (0.1, 0.1, 0.2, 0.2)))[0],
        [2.0, 9.0, 0.0, math.log(2.0) / 0.2],
        rtol=1e-5,
    )


def test_encode_identity_is_zero():
    boxes = np.array([[1, 2, 5, 9], [0.1, 0.2, 0.3, 0.9]], np.float32)
    np.testing.assert_array_equal(_np(box_ops.encode(boxes, boxes)), np.zeros((2, 4)))


def test_decode_hand_computed():
    box = [[0.0, 0.0, 10.0, 10.0]]
    deltas = [[0.2, 0.9, 0.0, math.log(2.0)]]
    np.testing.assert_allclose(_np(box_ops.decode(box, deltas))[0], [2, 4, 12, 24], atol=1e-5)
    # Deltas given in std-dev units are multiplied back.
    deltas = [[2.0, 9.0, 0.0, math.log(2.0) / 0.2]]
    np.testing.assert_allclose(
        _np(box_ops.decode(box, deltas, (0.1, 0.1, 0.2, 0.2)))[0], [2, 4, 12, 24], atol=1e-5
    )


@pytest.mark.parametrize("std_dev", [(1.0, 1.0, 1.0, 1.0), (0.1, 0.1, 0.2, 0.2)])
def test_encode_decode_round_trip(std_dev):
    rng = np.random.default_rng(1)

    def random_boxes(n):
        y1x1 = rng.uniform(-20, 100, (n, 2))
        return np.concatenate([y1x1, y1x1 + rng.uniform(2, 60, (n, 2))], 1).astype(np.float32)

    boxes, targets = random_boxes(50), random_boxes(50)
    deltas = box_ops.encode(boxes, targets, std_dev)
    assert _np(deltas).shape == (50, 4)
    np.testing.assert_allclose(_np(box_ops.decode(boxes, deltas, std_dev)), targets, atol=2e-4)


def test_encode_decode_batched_shapes():
    boxes = np.tile(np.array([[[0, 0, 4, 4]]], np.float32), (2, 3, 1))  # [2, 3, 4]
    targets = boxes + 1.0
    deltas = box_ops.encode(boxes, targets)
    assert _np(deltas).shape == (2, 3, 4)
    np.testing.assert_allclose(_np(box_ops.decode(boxes, deltas)), targets, atol=1e-5)


# ------------------------------------------------------------------------ clip
def test_clip():
    boxes = np.array(
        [[-5, -3, 50, 80], [10, 10, 20, 20], [120, 130, 140, 150], [-10, 5, -2, 30]], np.float32
    )
    out = _np(box_ops.clip(boxes, [0, 0, 100, 100]))
    np.testing.assert_array_equal(
        out, [[0, 0, 50, 80], [10, 10, 20, 20], [100, 100, 100, 100], [0, 5, 0, 30]]
    )
    # Non-zero window origin, normalised coordinates.
    out = _np(box_ops.clip([[0.0, 0.05, 0.5, 0.95]], [0.1, 0.1, 0.9, 0.9]))
    np.testing.assert_allclose(out, [[0.1, 0.1, 0.5, 0.9]], rtol=1e-6)


# ------------------------------------------------------- normalize/denormalize
def test_normalize_matterport_convention():
    shape = (101, 201)  # H - 1 = 100, W - 1 = 200
    boxes = np.array([[10, 20, 51, 101], [0, 0, 101, 201]], np.float32)
    out = _np(box_ops.normalize(boxes, shape))
    np.testing.assert_allclose(out, [[0.1, 0.1, 0.5, 0.5], [0, 0, 1, 1]], rtol=1e-6)


def test_normalize_accepts_hwc_shape_and_tensor():
    boxes = np.array([[10, 20, 51, 101]], np.float32)
    out = _np(box_ops.normalize(boxes, tf.constant([101, 201, 3])))
    np.testing.assert_allclose(out, [[0.1, 0.1, 0.5, 0.5]], rtol=1e-6)


def test_denormalize_inverse_and_rounding():
    shape = (101, 201)
    np.testing.assert_array_equal(
        _np(box_ops.denormalize([[0.1, 0.1, 0.5, 0.5], [0, 0, 1, 1]], shape)),
        [[10, 20, 51, 101], [0, 0, 101, 201]],
    )
    # Rounded to whole pixels: 0.1049 * 100 = 10.49 -> 10, 0.1051 * 100 -> 11.
    np.testing.assert_array_equal(
        _np(box_ops.denormalize([[0.1049, 0.0, 0.1051, 0.0]], shape)), [[10, 0, 12, 1]]
    )
    rng = np.random.default_rng(2)
    pix = rng.integers(0, 100, (20, 4)).astype(np.float32)
    back = _np(box_ops.denormalize(box_ops.normalize(pix, (128, 96)), (128, 96)))
    np.testing.assert_array_equal(back, pix)
    assert back.dtype == np.float32


# --------------------------------------------------------------- nonzero_rows
def test_nonzero_rows():
    boxes = np.array([[0, 0, 0, 0], [0, 0, 0, 0.5], [1, 2, 3, 4], [0, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(_np(box_ops.nonzero_rows(boxes)), [False, True, True, False])
    assert _np(box_ops.nonzero_rows(np.zeros((0, 4), np.float32))).shape == (0,)
