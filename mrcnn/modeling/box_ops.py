"""Box math, once for the whole project.

Shape shorthand:
    N, M: numbers of boxes
    boxes: [..., (y1, x1, y2, x2)] with (y2, x2) outside the box (exclusive),
        in pixels or normalised to [0, 1] (see `normalize`).
    deltas: [..., (dy, dx, log(dh), log(dw))], the regression targets of
        Matterport / Faster R-CNN, already divided by a std dev where used.

All functions are keras.ops: they take tensors of the Keras backend (numpy
arrays are accepted) and return backend tensors, so they run in the model
on every backend and under XLA.
"""

from keras import ops


def _tensor(x, dtype="float32"):
    return ops.cast(ops.convert_to_tensor(x), dtype)


def area(boxes, dtype="float32"):
    """boxes: [..., 4] -> [...], computed in `dtype`"""
    boxes = _tensor(boxes, dtype)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou(boxes1, boxes2, dtype="float32"):
    """Pairwise intersection over union, computed in `dtype`.

    boxes1: [..., N, 4], boxes2: [..., M, 4] (leading dims broadcast)
    -> [..., N, M]. Pairs whose union is empty (two degenerate boxes) get 0.
    """
    b1 = _tensor(boxes1, dtype)[..., :, None, :]
    b2 = _tensor(boxes2, dtype)[..., None, :, :]
    y1 = ops.maximum(b1[..., 0], b2[..., 0])
    x1 = ops.maximum(b1[..., 1], b2[..., 1])
    y2 = ops.minimum(b1[..., 2], b2[..., 2])
    x2 = ops.minimum(b1[..., 3], b2[..., 3])
    inter = ops.maximum(y2 - y1, 0.0) * ops.maximum(x2 - x1, 0.0)
    union = area(b1, dtype) + area(b2, dtype) - inter
    return divide_no_nan(inter, union)


def divide_no_nan(x, y):
    """x / y, 0 where y is 0 (also in the gradient): keras.ops', which is
    one kernel on TensorFlow (tf.math.divide_no_nan) and the same two
    `where`s as a safe division elsewhere."""
    return ops.divide_no_nan(x, y)


def _center_size(boxes):
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w, h, w


def encode(boxes, targets, std_dev=(1.0, 1.0, 1.0, 1.0)):
    """Deltas that move `boxes` onto `targets`, divided by `std_dev`.

    boxes, targets: [..., 4] -> deltas [..., 4]
    """
    cy, cx, h, w = _center_size(_tensor(boxes))
    gy, gx, gh, gw = _center_size(_tensor(targets))
    deltas = ops.stack(
        [(gy - cy) / h, (gx - cx) / w, ops.log(gh / h), ops.log(gw / w)], axis=-1
    )
    return deltas / _tensor(std_dev)


def decode(boxes, deltas, std_dev=(1.0, 1.0, 1.0, 1.0)):
    """Apply `deltas * std_dev` to `boxes`; inverse of `encode`.

    boxes, deltas: [..., 4] -> boxes [..., 4]
    """
    deltas = _tensor(deltas) * _tensor(std_dev)
    cy, cx, h, w = _center_size(_tensor(boxes))
    cy = cy + deltas[..., 0] * h
    cx = cx + deltas[..., 1] * w
    h = h * ops.exp(deltas[..., 2])
    w = w * ops.exp(deltas[..., 3])
    return ops.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip(boxes, window):
    """Clip boxes into window (y1, x1, y2, x2).

    boxes: [..., 4]; window: [4], or [..., 4] broadcast against boxes (one
    window per image: [B, 1, 4] for boxes [B, N, 4]) -> [..., 4]
    """
    boxes, window = _tensor(boxes), _tensor(window)
    low = ops.stack([window[..., 0], window[..., 1]] * 2, axis=-1)
    high = ops.stack([window[..., 2], window[..., 3]] * 2, axis=-1)
    return ops.minimum(ops.maximum(boxes, low), high)


def _norm_scale_shift(shape):
    hw = _tensor(ops.convert_to_tensor(shape)[:2] if not isinstance(shape, (tuple, list))
                 else list(shape)[:2])
    scale = ops.concatenate([hw, hw]) - 1.0
    shift = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], "float32")
    return scale, shift


def normalize(boxes, shape):
    """Pixel boxes -> [0, 1] coordinates (Matterport's convention).

    (y2, x2) are exclusive in pixels and inclusive once normalised, so a box
    covering the whole image maps to (0, 0, 1, 1).
    boxes: [..., 4], shape: (height, width, ...) -> [..., 4]
    """
    scale, shift = _norm_scale_shift(shape)
    return (_tensor(boxes) - shift) / scale


def denormalize(boxes, shape, rounded=True):
    """Inverse of `normalize`, rounded to whole pixels unless `rounded=False`.

    -> float32 [..., 4]
    """
    scale, shift = _norm_scale_shift(shape)
    boxes = _tensor(boxes) * scale + shift
    return ops.round(boxes) if rounded else boxes


def nonzero_rows(boxes):
    """Mask of rows that are not all-zero padding. boxes: [..., 4] -> bool [...]"""
    return ops.any(ops.not_equal(_tensor(boxes), 0.0), axis=-1)
