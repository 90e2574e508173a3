"""Exact-value tests for mrcnn/modeling/roi_align.py: level assignment and pooled values."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import roi_align

IMAGE = (1024, 1024)


def _square(side_px, y=0.1, x=0.2, image=IMAGE):
    return [y, x, y + side_px / image[0], x + side_px / image[1]]


# ------------------------------------------------------------------ roi_levels
@pytest.mark.parametrize(
    "side, level",
    [(224, 4), (112, 3), (56, 2), (448, 5), (2, 2), (0, 2), (1000, 5), (150, 3), (170, 4),
     (300, 4), (320, 5)],
)
def test_roi_levels_of_square_boxes(side, level):
    # level = 4 + round(log2(side / 224)), clamped to 2..5; 224 / sqrt(2) = 158,
    # 224 * sqrt(2) = 317 are the borders between levels 3, 4 and 5
    out = roi_align.roi_levels(np.array([_square(side)], np.float32), IMAGE).numpy()
    assert out.dtype == np.int32
    assert out.tolist() == [level]


def test_roi_levels_shapes_and_non_square_image():
    # 512 x 2048 image: a box of 224 x 224 pixels
    image = (512, 2048, 3)
    boxes = np.array([[[0.0, 0.0, 224 / 512, 224 / 2048], [0.5, 0.5, 0.5 + 56 / 512, 0.5 + 56 / 2048]]],
                     np.float32)
    out = roi_align.roi_levels(boxes, image).numpy()
    assert out.shape == (1, 2)
    assert out.tolist() == [[4, 2]]
    # area, not side: a 112 x 448 box is as large as a 224 x 224 one
    out = roi_align.roi_levels(np.array([[0, 0, 112 / 1024, 448 / 1024]], np.float32), IMAGE)
    assert out.numpy().tolist() == [4]


# ----------------------------------------------------------- pyramid_roi_align
SIZES = {2: 9, 3: 7, 4: 5, 5: 3}  # feature-map side per level (any size works)


def _feature_maps(batch=2):
    """Channel 0: 10 * y + x + 100 * image; channel 1: the level."""
    maps = []
    for level, side in SIZES.items():
        y, x = np.mgrid[:side, :side].astype(np.float32)
        f = np.zeros((batch, side, side, 2), np.float32)
        for b in range(batch):
            f[b, :, :, 0] = 10 * y + x + 100 * b
            f[b, :, :, 1] = level
        maps.append(tf.constant(f))
    return maps


def _expected(box, level, image_idx, pool):
    """crop_and_resize sampling: corners of the box on the first and last sample."""
    side = SIZES[level]
    y1, x1, y2, x2 = box
    i = np.arange(pool)
    ys = y1 * (side - 1) + i * (y2 - y1) * (side - 1) / (pool - 1)
    xs = x1 * (side - 1) + i * (x2 - x1) * (side - 1) / (pool - 1)
    values = 10 * ys[:, None] + xs[None, :] + 100 * image_idx
    return np.stack([values, np.full_like(values, level)], axis=-1)


BOXES = {
    4: [0.25, 0.5, 0.25 + 224 / 1024, 0.5 + 224 / 1024],
    2: [0.5, 0.25, 0.5 + 56 / 1024, 0.25 + 56 / 1024],
    5: [0.0, 0.0, 448 / 1024, 448 / 1024],
    3: [0.8, 0.1, 0.8 + 112 / 1024, 0.1 + 112 / 1024],
}


def test_pyramid_roi_align_hand_computed_values():
    pooled = roi_align.pyramid_roi_align(
        np.array([[BOXES[4]]], np.float32), _feature_maps(1), IMAGE, 3
    ).numpy()
    assert pooled.shape == (1, 1, 3, 3, 2)
    # P4 is 5 x 5: y = 0.25 * 4 + i * 0.875 / 2, x = 0.5 * 4 + i * 0.875 / 2
    ys = np.array([1.0, 1.4375, 1.875])
    xs = np.array([2.0, 2.4375, 2.875])
    np.testing.assert_allclose(pooled[0, 0, :, :, 0], 10 * ys[:, None] + xs, atol=1e-4)
    np.testing.assert_array_equal(pooled[0, 0, :, :, 1], 4)


@pytest.mark.parametrize("pool", [2, 7])
def test_pyramid_roi_align_mixed_levels_keep_input_order(pool):
    boxes = np.array(
        [[BOXES[4], BOXES[2], BOXES[5]], [BOXES[3], BOXES[4], BOXES[2]]], np.float32
    )
    levels = [[4, 2, 5], [3, 4, 2]]
    pooled = roi_align.pyramid_roi_align(boxes, _feature_maps(2), IMAGE, pool).numpy()
    assert pooled.shape == (2, 3, pool, pool, 2)
    for b in range(2):
        for n in range(3):
            np.testing.assert_allclose(
                pooled[b, n], _expected(boxes[b, n], levels[b][n], b, pool), atol=1e-3
            )


def test_pyramid_roi_align_single_level_and_padding_boxes():
    # Zero (padding) boxes go to level 2 and sample its (0, 0) feature.
    boxes = np.array([[BOXES[5], [0, 0, 0, 0]]], np.float32)
    pooled = roi_align.pyramid_roi_align(boxes, _feature_maps(1), IMAGE, 2).numpy()
    np.testing.assert_allclose(pooled[0, 0], _expected(BOXES[5], 5, 0, 2), atol=1e-4)
    np.testing.assert_array_equal(pooled[0, 1, :, :, 0], 0)
    np.testing.assert_array_equal(pooled[0, 1, :, :, 1], 2)


def test_pyramid_roi_align_gradients_reach_features_not_boxes():
    maps = [tf.Variable(m) for m in _feature_maps(1)]
    boxes = tf.Variable(np.array([[BOXES[4], BOXES[2]]], np.float32))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(roi_align.pyramid_roi_align(boxes, maps, IMAGE, 2))
    grads = tape.gradient(out, maps + [boxes])
    assert grads[-1] is None or not np.any(tf.convert_to_tensor(grads[-1]).numpy())
    # levels 2 and 4 are used, 3 and 5 not
    used = [g is not None and np.any(tf.convert_to_tensor(g).numpy()) for g in grads[:4]]
    assert used == [True, False, True, False]


def test_non_finite_boxes_keep_their_rows():
    # Diverged training can give NaN / Inf boxes: they must not vanish from
    # the output (the heads reshape to [B, N, ...]) nor stop crop_and_resize.
    boxes = tf.constant([[[0.1, 0.1, 0.5, 0.5], [np.nan, 0.0, 1.0, 1.0],
                          [0.0, 0.0, np.inf, 1.0]]])
    maps = [tf.ones([1, 64 // 2 ** i, 64 // 2 ** i, 2]) for i in range(4)]
    out = roi_align.pyramid_roi_align(boxes, maps, (256, 256), 3).numpy()
    assert out.shape == (1, 3, 3, 3, 2) and np.isfinite(out).all()


def test_boxes_of_negative_area_or_nan_get_a_level():
    # y2 < y1 with x2 > x1: sqrt of a negative area is NaN, whose int cast is
    # INT_MIN; such a box matched no level and vanished from the pooling.
    boxes = np.array([[0.5, 0.5, 0.4, 0.6], [np.nan] * 4, [0.6, 0.6, 0.1, 0.1]], np.float32)
    assert roi_align.roi_levels(boxes, IMAGE).numpy().tolist() == [2, 2, 5]


def test_inverted_boxes_keep_their_rows_in_a_graph():
    # In a tf.function grappler merges the final reshape with the next one,
    # so a lost row surfaced only later, as a reshape error in the classifier.
    boxes = tf.constant([[[0.1, 0.1, 0.5, 0.5], [0.5, 0.2, 0.4, 0.6]]])
    maps = [tf.ones([1, 64 // 2 ** i, 64 // 2 ** i, 2]) for i in range(4)]

    @tf.function
    def pool_and_fold(boxes):
        out = roi_align.pyramid_roi_align(boxes, maps, (256, 256), 3)
        return tf.reshape(out, [-1, 3, 3, 2])

    assert pool_and_fold(boxes).shape == (2, 3, 3, 2)
