"""The whole detection as one TensorFlow graph: uint8 images in, detections
in the images' pixels out (what `python -m mrcnn.export` saves).

Shape shorthand:
    B: images (all of one size); H, W: their size; h, w: the molded size
    D: DETECTION_MAX_INSTANCES; N: detections kept (the most of any image)
    mh, mw: MASK_SHAPE; C: classes (background included)

`MaskRCNN.detect` molds with numpy (mrcnn/data/image.py) and un-molds with
numpy (mrcnn/modeling/postprocess.py); here the same steps are tensor ops,
so a SavedModel needs nothing but TensorFlow:

- `molding_geometry`: resize_image's scale, resized size and padding;
- `resize_like_skimage`: the bilinear resize of `skimage.transform.resize`
  (order 1, pixel centres, zeros beyond the edge, clipped to the image's
  range, rounded half to even), in float64;
- `mold_images`: resize, pad, subtract the mean pixel, image metas;
- `unmold_batch`: boxes to the original pixels, empty boxes dropped, each
  detection's mask of its class pasted at the original resolution.

The molded input equals `mold_batch`'s but for rare rounding ties of the
resize (a value one grey level apart), and the outputs equal `detect`'s
(tests/mrcnn/modeling/test_serving.py, tests/mrcnn/test_export.py).
"""

import dataclasses

import tensorflow as tf

from mrcnn.data import masks as instance_masks
from mrcnn.modeling import box_ops


@dataclasses.dataclass(frozen=True)
class Molding:
    """How images are molded: Config's IMAGE_RESIZE_MODE, IMAGE_MIN_DIM,
    IMAGE_MAX_DIM, IMAGE_MIN_SCALE, MEAN_PIXEL [3] and NUM_CLASSES."""

    mode: str
    min_dim: int
    max_dim: int
    min_scale: float
    mean_pixel: tuple
    num_classes: int

    @classmethod
    def of(cls, config):
        return cls(config.IMAGE_RESIZE_MODE, config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM,
                   config.IMAGE_MIN_SCALE, tuple(float(v) for v in config.MEAN_PIXEL),
                   config.NUM_CLASSES)


def molding_geometry(height, width, m):
    """`resize_image`'s geometry for an image of height x width (int32
    tensors) under Molding m: (scale float64, resized (h', w') int32,
    padded (h, w) int32, (top, left) int32)."""
    if m.mode not in ("none", "square", "pad64", "fit64"):
        raise ValueError(f"resize mode {m.mode!r} cannot be served (inference modes: none, "
                         "square, pad64, fit64)")
    h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    one = tf.constant(1.0, tf.float64)
    if m.mode == "none":
        scale = one
    elif m.mode == "fit64":
        scale = m.min_dim / tf.minimum(h, w)
    else:
        scale = tf.maximum(one, m.min_dim / tf.minimum(h, w)) if m.min_dim else one
    if m.min_scale:
        scale = tf.maximum(scale, tf.constant(float(m.min_scale), tf.float64))
    if m.mode in ("square", "fit64"):
        longest = tf.maximum(h, w)
        scale = tf.where(tf.round(longest * scale) > m.max_dim, m.max_dim / longest, scale)
    new_h = tf.cast(tf.maximum(one, tf.round(h * scale)), tf.int32)
    new_w = tf.cast(tf.maximum(one, tf.round(w * scale)), tf.int32)
    if m.mode == "square":
        out_h = out_w = tf.constant(m.max_dim, tf.int32)
    elif m.mode == "none":
        out_h, out_w = new_h, new_w
    else:
        out_h, out_w = _ceil64(new_h), _ceil64(new_w)
    return scale, (new_h, new_w), (out_h, out_w), ((out_h - new_h) // 2, (out_w - new_w) // 2)


def _ceil64(n):
    return (n + 63) // 64 * 64


def _axis_samples(size_in, size_out):
    """Bilinear sampling along one axis at output pixel centres: indices of
    the two source pixels in a source padded by one zero on each side, and
    the weight of the second. -> int32 [out], int32 [out], float64 [out]"""
    ratio = tf.cast(size_in, tf.float64) / tf.cast(size_out, tf.float64)
    coord = (tf.range(tf.cast(size_out, tf.float64)) + 0.5) * ratio - 0.5
    low = tf.floor(coord)
    first = tf.cast(low, tf.int32) + 1
    return first, first + 1, coord - low


def resize_like_skimage(images, size):
    """`mrcnn.data.image.resize_image`'s resize of uint8 images [B, H, W, 3]
    to size (h', w'): bilinear at pixel centres, zeros beyond the edges, each
    image clipped to its own value range, rounded half to even. -> uint8
    [B, h', w', 3]"""
    x = tf.pad(tf.cast(images, tf.float64), [[0, 0], [1, 1], [1, 1], [0, 0]])
    for axis, size_in, size_out in ((1, tf.shape(images)[1], size[0]),
                                    (2, tf.shape(images)[2], size[1])):
        first, second, weight = _axis_samples(size_in, size_out)
        shape = [-1, 1, 1] if axis == 1 else [-1, 1]
        weight = tf.reshape(weight, shape)
        x = (tf.gather(x, first, axis=axis) * (1.0 - weight)
             + tf.gather(x, second, axis=axis) * weight)
    low = tf.cast(tf.reduce_min(images, axis=[1, 2, 3], keepdims=True), tf.float64)
    high = tf.cast(tf.reduce_max(images, axis=[1, 2, 3], keepdims=True), tf.float64)
    return tf.cast(tf.round(tf.clip_by_value(x, low, high)), tf.uint8)


def mold_images(images, m):
    """Images as the network takes them, as `mold_batch` makes them.

    images: uint8 [B, H, W, 3], one size. Returns molded float32 [B, h, w, 3],
    image_metas float32 [B, 12 + C], windows int32 [4] (y1, x1, y2, x2 of the
    image in the molded one) and scale float64 [].
    """
    images = tf.convert_to_tensor(images, tf.uint8)
    b, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    scale, (new_h, new_w), (out_h, out_w), (top, left) = molding_geometry(height, width, m)
    resized = tf.cond(tf.equal(scale, 1.0), lambda: images,
                      lambda: resize_like_skimage(images, (new_h, new_w)))
    padded = tf.pad(resized, [[0, 0], [top, out_h - new_h - top], [left, out_w - new_w - left],
                              [0, 0]])
    molded = tf.cast(padded, tf.float32) - tf.constant(m.mean_pixel, tf.float32)
    # mold_batch's canvas: a multiple of 64, extra rows and columns 0.0 (mode "none").
    canvas_h, canvas_w = _ceil64(out_h), _ceil64(out_w)
    molded = tf.pad(molded, [[0, 0], [0, canvas_h - out_h], [0, canvas_w - out_w], [0, 0]])
    window = tf.stack([top, left, top + new_h, left + new_w])
    meta = tf.concat([
        [0.0],
        tf.cast(tf.stack([height, width, 3, canvas_h, canvas_w, 3]), tf.float32),
        tf.cast(window, tf.float32),
        [tf.cast(scale, tf.float32)],
        tf.ones([m.num_classes], tf.float32),
    ], axis=0)
    return molded, tf.tile(meta[None], [b, 1]), window, scale


def unmold_batch(detections, mrcnn_mask, molded_shape, window, original_shape):
    """`postprocess.unmold_detections` for a batch of images of one size.

    detections: [B, D, 6] normalised to the molded image of molded_shape
    (h, w), zero-padded; mrcnn_mask: [B, D, mh, mw, C]; window: int32 [4];
    original_shape: (H, W) int32. Returns a dict: boxes int32 [B, N, (y1,
    x1, y2, x2)] in original pixels, class_ids int32 [B, N], scores float32
    [B, N], masks uint8 [B, N, H, W] (0 / 1), num_detections int32 [B];
    rows past an image's count are zeros.
    """
    height, width = original_shape
    boxes = tf.cast(box_ops.denormalize(detections[..., :4], molded_shape), tf.float64)
    wy1, wx1, wy2, wx2 = tf.unstack(tf.cast(window, tf.float64))
    scale_y = (wy2 - wy1) / tf.cast(height, tf.float64)
    scale_x = (wx2 - wx1) / tf.cast(width, tf.float64)
    boxes = (boxes - tf.stack([wy1, wx1, wy1, wx1])) / tf.stack([scale_y, scale_x] * 2)
    limits = tf.cast(tf.stack([height, width] * 2), tf.float64)
    boxes = tf.cast(tf.clip_by_value(tf.round(boxes), 0.0, limits), tf.int32)
    class_ids = tf.cast(detections[..., 4], tf.int32)
    keep = ((detections[..., 4] > 0) & (boxes[..., 2] > boxes[..., 0])
            & (boxes[..., 3] > boxes[..., 1]))  # [B, D]
    # The kept rows first, in their order; N = the most any image keeps.
    order = tf.argsort(tf.cast(~keep, tf.int32), axis=1, stable=True)
    counts = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    n = tf.reduce_max(tf.concat([counts, [0]], 0))
    order = order[:, :n]
    valid = tf.range(n)[None] < counts[:, None]  # [B, N]
    boxes = tf.where(valid[..., None], tf.gather(boxes, order, batch_dims=1), 0)
    class_ids = tf.where(valid, tf.gather(class_ids, order, batch_dims=1), 0)
    scores = tf.where(valid, tf.gather(detections[..., 5], order, batch_dims=1), 0.0)
    # Each row's mask of its class: [B, N, mh, mw].
    rows = tf.gather(mrcnn_mask, order, batch_dims=1)
    mini = tf.gather(tf.transpose(rows, [0, 1, 4, 2, 3]), class_ids, batch_dims=2)
    mh, mw = tf.shape(mini)[2], tf.shape(mini)[3]
    pasted = instance_masks.paste_masks_first(
        tf.reshape(mini, [-1, mh, mw]), tf.reshape(boxes, [-1, 4]), (height, width))
    pasted = tf.reshape(pasted, tf.stack([tf.shape(boxes)[0], n, height, width]))
    masks = tf.cast(pasted & valid[..., None, None], tf.uint8)
    return {"boxes": boxes, "class_ids": class_ids, "scores": scores, "masks": masks,
            "num_detections": counts}


def detect_images(keras_model, m, images):
    """The whole detection: uint8 images [B, H, W, 3] of one size -> the
    dict of `unmold_batch` (keras_model: an inference `MaskRCNNModel`)."""
    images = tf.convert_to_tensor(images, tf.uint8)
    molded, metas, window, _ = mold_images(images, m)
    out = keras_model({"image": molded, "image_meta": metas}, training=False)
    return unmold_batch(out["detections"], out["mrcnn_mask"], tf.shape(molded)[1:3], window,
                        (tf.shape(images)[1], tf.shape(images)[2]))
