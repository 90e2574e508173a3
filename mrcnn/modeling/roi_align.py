"""ROIAlign over the feature pyramid (Matterport's PyramidROIAlign).

Shape shorthand:
    B: images; N: boxes per image; C: feature channels
    boxes: [B, N, (y1, x1, y2, x2)] normalised to [0, 1]
    feature_maps: [P2, P3, P4, P5], each [B, Hl, Wl, C]

Each box is pooled from one level, chosen by its size as in the FPN paper:
level = 4 + round(log2(sqrt(box area in pixels) / 224)), clamped to 2..5.
Sampling follows `tf.image.crop_and_resize` on normalised boxes (box
corners on the first and last sample), as Matterport does, so its published
weights see the features they were trained on. There is no XLA kernel for
crop_and_resize: models using this run with jit_compile=False.
"""

import tensorflow as tf

MIN_LEVEL, MAX_LEVEL = 2, 5


def roi_levels(boxes, image_shape):
    """Pyramid level (2..5) of each box, whatever the box.

    A box with a negative area (y2 < y1 but x2 > x1) or NaN corners goes to
    level 2: its NaN level would otherwise become INT_MIN, match no level,
    and drop the box from the pooled features.

    boxes: [..., 4] normalised, image_shape: (H, W, ...) pixels -> int32 [...]
    """
    boxes = tf.cast(boxes, tf.float32)
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    hw = tf.cast(tf.convert_to_tensor(image_shape)[:2], tf.float32)
    side = tf.sqrt(tf.maximum(h * w, 0.0) * hw[0] * hw[1])
    level = 4.0 + tf.round(tf.math.log(tf.maximum(side, 1e-6) / 224.0) / tf.math.log(2.0))
    level = tf.clip_by_value(level, MIN_LEVEL, MAX_LEVEL)
    return tf.cast(tf.where(tf.math.is_nan(level), float(MIN_LEVEL), level), tf.int32)


def pyramid_roi_align(boxes, feature_maps, image_shape, pool_size):
    """Pool a fixed-size feature patch for every box.

    boxes: [B, N, 4]; feature_maps: [P2..P5]; image_shape: the molded image's
    (H, W); pool_size: int -> [B, N, pool_size, pool_size, C]
    """
    boxes = tf.cast(boxes, tf.float32)
    batch = tf.shape(boxes)[0]
    n = tf.shape(boxes)[1]
    flat = tf.reshape(boxes, [-1, 4])
    # Diverged training can give NaN / Inf boxes, which crop_and_resize
    # rejects and roi_levels cannot place: they pool from an empty box
    # instead, so the output keeps its N rows (the losses see the NaNs).
    flat = tf.where(tf.math.is_finite(flat), flat, 0.0)
    image_idx = tf.repeat(tf.range(batch), n)
    levels = roi_levels(flat, image_shape)

    pooled, order = [], []
    for level, fmap in zip(range(MIN_LEVEL, MAX_LEVEL + 1), feature_maps):
        idx = tf.cast(tf.where(levels == level)[:, 0], tf.int32)
        # Gradients flow to the features, never back into the boxes.
        level_boxes = tf.stop_gradient(tf.gather(flat, idx))
        pooled.append(
            tf.image.crop_and_resize(
                fmap, level_boxes, tf.gather(image_idx, idx), [pool_size, pool_size]
            )
        )
        order.append(idx)
    pooled = tf.concat(pooled, axis=0)
    # Put the boxes back in their input order.
    pooled = tf.gather(pooled, tf.argsort(tf.concat(order, axis=0)))
    channels = feature_maps[0].shape[-1]
    return tf.reshape(pooled, [batch, n, pool_size, pool_size, channels])
