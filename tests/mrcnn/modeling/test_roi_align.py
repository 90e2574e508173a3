"""Exact-value tests for mrcnn/modeling/roi_align.py: level assignment and pooled values
(both methods), and the gathers equal to crop_and_resize."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import roi_align
from tests.mrcnn.modeling import reference_ops

IMAGE = (1024, 1024)
# "auto" is crop_and_resize here (TensorFlow, no XLA)
METHODS = ["auto", "gather"]


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


@pytest.mark.parametrize("method", METHODS)
def test_pyramid_roi_align_hand_computed_values(method):
    pooled = roi_align.pyramid_roi_align(
        np.array([[BOXES[4]]], np.float32), _feature_maps(1), IMAGE, 3, method
    ).numpy()
    assert pooled.shape == (1, 1, 3, 3, 2)
    # P4 is 5 x 5: y = 0.25 * 4 + i * 0.875 / 2, x = 0.5 * 4 + i * 0.875 / 2
    ys = np.array([1.0, 1.4375, 1.875])
    xs = np.array([2.0, 2.4375, 2.875])
    np.testing.assert_allclose(pooled[0, 0, :, :, 0], 10 * ys[:, None] + xs, atol=1e-4)
    np.testing.assert_array_equal(pooled[0, 0, :, :, 1], 4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pool", [2, 7])
def test_pyramid_roi_align_mixed_levels_keep_input_order(pool, method):
    boxes = np.array(
        [[BOXES[4], BOXES[2], BOXES[5]], [BOXES[3], BOXES[4], BOXES[2]]], np.float32
    )
    levels = [[4, 2, 5], [3, 4, 2]]
    pooled = roi_align.pyramid_roi_align(boxes, _feature_maps(2), IMAGE, pool, method).numpy()
    assert pooled.shape == (2, 3, pool, pool, 2)
    for b in range(2):
        for n in range(3):
            np.testing.assert_allclose(
                pooled[b, n], _expected(boxes[b, n], levels[b][n], b, pool), atol=1e-3
            )


@pytest.mark.parametrize("method", METHODS)
def test_pyramid_roi_align_single_level_and_padding_boxes(method):
    # Zero (padding) boxes go to level 2 and sample its (0, 0) feature.
    boxes = np.array([[BOXES[5], [0, 0, 0, 0]]], np.float32)
    pooled = roi_align.pyramid_roi_align(boxes, _feature_maps(1), IMAGE, 2, method).numpy()
    np.testing.assert_allclose(pooled[0, 0], _expected(BOXES[5], 5, 0, 2), atol=1e-4)
    np.testing.assert_array_equal(pooled[0, 1, :, :, 0], 0)
    np.testing.assert_array_equal(pooled[0, 1, :, :, 1], 2)


@pytest.mark.parametrize("method", METHODS)
def test_pyramid_roi_align_gradients_reach_features_not_boxes(method):
    maps = [tf.Variable(m) for m in _feature_maps(1)]
    boxes = tf.Variable(np.array([[BOXES[4], BOXES[2]]], np.float32))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(roi_align.pyramid_roi_align(boxes, maps, IMAGE, 2, method))
    grads = tape.gradient(out, maps + [boxes])
    assert grads[-1] is None or not np.any(tf.convert_to_tensor(grads[-1]).numpy())
    # levels 2 and 4 are used, 3 and 5 not
    used = [g is not None and np.any(tf.convert_to_tensor(g).numpy()) for g in grads[:4]]
    assert used == [True, False, True, False]


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_boxes_keep_their_rows(method):
    # Diverged training can give NaN / Inf boxes: they must not vanish from
    # the output (the heads reshape to [B, N, ...]) nor stop crop_and_resize.
    boxes = tf.constant([[[0.1, 0.1, 0.5, 0.5], [np.nan, 0.0, 1.0, 1.0],
                          [0.0, 0.0, np.inf, 1.0]]])
    maps = [tf.ones([1, 64 // 2 ** i, 64 // 2 ** i, 2]) for i in range(4)]
    out = roi_align.pyramid_roi_align(boxes, maps, (256, 256), 3, method).numpy()
    assert out.shape == (1, 3, 3, 3, 2) and np.isfinite(out).all()


def test_boxes_of_negative_area_or_nan_get_a_level():
    # y2 < y1 with x2 > x1: sqrt of a negative area is NaN, whose int cast is
    # INT_MIN; such a box matched no level and vanished from the pooling.
    boxes = np.array([[0.5, 0.5, 0.4, 0.6], [np.nan] * 4, [0.6, 0.6, 0.1, 0.1]], np.float32)
    assert roi_align.roi_levels(boxes, IMAGE).numpy().tolist() == [2, 2, 5]


@pytest.mark.parametrize("method", METHODS)
def test_inverted_boxes_keep_their_rows_in_a_graph(method):
    # In a tf.function grappler merges the final reshape with the next one,
    # so a lost row surfaced only later, as a reshape error in the classifier.
    boxes = tf.constant([[[0.1, 0.1, 0.5, 0.5], [0.5, 0.2, 0.4, 0.6]]])
    maps = [tf.ones([1, 64 // 2 ** i, 64 // 2 ** i, 2]) for i in range(4)]

    @tf.function
    def pool_and_fold(boxes):
        out = roi_align.pyramid_roi_align(boxes, maps, (256, 256), 3, method)
        return tf.reshape(out, [-1, 3, 3, 2])

    assert pool_and_fold(boxes).shape == (2, 3, 3, 2)


# ------------------------------------------- the gathers equal to crop_and_resize
def _random_case(seed=0, batch=3, n=40, channels=4, image=(256, 384)):
    """Feature maps of an image of `image` pixels (strides 4..32) and boxes
    of every kind: random ones crossing the borders or clipped to them (as
    proposals are: their last sample is on the map's edge, inside or outside
    it by the kernel's rounding), the whole image, larger than the image,
    tiny, zero padding rows, inverted, NaN and Inf."""
    rng = np.random.default_rng(seed)
    maps = [rng.normal(size=(batch, image[0] // s, image[1] // s, channels)).astype(np.float32)
            for s in (4, 8, 16, 32)]
    y, x = rng.uniform(-0.2, 1.2, (2, batch, n, 2))
    boxes = np.stack([y.min(-1), x.min(-1), y.max(-1), x.max(-1)], -1).astype(np.float32)
    boxes[:, ::2] = np.clip(boxes[:, ::2], 0.0, 1.0)
    boxes[0, -6:] = 0.0
    boxes[1, :6] = [[0, 0, 1, 1], [-1, -1, 2, 2], [0.5, 0.5, 0.5 + 1e-4, 0.5 + 1e-4],
                    [0.3, 0.7, 0.3, 0.7], [0.9, 0.0, 1.0, 1.0], [0.6, 0.2, 0.3, 0.9]]
    boxes[-1, 6:10] = [[np.nan] * 4, [0.1, 0.1, np.inf, 0.5], [-np.inf, 0.2, 0.4, 0.4],
                    [0.2, np.nan, 0.6, 0.8]]
    return boxes, maps, image


def _pool(method):
    return functools.partial(roi_align.pyramid_roi_align, method=method)


gathers, kernel = _pool("gather"), _pool("crop_and_resize")


@pytest.mark.parametrize("pool", [1, 2, 7, 14])
def test_pooled_values_equal_crop_and_resize(pool):
    boxes, maps, image = _random_case(n=100)
    ref = kernel(boxes, maps, image, pool).numpy()
    eager = gathers(boxes, maps, image, pool).numpy()
    # grappler rewrites the graph's arithmetic (see crop.sample_points)
    graph = tf.function(lambda b: gathers(b, maps, image, pool))(boxes)
    assert eager.shape == ref.shape == (3, 100, pool, pool, 4) and eager.dtype == np.float32
    assert np.isfinite(eager).all()
    for out in (eager, graph.numpy()):
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    # every level is used, and some samples fall off the map (0)
    assert set(roi_align.roi_levels(boxes, image).numpy().ravel()) == {2, 3, 4, 5}
    if pool > 1:
        assert np.any(eager == 0)


def test_roi_levels_equal_the_tf_version():
    boxes, _, image = _random_case(seed=1, n=400)
    side = np.geomspace(1, 1500, 200)  # across the level borders, in pixels
    squares = np.stack([np.zeros_like(side), np.zeros_like(side), side / 256, side / 384], -1)
    for b in (boxes, squares.astype(np.float32)):
        np.testing.assert_array_equal(roi_align.roi_levels(b, image),
                                      reference_ops.roi_levels(b, image))


def test_gradients_to_the_features_equal_crop_and_resize():
    boxes, maps, image = _random_case(seed=2)
    weights = np.random.default_rng(3).normal(size=(3, 40, 7, 7, 4)).astype(np.float32)
    grads = []
    for pool_fn in (gathers, kernel):
        variables = [tf.Variable(m) for m in maps]
        box_var = tf.Variable(boxes)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(pool_fn(box_var, variables, image, 7) * weights)
        *feature_grads, box_grad = tape.gradient(loss, variables + [box_var])
        assert box_grad is None
        grads.append([tf.convert_to_tensor(g).numpy() for g in feature_grads])
    for new, ref in zip(*grads):
        assert np.abs(ref).max() > 0
        np.testing.assert_allclose(new, ref, rtol=0, atol=1e-5)


def test_float16_features_unknown_shapes_and_xla_equal_crop_and_resize():
    boxes, maps, image = _random_case(seed=4, batch=2, n=100)
    half = [tf.constant(m, tf.float16) for m in maps]
    ref = kernel(boxes, half, image, 3).numpy()
    out = gathers(boxes, half, image, 3)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    # in a graph whose batch and map sizes are unknown while tracing, and
    # under XLA (which fuses and reorders float operations, see crop.sample_points),
    # where "auto" takes the gathers: crop_and_resize has no XLA kernel
    ref = kernel(boxes, maps, image, 7).numpy()
    unknown = tf.function(
        lambda b, *m: gathers(b, list(m), image, 7),
        input_signature=[tf.TensorSpec([None, None, 4])] + [tf.TensorSpec([None, None, None, 4])] * 4)
    compiled = tf.function(lambda b, *m: roi_align.pyramid_roi_align(b, list(m), image, 7),
                           jit_compile=True)
    for fn in (unknown, compiled):
        np.testing.assert_allclose(fn(boxes, *maps), ref, rtol=0, atol=1e-5)


def test_auto_takes_the_kernel_on_tensorflow_outside_xla_and_not_for_bfloat16():
    assert roi_align._kernel_available(tf.float32) and roi_align._kernel_available(tf.float16)
    assert not roi_align._kernel_available(tf.bfloat16)
    inside_xla = tf.function(lambda: tf.constant(roi_align._kernel_available(tf.float32)),
                             jit_compile=True)
    assert not inside_xla().numpy()
    boxes, maps, image = _random_case(seed=5, batch=2, n=10)
    out = roi_align.pyramid_roi_align(boxes, [tf.constant(m, tf.bfloat16) for m in maps],
                                      image, 2)
    assert out.dtype == tf.float32 and out.shape == (2, 10, 2, 2, 4)
    with pytest.raises(ValueError, match="method"):
        roi_align.pyramid_roi_align(boxes, maps, image, 2, method="bilinear")
