"""mrcnn/modeling/strip_conv.py: a convolution of one image in row strips
equals the convolution of the whole image, and is used only where it pays."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import strip_conv


@pytest.mark.parametrize("shape, kernel, expected", [
    ((1, 256, 512, 256), (3, 3), 4), ((1, 64, 128, 256), (3, 3), 4),
    ((1, 32, 64, 512), (3, 3), 4), ((1, 16, 32, 256), (3, 3), 2), ((1, 8, 16, 256), (3, 3), 1),
    ((1, 66, 64, 256), (3, 3), 2), ((1, 62, 64, 256), (3, 3), 2), ((1, 15, 64, 256), (3, 3), 1),
    ((1, 256, 512, 128), (3, 3), 1), ((1, 256, 512, 64), (3, 3), 1),
    ((2, 256, 512, 256), (3, 3), 1), ((None, 256, 512, 256), (3, 3), 1),
    ((1, None, None, 256), (3, 3), 1), ((1, 256, 512, None), (3, 3), 1),
    ((1, 256, 512, 256), (2, 2), 1), ((1, 256, 512, 256), (3, 5), 1),
    ((1, 256, 512, 256), (5, 5), 4),
])
def test_strip_count(shape, kernel, expected):
    assert strip_conv.strip_count(shape, kernel, (1, 1), (1, 1), "same") == expected


def test_strip_count_needs_stride_one_same_padding_no_dilation():
    shape = (1, 256, 512, 256)
    assert strip_conv.strip_count(shape, (3, 3), (2, 2), (1, 1), "same") == 1
    assert strip_conv.strip_count(shape, (3, 3), (1, 1), (2, 2), "same") == 1
    assert strip_conv.strip_count(shape, (3, 3), (1, 1), (1, 1), "valid") == 1


def test_to_strips_and_back():
    x = np.arange(1 * 8 * 5 * 2, dtype=np.float32).reshape(1, 8, 5, 2)
    parts = keras.ops.convert_to_numpy(strip_conv.to_strips(x, 1, 4))
    assert parts.shape == (4, 4, 7, 2)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])[0]
    for i in range(4):  # rows 2i - 1 .. 2i + 2 of x, with the zero border
        np.testing.assert_array_equal(parts[i], padded[2 * i:2 * i + 4])
    y = np.arange(4 * 2 * 5 * 3, dtype=np.float32).reshape(4, 2, 5, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(strip_conv.from_strips(y)),
                                  y.reshape(1, 8, 5, 3))


def layer_pair(filters, kernel, activation, channels, seed):
    """A StripConv2D and a Conv2D with the same random weights."""
    strip = strip_conv.StripConv2D(filters, kernel, padding="same", activation=activation,
                                   name="strip")
    plain = keras.layers.Conv2D(filters, kernel, padding="same", activation=activation,
                                name="plain")
    strip.build((None, None, None, channels))
    plain.build((None, None, None, channels))
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in plain.weights]
    weights[1] = weights[1] * 3.0  # biases that matter against the relu
    strip.set_weights(weights)
    plain.set_weights(weights)
    return strip, plain


@pytest.mark.parametrize("shape, filters, kernel, activation", [
    ((1, 64, 24, 256), 24, 3, "relu"), ((1, 34, 10, 256), 8, 3, None),
    ((1, 32, 20, 256), 16, 5, "relu"), ((1, 8, 8, 256), 8, 3, "relu"),
    ((1, 64, 24, 128), 24, 3, "relu"), ((2, 64, 24, 256), 24, 3, "relu"),
])
def test_equals_the_whole_image_convolution(shape, filters, kernel, activation, monkeypatch):
    strip, plain = layer_pair(filters, kernel, activation, shape[-1], seed=sum(shape))
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    expected = keras.ops.convert_to_numpy(plain(x))
    calls = []
    to_strips = strip_conv.to_strips
    monkeypatch.setattr(strip_conv, "to_strips", lambda *a: calls.append(a[2]) or to_strips(*a))
    split = strip_conv.strip_count(shape, (kernel, kernel), (1, 1), (1, 1), "same")
    # Eagerly and in a tf.function: in strips where strip_count says so, and
    # the same values (the same products summed in the same order).
    for run in (strip, tf.function(strip)):
        calls.clear()
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(run(x)), expected)
        assert calls == ([split] if split > 1 else [])
    # Training, and XLA: the whole image, equal.
    calls.clear()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(strip(x, training=True)),
                                  expected)
    xla = tf.function(lambda x: strip(x), jit_compile=True)
    # XLA's own convolution sums in another order: float rounding of sums of
    # up to 6400 products of size ~1 (values ~80).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(xla(x)), expected, rtol=1e-5,
                               atol=1e-3)
    assert calls == []


def test_config_round_trip_and_gradients_of_the_whole_image():
    strip, plain = layer_pair(8, 3, "relu", 256, seed=0)
    config = strip.get_config()
    assert config == {**plain.get_config(), "name": "strip"}
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(strip))
    assert type(clone) is strip_conv.StripConv2D and clone.get_config() == config
    x = tf.constant(np.random.default_rng(2).normal(size=(1, 32, 16, 256)).astype(np.float32))
    grads = []
    for layer in (strip, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) ** 2)
        grads.append([g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
