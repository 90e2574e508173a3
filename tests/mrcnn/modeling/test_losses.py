"""Exact-value tests for mrcnn/modeling/losses.py: hand-computed values, empty cases."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import losses

LN2, LN3 = math.log(2.0), math.log(3.0)


def _value(x):
    x = float(x.numpy())
    assert not math.isnan(x)
    return x


# -------------------------------------------------------------------- smooth_l1
def test_smooth_l1_values():
    y_true = tf.constant([0.0, 0.0, 0.0, 1.0, 3.0, -1.0])
    y_pred = tf.constant([0.5, 2.0, 1.0, 1.0, 0.0, -1.25])
    np.testing.assert_allclose(
        losses.smooth_l1(y_true, y_pred).numpy(), [0.125, 1.5, 0.5, 0.0, 2.5, 0.03125],
        rtol=1e-6,
    )


# ---------------------------------------------------------------- rpn_class_loss
def test_rpn_class_loss_zero_logits_is_ln2():
    match = tf.constant([[1, -1, 0, -1]])
    logits = tf.zeros([1, 4, 2])
    assert _value(losses.rpn_class_loss(match, logits)) == pytest.approx(LN2, rel=1e-6)


def test_rpn_class_loss_hand_computed():
    match = tf.constant([[1, 1, 0], [-1, 0, 0]])
    logits = tf.constant(
        [
            [[0.0, 0.0], [0.0, LN3], [9.0, -9.0]],  # ln 2, -ln(3 / 4), ignored
            [[0.0, 0.0], [-9.0, 9.0], [-9.0, 9.0]],  # ln 2, ignored, ignored
        ]
    )
    expected = (LN2 + math.log(4.0 / 3.0) + LN2) / 3
    assert _value(losses.rpn_class_loss(match, logits)) == pytest.approx(expected, rel=1e-6)


def test_rpn_class_loss_no_labelled_anchors_is_zero():
    logits = tf.Variable(tf.random.stateless_normal([2, 5, 2], seed=[1, 2]))
    with tf.GradientTape() as tape:
        loss = losses.rpn_class_loss(tf.zeros([2, 5], tf.int32), logits)
    assert _value(loss) == 0.0
    grad = tape.gradient(loss, logits).numpy()
    assert np.isfinite(grad).all() and not grad.any()


# ----------------------------------------------------------------- rpn_bbox_loss
def test_rpn_bbox_loss_hand_computed():
    match = tf.constant([[1, 0, 1, -1], [0, 0, 0, 1]])
    rpn_bbox = np.zeros([2, 3, 4], np.float32)  # S = 3
    rpn_bbox[0, 1] = [1, 1, 1, 1]  # target of image 0's second positive (anchor 2)
    deltas = np.full([2, 4, 4], 50.0, np.float32)  # non-positives: ignored
    deltas[0, 0] = [0.5, 0, 0, 0]  # 0.125
    deltas[0, 2] = [1, 1, 1, 3]  # 1.5
    deltas[1, 3] = [0, 0, 0, 0]  # 0
    loss = losses.rpn_bbox_loss(tf.constant(rpn_bbox), match, tf.constant(deltas))
    assert _value(loss) == pytest.approx(1.625 / 12, rel=1e-6)


def test_rpn_bbox_loss_no_positives_is_zero():
    match = tf.constant([[0, -1, -1], [-1, 0, 0]])
    deltas = tf.ones([2, 3, 4])  # a tensor, as the model passes (not a tf.Variable)
    with tf.GradientTape() as tape:
        tape.watch(deltas)
        loss = losses.rpn_bbox_loss(tf.ones([2, 4, 4]), match, deltas)
    assert _value(loss) == 0.0
    grad = tf.convert_to_tensor(tape.gradient(loss, deltas)).numpy()
    assert np.isfinite(grad).all() and not grad.any()


# -------------------------------------------------------------- mrcnn_class_loss
def test_mrcnn_class_loss_hand_computed():
    target = tf.constant([[1, 0, 2, 0]])
    logits = tf.constant(
        [
            [
                [0.0, 0.0, 0.0],  # target 1: ln 3 (predicts class 0, active)
                [LN2, 0.0, 0.0],  # target 0: -ln(2 / 4) = ln 2
                [0.0, 0.0, 5.0],  # predicts class 2, inactive: ignored
                [0.0, 9.0, -9.0],  # padding row: ignored
            ]
        ]
    )
    active = tf.constant([[1, 1, 0]])
    valid = tf.constant([[True, True, True, False]])
    loss = losses.mrcnn_class_loss(target, logits, active, valid)
    assert _value(loss) == pytest.approx((LN3 + LN2) / 2, rel=1e-6)
    # every class active and every row valid: the plain mean of the four
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits).numpy()
    loss = losses.mrcnn_class_loss(target, logits, tf.ones([1, 3]), tf.ones([1, 4], tf.bool))
    assert _value(loss) == pytest.approx(ce.mean(), rel=1e-6)


def test_mrcnn_class_loss_per_image_active_classes():
    target = tf.constant([[1], [1]])
    logits = tf.constant([[[0.0, 0.0, 5.0]], [[0.0, 0.0, 5.0]]])  # both predict class 2
    active = tf.constant([[1, 1, 0], [1, 1, 1]])  # inactive only in image 0
    valid = tf.ones([2, 1], tf.bool)
    expected = float(tf.nn.sparse_softmax_cross_entropy_with_logits([1], logits[1]).numpy()[0])
    loss = losses.mrcnn_class_loss(target, logits, active, valid)
    assert _value(loss) == pytest.approx(expected, rel=1e-6)


def test_mrcnn_class_loss_no_valid_rows_is_zero():
    loss = losses.mrcnn_class_loss(
        tf.zeros([2, 3], tf.int32), tf.ones([2, 3, 4]), tf.ones([2, 4]), tf.zeros([2, 3], tf.bool)
    )
    assert _value(loss) == 0.0


# --------------------------------------------------------------- mrcnn_bbox_loss
def test_mrcnn_bbox_loss_uses_own_class_channel():
    target_ids = tf.constant([[2, 0, 1]])
    target = np.array([[[0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], [1, 1, 1, 1]]], np.float32)
    pred = np.full([1, 3, 3, 4], 100.0, np.float32)  # wrong channels: huge error
    pred[0, 0, 2] = target[0, 0] + [0.5, 0, 0, 0]  # 0.125
    pred[0, 2, 1] = target[0, 2] + [0, 0, -2, 0]  # 1.5
    loss = losses.mrcnn_bbox_loss(tf.constant(target), target_ids, tf.constant(pred))
    assert _value(loss) == pytest.approx(1.625 / 8, rel=1e-5)


def test_mrcnn_bbox_loss_no_positives_is_zero():
    loss = losses.mrcnn_bbox_loss(tf.ones([2, 3, 4]), tf.zeros([2, 3], tf.int32),
                                  tf.ones([2, 3, 5, 4]))
    assert _value(loss) == 0.0


# --------------------------------------------------------------- mrcnn_mask_loss
def test_mrcnn_mask_loss_uses_own_class_channel():
    target_ids = tf.constant([[2, 0]])
    target = np.zeros([1, 2, 2, 2], np.float32)
    target[0, 0] = [[1, 0], [1, 0]]
    target[0, 1] = 1.0  # negative row: ignored
    pred = np.zeros([1, 2, 2, 2, 3], np.float32)  # other channels: 0 -> large loss
    pred[0, 0, :, :, 2] = [[0.5, 0.5], [0.9, 0.1]]
    loss = losses.mrcnn_mask_loss(tf.constant(target), target_ids, tf.constant(pred))
    expected = (LN2 + LN2 - math.log(0.9) - math.log(0.9)) / 4
    assert _value(loss) == pytest.approx(expected, rel=1e-5)


def test_mrcnn_mask_loss_saturated_predictions_are_finite():
    target = tf.ones([1, 1, 2, 2])
    pred = tf.zeros([1, 1, 2, 2, 2])  # probability 0 of a set pixel: clipped at 1e-7
    loss = _value(losses.mrcnn_mask_loss(target, tf.constant([[1]]), pred))
    assert loss == pytest.approx(-math.log(1e-7), rel=1e-2)


def test_mrcnn_mask_loss_no_positives_is_zero():
    pred = tf.fill([2, 3, 4, 4, 3], 0.3)
    with tf.GradientTape() as tape:
        tape.watch(pred)
        loss = losses.mrcnn_mask_loss(tf.ones([2, 3, 4, 4]), tf.zeros([2, 3], tf.int32), pred)
    assert _value(loss) == 0.0
    grad = tf.convert_to_tensor(tape.gradient(loss, pred)).numpy()
    assert np.isfinite(grad).all() and not grad.any()
