"""Final detections from the classifier head (Matterport's DetectionLayer).

Shape shorthand:
    B: images; N: ROIs per image; C: classes (background included)
    D: DETECTION_MAX_INSTANCES
    boxes normalised to [0, 1], (y1, x1, y2, x2)
"""

from keras import ops

from mrcnn.modeling import box_ops
from mrcnn.modeling.nms import non_max_suppression

# Boxes of different classes are moved this far apart before one NMS, so
# that boxes only suppress boxes of their own class (batched NMS).
_CLASS_OFFSET = 4.0


def detect_batch(rois, probs, deltas, windows, *, max_instances, min_confidence, nms_threshold,
                 std_dev):
    """Detections of a batch of images.

    rois: [B, N, 4] (zero rows are padding); probs: [B, N, C]; deltas:
    [B, N, C, 4]; windows: [B, 4], the part of each molded image that is the
    real image; max_instances: D (DETECTION_MAX_INSTANCES); min_confidence,
    nms_threshold: DETECTION_MIN_CONFIDENCE, DETECTION_NMS_THRESHOLD;
    std_dev: [4] BBOX_STD_DEV.
    Each ROI takes its most likely class; background, low scores and
    overlaps within a class (NMS) are dropped. Returns [B, D, 6]
    (y1, x1, y2, x2, class_id, score) sorted by score, zero-padded.
    """
    class_ids = ops.argmax(probs, axis=-1)  # [B, N]
    scores = ops.max(probs, axis=-1)
    class_deltas = ops.take_along_axis(deltas, class_ids[..., None, None], axis=2)[:, :, 0]
    boxes = box_ops.decode(rois, class_deltas, std_dev)
    boxes = box_ops.clip(boxes, ops.cast(windows, "float32")[:, None, :])  # [B, N, 4]

    # Dropped ROIs stay in place with the score -inf, which NMS never keeps.
    wanted = (class_ids > 0) & (scores >= min_confidence) & box_ops.nonzero_rows(rois)
    class_ids = ops.cast(class_ids, "float32")
    shifted = boxes + _CLASS_OFFSET * class_ids[..., None]
    chosen, valid = non_max_suppression(
        shifted, ops.where(wanted, scores, float("-inf")), max_instances, nms_threshold)
    detections = ops.concatenate([boxes, class_ids[..., None], scores[..., None]], axis=-1)
    detections = ops.take_along_axis(detections, chosen[..., None], axis=1)
    return ops.where(valid[..., None], detections, 0.0)


def refine_detections(rois, probs, deltas, window, **kwargs):
    """`detect_batch` of one image: rois [N, 4], probs [N, C], deltas
    [N, C, 4], window [4] -> [D, 6]."""
    batch = [ops.cast(ops.convert_to_tensor(x), "float32")[None] for x in (rois, probs, deltas, window)]
    return detect_batch(*batch, **kwargs)[0]
