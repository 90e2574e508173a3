"""Detections back in the original image: un-molding boxes and masks.

Shape shorthand:
    D: DETECTION_MAX_INSTANCES (zero-padded rows); N: the detections kept
    h, w: MASK_SHAPE; C: classes; H, W: the molded image; oh, ow: the original

The network sees the image resized and padded (mrcnn/data/image.py:
`window` is where the image lies in the molded one); these functions undo
that: boxes to the original pixels, each detection's mask of its class
pasted into its box at the original resolution.
"""

import keras
import numpy as np

from mrcnn.data import instances
from mrcnn.modeling import box_ops


def to_original_boxes(boxes, original_image_shape, image_shape, window):
    """Boxes normalised to the molded image of `image_shape` -> int32
    [N, (y1, x1, y2, x2)] pixels of the original image, clipped to it."""
    boxes = keras.ops.convert_to_numpy(box_ops.denormalize(boxes, image_shape))
    wy1, wx1, wy2, wx2 = [float(v) for v in window]
    scale_y = (wy2 - wy1) / original_image_shape[0]
    scale_x = (wx2 - wx1) / original_image_shape[1]
    boxes = (boxes - [wy1, wx1, wy1, wx1]) / [scale_y, scale_x, scale_y, scale_x]
    h, w = original_image_shape[:2]
    return np.clip(np.round(boxes), 0, [h, w, h, w]).astype(np.int32)


def unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window):
    """One image's detections in its original pixels.

    detections: [D, 6] normalised to the molded image of `image_shape`,
    zero-padded; mrcnn_mask: [D, h, w, C]; window: (y1, x1, y2, x2) of the
    image inside the molded image. Returns the dict `detect()` documents.
    """
    n = int(np.count_nonzero(detections[:, 4] > 0))
    detections = detections[:n]
    class_ids = detections[:, 4].astype(np.int32)
    scores = detections[:, 5].astype(np.float32)
    boxes = to_original_boxes(detections[:, :4], original_image_shape, image_shape, window)
    h, w = original_image_shape[:2]
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, class_ids, scores = boxes[keep], class_ids[keep], scores[keep]
    class_masks = mrcnn_mask[:n][keep][np.arange(len(class_ids)), :, :, class_ids]
    full = instances.paste_masks(class_masks, boxes, (h, w))
    return {"rois": boxes, "class_ids": class_ids, "scores": scores, "masks": full}
