"""A 3x3 "same" convolution of one large image, run as a batch of row strips.

Shape shorthand:
    H, W: one feature map's size; C: its channels; F: the filters
    S: row strips, each of H / S rows and a halo of one row above and below

TensorFlow's CPU convolution (oneDNN's brgconv) runs a batch of one image
with 256 or more channels up to 1.6x slower per FLOP than a batch of
several smaller ones. On an AVX-512 Xeon (2 cores), ResNet-50 at 1024 x
2048: the RPN's 3x3 256->512 on P2 runs at 237 GFLOP/s on [1, 256, 512,
256] and at 305-316 as 4 strips [4, 66, 514, 256] (halo and padding
included); the FPN's 3x3 on P2 245 -> 290; res4's 3x3 (64 x 128) 39 -> 34
ms, res5's (32 x 64, 512 channels) 54 -> 34 ms. With 64 or 128 channels
(res2, res3) the strips are 10-15 % slower, so those stay whole. Each
output pixel is the same sum of the same products either way (the strips
hold every pixel its 3x3 window reads), and the outputs are equal (tests).
Inference only: the gradients of the strips are slower than the whole
image's; and only op by op on TensorFlow's CPU kernels (XLA, JAX and GPUs
convolve as they do; a batch of several images is already fast).
"""

import keras
from keras import ops

from mrcnn.modeling import kernels

MIN_STRIP_ROWS = 8
MIN_CHANNELS = 256


def strip_count(shape, kernel_size, strides, dilation_rate, padding):
    """How many row strips a "same" convolution of `shape` [B, H, W, C] is
    split into: 4 or 2 (of at least MIN_STRIP_ROWS rows each, H divisible),
    or 1 (not split: a batch other than one, fewer than MIN_CHANNELS input
    channels, an unknown size, a stride or dilation, an even kernel)."""
    batch, height, channels = shape[0], shape[1], shape[-1]
    k = kernel_size[0]
    if (batch != 1 or height is None or shape[2] is None or padding != "same"
            or channels is None or channels < MIN_CHANNELS
            or tuple(strides) != (1, 1) or tuple(dilation_rate) != (1, 1)
            or kernel_size[0] != kernel_size[1] or k % 2 == 0):
        return 1
    for strips in (4, 2):
        if height % strips == 0 and height // strips >= MIN_STRIP_ROWS:
            return strips
    return 1


def to_strips(x, pad, strips):
    """x: [1, H, W, C], H divisible by S -> [S, H / S + 2 pad, W + 2 pad, C]:
    the image zero-padded by `pad` pixels, cut into S bands of rows that
    overlap by 2 pad rows (a "valid" k x k conv of them, k = 2 pad + 1, is
    the "same" conv of x)."""
    _, height, width, channels = x.shape
    rows = height // strips
    padded = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    parts = ops.stack([padded[:, i * rows:(i + 1) * rows + 2 * pad] for i in range(strips)],
                      axis=1)
    return ops.reshape(parts, (strips, rows + 2 * pad, width + 2 * pad, channels))


def from_strips(y):
    """[S, H / S, W, F] -> [1, H, W, F]: the strips' outputs, one under the
    other."""
    strips, rows, width, filters = y.shape
    return ops.reshape(y, (1, strips * rows, width, filters))


def _cpu_op_by_op():
    """TensorFlow's kernels, op by op, with no GPU to run them on."""
    if not kernels.tensorflow_op_by_op():
        return False
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


@keras.saving.register_keras_serializable(package="mrcnn")
class StripConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` (same weights, names and config) whose
    inference on one image runs in row strips where that is faster
    (`strip_count`, TensorFlow's CPU kernels op by op, training falsy).

    Call arguments:
        inputs: [B, H, W, C] channels last.
        training: bool or None; True convolves the whole image.
    Returns [B, H', W', F], as Conv2D.
    """

    def call(self, inputs, training=None):
        strips = 1
        if not training and self.data_format == "channels_last":
            strips = strip_count(tuple(inputs.shape), self.kernel_size, self.strides,
                                 self.dilation_rate, self.padding)
        if strips == 1 or not _cpu_op_by_op():
            return super().call(inputs)
        outputs = ops.conv(to_strips(inputs, self.kernel_size[0] // 2, strips), self.kernel,
                           padding="valid")
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return from_strips(outputs)
