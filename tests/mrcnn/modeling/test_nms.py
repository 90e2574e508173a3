"""mrcnn/modeling/nms.py against tf.image.non_max_suppression (reference_ops.kernel_nms):
both of its methods, the tiles (keras.ops) and the kernel path."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import nms
from tests.mrcnn.modeling.reference_ops import kernel_nms


def _boxes(rng, batch, k, low=0.05, high=0.4):
    """Random boxes, many of them overlapping: [batch, k, 4] float32"""
    centre = rng.uniform(0.0, 1.0, (batch, k, 2))
    size = rng.uniform(low, high, (batch, k, 2))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1).astype(np.float32)


METHODS = ("tiles", "kernel")


def _assert_same_as_kernel(boxes, scores, max_output_size, iou_threshold, tile_size=64):
    expected, counts = (x.numpy() for x in kernel_nms(boxes, scores, max_output_size,
                                                      iou_threshold))
    for method in METHODS:
        indices, valid = nms.non_max_suppression(boxes, scores, max_output_size,
                                                 iou_threshold, tile_size=tile_size,
                                                 method=method)
        indices, valid = indices.numpy(), valid.numpy()
        assert indices.shape == valid.shape == (len(boxes), max_output_size)
        assert indices.dtype == np.int32 and valid.dtype == bool
        for b, count in enumerate(counts):
            np.testing.assert_array_equal(valid[b], np.arange(max_output_size) < count)
            np.testing.assert_array_equal(indices[b], expected[b])  # both 0 past the count
    return counts


@pytest.mark.parametrize("iou_threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_same_boxes_as_the_kernel_over_several_tiles(iou_threshold):
    rng = np.random.default_rng(1)
    boxes = _boxes(rng, 3, 300)
    scores = rng.uniform(size=(3, 300)).astype(np.float32)
    counts = _assert_same_as_kernel(boxes, scores, 120, iou_threshold)
    if 0.0 < iou_threshold < 1.0:
        assert 10 < counts.min() and counts.max() <= 120


def test_fewer_boxes_than_max_output_size():
    rng = np.random.default_rng(2)
    boxes, scores = _boxes(rng, 2, 50), rng.uniform(size=(2, 50)).astype(np.float32)
    counts = _assert_same_as_kernel(boxes, scores, 80, 0.5)  # K < D, one partial tile
    assert counts.max() < 50
    # every box kept: the output lists them all, best first
    counts = _assert_same_as_kernel(boxes, scores, 80, 1.0)
    assert counts.tolist() == [50, 50]


def test_padding_boxes_degenerate_and_inverted_boxes():
    rng = np.random.default_rng(3)
    boxes = _boxes(rng, 2, 200)
    boxes[0, 100:] = 0.0  # zero padding rows: no area, never suppress nor suppressed
    boxes[1, :40] = boxes[1, :40, [2, 3, 0, 1]].T  # corners given the other way round
    boxes[1, 40:60, 2] = boxes[1, 40:60, 0]  # zero height
    boxes[1, 60:70] = boxes[1, 70:80]  # duplicates (IoU 1)
    scores = rng.uniform(size=(2, 200)).astype(np.float32)
    counts = _assert_same_as_kernel(boxes, scores, 150, 0.6)
    assert counts[0] > 100  # the 100 padding rows are all kept, as the kernel keeps them


def test_scores_of_minus_inf_and_nan_are_never_kept():
    rng = np.random.default_rng(4)
    boxes = _boxes(rng, 1, 100, high=0.1)
    scores = rng.uniform(size=(1, 100)).astype(np.float32)
    scores[0, ::3] = -np.inf
    scores[0, 1::7] = np.nan
    scores[0, 2] = np.inf
    counts = _assert_same_as_kernel(boxes, scores, 100, 0.5)
    for method in METHODS:
        indices, valid = nms.non_max_suppression(boxes, scores, 100, 0.5, method=method)
        kept = indices.numpy()[0][valid.numpy()[0]]
        assert kept[0] == 2 and np.isfinite(scores[0, kept[1:]]).all()
        assert counts[0] == len(kept)
        # nothing at all to keep
        indices, valid = nms.non_max_suppression(
            boxes, np.full((1, 100), -np.inf, np.float32), 7, 0.5, method=method)
        assert not valid.numpy().any() and not indices.numpy().any()


def test_threshold_is_strict():
    # IoU exactly 0.5: kept at threshold 0.5, suppressed below it.
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 1, 2]]], np.float32)
    scores = np.array([[0.5, 0.9]], np.float32)
    for method in METHODS:
        for threshold, kept in ((0.5, [1, 0]), (0.49, [1])):
            indices, valid = nms.non_max_suppression(boxes, scores, 2, threshold, method=method)
            assert indices.numpy()[0][valid.numpy()[0]].tolist() == kept
    with pytest.raises(ValueError, match="iou_threshold"):
        nms.non_max_suppression(boxes, scores, 2, 1.5)
    with pytest.raises(ValueError, match="method"):
        nms.non_max_suppression(boxes, scores, 2, 0.5, method="fast")


def test_static_shapes_under_xla_and_unknown_k_while_tracing():
    rng = np.random.default_rng(5)
    boxes, scores = _boxes(rng, 2, 100), rng.uniform(size=(2, 100)).astype(np.float32)
    expected = nms.non_max_suppression(boxes, scores, 30, 0.5, tile_size=32, method="tiles")
    # tf.image.non_max_suppression cannot compile when max_output_size > K.
    compiled = tf.function(lambda b, s: nms.non_max_suppression(b, s, 120, 0.5, tile_size=32),
                           jit_compile=True)
    indices, _ = compiled(boxes, scores)
    assert indices.shape == (2, 120)
    np.testing.assert_array_equal(indices[:, :30], expected[0])
    for method in METHODS:
        unknown = tf.function(
            lambda b, s, m=method: nms.non_max_suppression(b, s, 30, 0.5, tile_size=32, method=m),
            input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None])])
        for got, want in zip(unknown(boxes, scores), expected):
            np.testing.assert_array_equal(got, want)
