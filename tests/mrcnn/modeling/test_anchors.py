"""Exact-value tests for mrcnn/modeling/anchors.py: counts, coordinates, ordering."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import anchors, box_ops

STRIDES = (4, 8, 16, 32, 64)
SCALES = (32, 64, 128, 256, 512)
RATIOS = (0.5, 1.0, 2.0)


def _pixel_anchors(shape, anchor_stride=1):
    return anchors.pyramid_anchors(
        shape, SCALES, RATIOS, STRIDES, anchor_stride=anchor_stride, normalized=False
    ).numpy()


def _ratio_boxes(scale, cy, cx):
    """Expected anchors (ratio 0.5, 1, 2) centred at (cy, cx)."""
    out = []
    for r in RATIOS:
        h, w = scale / math.sqrt(r), scale * math.sqrt(r)
        out.append([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])
    return np.array(out, np.float32)


# ---------------------------------------------------------------------- counts
def test_feature_shapes():
    np.testing.assert_array_equal(
        np.asarray(anchors.feature_shapes((128, 128, 3), STRIDES)),
        [[32, 32], [16, 16], [8, 8], [4, 4], [2, 2]],
    )
    # ceil(side / stride)
    np.testing.assert_array_equal(
        np.asarray(anchors.feature_shapes((64, 192), STRIDES)),
        [[16, 48], [8, 24], [4, 12], [2, 6], [1, 3]],
    )
    np.testing.assert_array_equal(
        np.asarray(anchors.feature_shapes((100, 70), STRIDES)),
        [[25, 18], [13, 9], [7, 5], [4, 3], [2, 2]],
    )


@pytest.mark.parametrize(
    "shape, per_level",
    [
        ((128, 128), [32 * 32, 16 * 16, 8 * 8, 4 * 4, 2 * 2]),
        ((64, 192), [16 * 48, 8 * 24, 4 * 12, 2 * 6, 1 * 3]),
        ((100, 70), [25 * 18, 13 * 9, 7 * 5, 4 * 3, 2 * 2]),
    ],
)
def test_counts_per_level(shape, per_level):
    expected = 3 * sum(per_level)
    assert anchors.num_anchors(shape[0], shape[1], STRIDES, 3) == expected
    assert _pixel_anchors(shape).shape == (expected, 4)
    assert anchors.pyramid_anchors(shape, SCALES, RATIOS, STRIDES).shape[0] == expected
    for i, (scale, stride) in enumerate(zip(SCALES, STRIDES)):
        fshape = anchors.feature_shapes(shape, STRIDES)[i]
        level = anchors.level_anchors(scale, RATIOS, fshape, stride)
        assert level.shape == (3 * per_level[i], 4)


def test_counts_128_and_64x192_literal():
    assert anchors.num_anchors(128, 128, STRIDES, 3) == 4092
    assert anchors.num_anchors(64, 192, STRIDES, 3) == 3069


# ---------------------------------------------------------------- coordinates
def test_first_anchors_of_level_0():
    a = _pixel_anchors((128, 128))
    np.testing.assert_allclose(a[:3], _ratio_boxes(32, 0.0, 0.0), rtol=1e-6)
    # ratio 1 is a 32 x 32 square centred on (0, 0)
    np.testing.assert_allclose(a[1], [-16, -16, 16, 16], rtol=1e-6)
    # ratio 0.5 (width / height): tall, 32 * sqrt(2) high, 32 / sqrt(2) wide
    h, w = 32 * math.sqrt(2), 32 / math.sqrt(2)
    np.testing.assert_allclose(a[0], [-h / 2, -w / 2, h / 2, w / 2], rtol=1e-6)
    heights = a[:3, 2] - a[:3, 0]
    widths = a[:3, 3] - a[:3, 1]
    np.testing.assert_allclose(widths / heights, RATIOS, rtol=1e-6)
    np.testing.assert_allclose(heights * widths, [32 * 32] * 3, rtol=1e-5)


def test_anchor_at_feature_position_1_2():
    a = _pixel_anchors((128, 128))
    width0 = 32  # level-0 feature map is 32 x 32
    start = (1 * width0 + 2) * 3
    np.testing.assert_allclose(a[start : start + 3], _ratio_boxes(32, 4.0, 8.0), rtol=1e-6)
    # non-square image: level-0 feature map of 64 x 192 is 16 x 48
    a = _pixel_anchors((64, 192))
    start = (1 * 48 + 2) * 3
    np.testing.assert_allclose(a[start : start + 3], _ratio_boxes(32, 4.0, 8.0), rtol=1e-6)


def test_first_anchor_of_second_level():
    a = _pixel_anchors((128, 128))
    start = 32 * 32 * 3
    np.testing.assert_allclose(a[start : start + 3], _ratio_boxes(64, 0.0, 0.0), rtol=1e-6)
    # the last anchors of level 0 sit at feature (31, 31), centre (124, 124)
    np.testing.assert_allclose(a[start - 3 : start], _ratio_boxes(32, 124.0, 124.0), rtol=1e-6)
    # the last anchors of all, level 4 feature (1, 1) -> centre (64, 64)
    np.testing.assert_allclose(a[-3:], _ratio_boxes(512, 64.0, 64.0), rtol=1e-6)


def test_ordering_level_y_x_ratio():
    shape = (64, 192)
    a = _pixel_anchors(shape)
    fshapes = np.asarray(anchors.feature_shapes(shape, STRIDES))
    expected = []
    for (fh, fw), scale, stride in zip(fshapes, SCALES, STRIDES):
        for y in range(fh):
            for x in range(fw):
                expected.append(_ratio_boxes(scale, y * stride, x * stride))
    np.testing.assert_allclose(a, np.concatenate(expected), rtol=1e-6, atol=1e-4)


def test_anchor_stride_2():
    shape = (128, 128)
    a = _pixel_anchors(shape, anchor_stride=2)
    n = anchors.num_anchors(128, 128, STRIDES, 3, anchor_stride=2)
    # level sides 32, 16, 8, 4, 2 -> 16, 8, 4, 2, 1 positions
    assert n == 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)
    assert a.shape == (n, 4)
    # positions 0, 2, 4, ... of the feature map: centres 0, 8, 16, ... on level 0
    np.testing.assert_allclose(a[:3], _ratio_boxes(32, 0, 0), rtol=1e-6)
    np.testing.assert_allclose(a[3:6], _ratio_boxes(32, 0, 8), rtol=1e-6)
    np.testing.assert_allclose(a[16 * 3 : 16 * 3 + 3], _ratio_boxes(32, 8, 0), rtol=1e-6)
    # odd feature sides: ceil(3 / 2) = 2 positions
    assert anchors.num_anchors(64, 192, STRIDES, 3, anchor_stride=2) == 3 * (
        8 * 24 + 4 * 12 + 2 * 6 + 1 * 3 + 1 * 2
    )
    assert _pixel_anchors((64, 192), anchor_stride=2).shape[0] == anchors.num_anchors(
        64, 192, STRIDES, 3, anchor_stride=2
    )


def test_normalized_equals_box_ops_normalize():
    for shape in [(128, 128, 3), (64, 192, 3)]:
        pixel = anchors.pyramid_anchors(shape, SCALES, RATIOS, STRIDES, normalized=False)
        norm = anchors.pyramid_anchors(shape, SCALES, RATIOS, STRIDES, normalized=True)
        np.testing.assert_allclose(
            norm.numpy(), box_ops.normalize(pixel, shape[:2]).numpy(), rtol=1e-6
        )
    # default is normalised; level-0 ratio-1 anchor of a 129 x 129 image:
    # (-16, -16, 16, 16) -> (-16 / 128, -16 / 128, 15 / 128, 15 / 128)
    norm = anchors.pyramid_anchors((129, 129), SCALES, RATIOS, STRIDES).numpy()
    np.testing.assert_allclose(norm[1], [-0.125, -0.125, 15 / 128, 15 / 128], rtol=1e-6)


def test_works_in_graph_with_dynamic_shape():
    @tf.function(input_signature=[tf.TensorSpec([3], tf.int32)])
    def f(shape):
        return anchors.pyramid_anchors(shape, SCALES, RATIOS, STRIDES, normalized=False)

    out = f(tf.constant([64, 192, 3])).numpy()
    np.testing.assert_allclose(out, _pixel_anchors((64, 192)), rtol=1e-6)


@pytest.mark.parametrize("shape, stride", [((128, 192), 1), ((100, 70), 2)])
def test_pyramid_iou_equals_iou_with_pyramid_anchors_bit_for_bit(shape, stride):
    rng = np.random.default_rng(1)
    corners = np.sort(rng.uniform(-20, 220, (12, 2, 2)), axis=1)
    boxes = corners.reshape(12, 4)[:, [0, 2, 1, 3]].astype(np.float32)
    boxes[0] = [10, 10, 10, 30]  # degenerate: zero height
    args = ((8, 16, 32, 64, 128), [0.5, 1, 2], [4, 8, 16, 32, 64])
    all_anchors = anchors.pyramid_anchors((*shape, 3), *args, stride, normalized=False)
    expected = box_ops.iou(all_anchors, boxes).numpy()
    got = anchors.pyramid_iou((*shape, 3), *args, boxes, stride).numpy()
    np.testing.assert_array_equal(got, expected)
    empty = anchors.pyramid_iou((*shape, 3), *args, np.zeros((0, 4), np.float32), stride)
    assert empty.shape == (len(expected), 0)


def test_pyramid_iou_batched_equals_image_by_image():
    rng = np.random.default_rng(2)
    corners = np.sort(rng.uniform(-20, 140, (2, 5, 2, 2)), axis=2)
    boxes = corners.reshape(2, 5, 4)[..., [0, 2, 1, 3]].astype(np.float32)
    args = ((8, 16, 32, 64, 128), [0.5, 1, 2], [4, 8, 16, 32, 64])
    got = np.asarray(anchors.pyramid_iou((64, 96), *args, boxes))
    assert got.shape == (2, anchors.num_anchors(64, 96, args[2], 3), 5)
    for i in range(2):
        np.testing.assert_array_equal(got[i], np.asarray(anchors.pyramid_iou((64, 96), *args, boxes[i])))
