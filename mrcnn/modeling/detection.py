"""Final detections from the classifier head (Matterport's DetectionLayer).

Shape shorthand:
    B: images; N: ROIs per image; C: classes (background included)
    D: DETECTION_MAX_INSTANCES
    boxes normalised to [0, 1], (y1, x1, y2, x2)
"""

import tensorflow as tf

from mrcnn.modeling import box_ops

# Boxes of different classes are moved this far apart before one NMS, so
# that boxes only suppress boxes of their own class (batched NMS).
_CLASS_OFFSET = 4.0


def refine_detections(rois, probs, deltas, window, *, max_instances, min_confidence,
                      nms_threshold, std_dev):
    """Detections of one image.

    rois: [N, 4] (zero rows are padding); probs: [N, C]; deltas: [N, C, 4];
    window: [4], the part of the molded image that is the real image;
    max_instances: D (DETECTION_MAX_INSTANCES); min_confidence, nms_threshold:
    DETECTION_MIN_CONFIDENCE, DETECTION_NMS_THRESHOLD; std_dev: [4] BBOX_STD_DEV.
    Each ROI takes its most likely class; background, low scores and
    overlaps within a class (NMS) are dropped. Returns [D, 6]
    (y1, x1, y2, x2, class_id, score) sorted by score, zero-padded.
    """
    class_ids = tf.argmax(probs, axis=1, output_type=tf.int32)
    scores = tf.reduce_max(probs, axis=1)
    class_deltas = tf.gather(deltas, class_ids, batch_dims=1)  # [N, 4]
    boxes = box_ops.clip(box_ops.decode(rois, class_deltas, std_dev), window)

    keep = (class_ids > 0) & (scores >= min_confidence) & box_ops.nonzero_rows(rois)
    keep = tf.where(keep)[:, 0]
    boxes, class_ids, scores = (
        tf.gather(boxes, keep),
        tf.gather(class_ids, keep),
        tf.gather(scores, keep),
    )
    shifted = boxes + _CLASS_OFFSET * tf.cast(class_ids, tf.float32)[:, None]
    chosen = tf.image.non_max_suppression(shifted, scores, max_instances, nms_threshold)
    detections = tf.concat(
        [
            tf.gather(boxes, chosen),
            tf.cast(tf.gather(class_ids, chosen), tf.float32)[:, None],
            tf.gather(scores, chosen)[:, None],
        ],
        axis=1,
    )
    return tf.pad(detections, [[0, max_instances - tf.shape(detections)[0]], [0, 0]])


def detect_batch(rois, probs, deltas, windows, *, max_instances, **kwargs):
    """`refine_detections` over a batch: [B, N, ...] -> [B, D, 6]."""
    return tf.map_fn(
        lambda args: refine_detections(*args, max_instances=max_instances, **kwargs),
        (rois, probs, deltas, windows),
        fn_output_signature=tf.TensorSpec([max_instances, 6], tf.float32),
    )
