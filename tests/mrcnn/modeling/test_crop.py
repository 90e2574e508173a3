"""crop.crop_and_resize against tf.image.crop_and_resize (the reference)."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import crop


def _boxes(rng, k):
    boxes = rng.uniform(-0.3, 1.3, (k, 4)).astype(np.float32)
    boxes[0] = [0.0, 0.0, 1.0, 1.0]  # corners on the border
    boxes[1] = [0.5, 0.5, 0.5, 0.5]  # a point
    boxes[2] = [0.9, 0.2, 0.1, 0.8]  # upside down
    boxes[3] = [-5.0, -5.0, 6.0, 6.0]  # huge, mostly outside
    boxes[4] = [0.3, 0.3, 0.3001, 0.3002]  # tiny
    return boxes


@pytest.mark.parametrize("crop_size", [(7, 7), (28, 14), (1, 1), (1, 5)])
def test_equals_the_kernel(crop_size):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 13, 17, 4)).astype(np.float32)
    boxes = _boxes(rng, 20)
    index = rng.integers(0, 3, 20).astype(np.int32)
    expected = tf.image.crop_and_resize(images, boxes, index, crop_size).numpy()
    got = np.asarray(crop.crop_and_resize(images, boxes, index, crop_size))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_leading_dims_and_uint8_images():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 2, (4, 9, 9, 1)).astype(np.uint8)
    boxes = _boxes(rng, 6).reshape(2, 3, 4)
    index = np.array([[0, 1, 2], [3, 3, 0]], np.int32)
    got = np.asarray(crop.crop_and_resize(images, boxes, index, (5, 6)))
    assert got.shape == (2, 3, 5, 6, 1) and got.dtype == np.float32
    expected = tf.image.crop_and_resize(
        images.astype(np.float32), boxes.reshape(6, 4), index.reshape(6), (5, 6)).numpy()
    np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=1e-6)


def test_compiles_under_xla():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(2, 11, 8, 3)).astype(np.float32)
    boxes = _boxes(rng, 8)
    index = rng.integers(0, 2, 8).astype(np.int32)
    compiled = tf.function(lambda *a: crop.crop_and_resize(*a, (6, 6)), jit_compile=True)
    expected = tf.image.crop_and_resize(images, boxes, index, (6, 6)).numpy()
    np.testing.assert_allclose(compiled(images, boxes, index).numpy(), expected, atol=1e-5)
