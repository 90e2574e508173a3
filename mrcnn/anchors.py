"""Anchors of the feature pyramid, generated in the graph for any image size.

Shape shorthand:
    L: pyramid levels (P2..P6 -> 5)
    R: anchor ratios per location (width / height)
    A: all anchors of an image, sum over levels of Hl * Wl * R

Order (it must match the RPN's reshape of its conv outputs): level by level,
then row-major over feature-map positions (y, then x), then ratio. Anchor
centres sit at `position * feature_stride` pixels (Matterport's convention),
so pixel boxes can stick out of the image at the borders.
"""

import math

import tensorflow as tf

from mrcnn import box_ops


def feature_shapes(image_shape, strides):
    """Feature-map sizes of each level: ceil(image side / stride).

    image_shape: (height, width, ...) -> int32 [L, 2]
    """
    hw = tf.cast(tf.convert_to_tensor(image_shape)[:2], tf.float32)
    strides = tf.constant(strides, tf.float32)[:, None]
    return tf.cast(tf.math.ceil(hw[None, :] / strides), tf.int32)


def level_anchors(scale, ratios, shape, feature_stride, anchor_stride=1):
    """Anchors of one level in pixels.

    scale: side of a ratio-1 anchor in pixels; ratios: [R];
    shape: (feature height, feature width) -> [Hl * Wl * R, 4]
    """
    ratios = tf.constant(ratios, tf.float32)
    heights = scale / tf.sqrt(ratios)
    widths = scale * tf.sqrt(ratios)
    ys = tf.cast(tf.range(0, shape[0], anchor_stride) * feature_stride, tf.float32)
    xs = tf.cast(tf.range(0, shape[1], anchor_stride) * feature_stride, tf.float32)
    cy, cx = tf.meshgrid(ys, xs, indexing="ij")  # [Hl, Wl]
    centers = tf.stack([cy, cx, cy, cx], axis=-1)[:, :, None, :]  # [Hl, Wl, 1, 4]
    half = 0.5 * tf.stack([-heights, -widths, heights, widths], axis=-1)  # [R, 4]
    return tf.reshape(centers + half, [-1, 4])


def pyramid_anchors(image_shape, scales, ratios, strides, anchor_stride=1, normalized=True):
    """All anchors of an image of `image_shape` (height, width, ...).

    scales: [L] one scale per level; strides: [L] feature strides;
    returns [A, 4], normalised to [0, 1] (see box_ops.normalize) unless
    `normalized=False`.
    """
    shapes = feature_shapes(image_shape, strides)
    anchors = tf.concat(
        [
            level_anchors(scale, ratios, shapes[i], stride, anchor_stride)
            for i, (scale, stride) in enumerate(zip(scales, strides))
        ],
        axis=0,
    )
    if normalized:
        anchors = box_ops.normalize(anchors, tf.convert_to_tensor(image_shape)[:2])
    return anchors


def num_anchors(image_height, image_width, strides, num_ratios, anchor_stride=1):
    """Number of anchors of an image (static Python arithmetic)."""
    total = 0
    for stride in strides:
        fh = math.ceil(image_height / stride)
        fw = math.ceil(image_width / stride)
        total += math.ceil(fh / anchor_stride) * math.ceil(fw / anchor_stride) * num_ratios
    return total
