"""Tests for mrcnn/modeling/kernels.py: TensorFlow's kernels equal keras.ops."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from mrcnn.modeling import kernels


@pytest.mark.parametrize("axis", [-1, -2, 0])
def test_argmax_equals_keras_argmax_first_among_ties(axis):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (4, 30, 7)).astype(np.float32) / 4.0  # many ties
    x[0] = -1.0  # all equal
    expected = np.asarray(ops.argmax(x, axis=axis))
    for fn in (lambda t: kernels.argmax(t, axis), tf.function(lambda t: kernels.argmax(t, axis)),
               tf.function(lambda t: kernels.argmax(t, axis), jit_compile=True)):
        out = np.asarray(fn(tf.constant(x)))
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(out, x.argmax(axis=axis))


def test_op_by_op_is_false_under_xla():
    # nms.py and roi_align.py take TensorFlow's kernels (method "auto") on this.
    assert kernels.tensorflow_op_by_op()
    assert tf.function(lambda: tf.constant(kernels.tensorflow_op_by_op()))().numpy()
    assert not tf.function(lambda: tf.constant(kernels.tensorflow_op_by_op()),
                           jit_compile=True)().numpy()
