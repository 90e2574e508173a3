"""The TensorFlow code the model used before its keras.ops rewrite, kept as references.

`roi_levels` of mrcnn/modeling/roi_align.py and `non_max_suppression` of
mrcnn/modeling/nms.py must give what these give (test_roi_align.py,
test_nms.py; benchmarks/bench_roi_nms.py times the NMS). The crop_and_resize
ROIAlign stays in roi_align.py itself (method="crop_and_resize").
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
