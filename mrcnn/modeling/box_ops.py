"""Box math, once for the whole project.

Shape shorthand:
    N, M: numbers of boxes
    boxes: [..., (y1, x1, y2, x2)] with (y2, x2) outside the box (exclusive),
        in pixels or normalised to [0, 1] (see `normalize`).
    deltas: [..., (dy, dx, log(dh), log(dw))], the regression targets of
        Matterport / Faster R-CNN, already divided by a std dev where used.

All functions take and return tf tensors (numpy arrays are accepted).
"""

import tensorflow as tf


def area(boxes, dtype=tf.float32):
    """boxes: [..., 4] -> [...], computed in `dtype`"""
    boxes = tf.cast(boxes, dtype)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou(boxes1, boxes2, dtype=tf.float32):
    """Pairwise intersection over union, computed in `dtype`.

    boxes1: [N, 4], boxes2: [M, 4] -> [N, M]. Pairs whose union is empty
    (two degenerate boxes) get 0.
    """
    b1 = tf.cast(boxes1, dtype)[:, None, :]
    b2 = tf.cast(boxes2, dtype)[None, :, :]
    y1 = tf.maximum(b1[..., 0], b2[..., 0])
    x1 = tf.maximum(b1[..., 1], b2[..., 1])
    y2 = tf.minimum(b1[..., 2], b2[..., 2])
    x2 = tf.minimum(b1[..., 3], b2[..., 3])
    inter = tf.maximum(y2 - y1, 0.0) * tf.maximum(x2 - x1, 0.0)
    union = area(b1, dtype) + area(b2, dtype) - inter
    return tf.math.divide_no_nan(inter, union)


def _center_size(boxes):
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w, h, w


def encode(boxes, targets, std_dev=(1.0, 1.0, 1.0, 1.0)):
    """Deltas that move `boxes` onto `targets`, divided by `std_dev`.

    boxes, targets: [..., 4] -> deltas [..., 4]
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    targets = tf.convert_to_tensor(targets, tf.float32)
    cy, cx, h, w = _center_size(boxes)
    gy, gx, gh, gw = _center_size(targets)
    deltas = tf.stack(
        [(gy - cy) / h, (gx - cx) / w, tf.math.log(gh / h), tf.math.log(gw / w)], axis=-1
    )
    return deltas / tf.constant(std_dev, tf.float32)


def decode(boxes, deltas, std_dev=(1.0, 1.0, 1.0, 1.0)):
    """Apply `deltas * std_dev` to `boxes`; inverse of `encode`.

    boxes, deltas: [..., 4] -> boxes [..., 4]
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    deltas = tf.convert_to_tensor(deltas, tf.float32) * tf.constant(std_dev, tf.float32)
    cy, cx, h, w = _center_size(boxes)
    cy = cy + deltas[..., 0] * h
    cx = cx + deltas[..., 1] * w
    h = h * tf.exp(deltas[..., 2])
    w = w * tf.exp(deltas[..., 3])
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip(boxes, window):
    """Clip boxes into window (y1, x1, y2, x2).

    boxes: [..., 4]; window: [4], or [..., 4] broadcast against boxes (one
    window per image: [B, 1, 4] for boxes [B, N, 4]) -> [..., 4]
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    wy1, wx1, wy2, wx2 = tf.unstack(tf.cast(window, tf.float32), axis=-1)
    y1, x1, y2, x2 = tf.unstack(boxes, axis=-1)
    y1 = tf.clip_by_value(y1, wy1, wy2)
    y2 = tf.clip_by_value(y2, wy1, wy2)
    x1 = tf.clip_by_value(x1, wx1, wx2)
    x2 = tf.clip_by_value(x2, wx1, wx2)
    return tf.stack([y1, x1, y2, x2], axis=-1)


def _norm_scale_shift(shape):
    h, w = tf.unstack(tf.cast(shape[:2], tf.float32))
    scale = tf.stack([h - 1.0, w - 1.0, h - 1.0, w - 1.0])
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return scale, shift


def normalize(boxes, shape):
    """Pixel boxes -> [0, 1] coordinates (Matterport's convention).

    (y2, x2) are exclusive in pixels and inclusive once normalised, so a box
    covering the whole image maps to (0, 0, 1, 1).
    boxes: [..., 4], shape: (height, width, ...) -> [..., 4]
    """
    scale, shift = _norm_scale_shift(shape)
    return (tf.cast(boxes, tf.float32) - shift) / scale


def denormalize(boxes, shape, rounded=True):
    """Inverse of `normalize`, rounded to whole pixels unless `rounded=False`.

    -> float32 [..., 4]
    """
    scale, shift = _norm_scale_shift(shape)
    boxes = tf.cast(boxes, tf.float32) * scale + shift
    return tf.round(boxes) if rounded else boxes


def nonzero_rows(boxes):
    """Mask of rows that are not all-zero padding. boxes: [N, 4] -> bool [N]"""
    return tf.reduce_any(tf.not_equal(boxes, 0.0), axis=-1)
