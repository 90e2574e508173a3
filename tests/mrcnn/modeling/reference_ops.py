"""The TensorFlow ops the model used before its keras.ops rewrite, kept as references.

`mrcnn/modeling/roi_align.py` and `mrcnn/modeling/nms.py` must give what
these give (test_roi_align.py, test_nms.py; benchmarks/bench_roi_nms.py times
both). Shapes as in those modules.
"""

import tensorflow as tf

MIN_LEVEL, MAX_LEVEL = 2, 5


def roi_levels(boxes, image_shape):
    """The pyramid level of each box, in tf ops. boxes: [..., 4] -> int32 [...]"""
    boxes = tf.cast(boxes, tf.float32)
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    hw = tf.cast(tf.convert_to_tensor(image_shape)[:2], tf.float32)
    side = tf.sqrt(tf.maximum(h * w, 0.0) * hw[0] * hw[1])
    level = 4.0 + tf.round(tf.math.log(tf.maximum(side, 1e-6) / 224.0) / tf.math.log(2.0))
    level = tf.clip_by_value(level, MIN_LEVEL, MAX_LEVEL)
    return tf.cast(tf.where(tf.math.is_nan(level), float(MIN_LEVEL), level), tf.int32)


def crop_and_resize_roi_align(boxes, feature_maps, image_shape, pool_size):
    """ROIAlign with tf.image.crop_and_resize, one call per level.

    boxes: [B, N, 4]; feature_maps: [P2..P5] -> [B, N, pool_size, pool_size, C]
    """
    boxes = tf.cast(boxes, tf.float32)
    batch = tf.shape(boxes)[0]
    n = tf.shape(boxes)[1]
    flat = tf.reshape(boxes, [-1, 4])
    flat = tf.where(tf.math.is_finite(flat), flat, 0.0)
    image_idx = tf.repeat(tf.range(batch), n)
    levels = roi_levels(flat, image_shape)

    pooled, order = [], []
    for level, fmap in zip(range(MIN_LEVEL, MAX_LEVEL + 1), feature_maps):
        idx = tf.cast(tf.where(levels == level)[:, 0], tf.int32)
        level_boxes = tf.stop_gradient(tf.gather(flat, idx))
        pooled.append(
            tf.image.crop_and_resize(
                fmap, level_boxes, tf.gather(image_idx, idx), [pool_size, pool_size]
            )
        )
        order.append(idx)
    pooled = tf.concat(pooled, axis=0)
    pooled = tf.gather(pooled, tf.argsort(tf.concat(order, axis=0)))
    channels = feature_maps[0].shape[-1]
    return tf.reshape(pooled, [batch, n, pool_size, pool_size, channels])


def kernel_nms(boxes, scores, max_output_size, iou_threshold):
    """tf.image.non_max_suppression image by image, zero-padded to D.

    boxes: [B, K, 4]; scores: [B, K] -> indices int32 [B, D], counts int32 [B]
    """

    def one_image(args):
        keep = tf.image.non_max_suppression(args[0], args[1], max_output_size, iou_threshold)
        count = tf.shape(keep)[0]
        return tf.pad(keep, [[0, max_output_size - count]]), count

    return tf.map_fn(one_image, (tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32)),
                     fn_output_signature=(tf.TensorSpec([max_output_size], tf.int32),
                                          tf.TensorSpec([], tf.int32)))
