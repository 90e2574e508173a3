"""Region proposals from the RPN outputs (Matterport's ProposalLayer).

Shape shorthand:
    B: images; A: anchors; K: pre-NMS candidates, min(pre_nms_limit, A)
    R: proposals kept per image (POST_NMS_ROIS_TRAINING / _INFERENCE)
    boxes normalised to [0, 1], (y1, x1, y2, x2)
"""

from keras import ops

from mrcnn.modeling import box_ops
from mrcnn.modeling.nms import non_max_suppression


def generate_proposals(rpn_probs, rpn_deltas, anchors, *, proposal_count, nms_threshold,
                       pre_nms_limit, std_dev):
    """Top-scoring anchors, refined by their deltas, clipped, after NMS.

    rpn_probs: [B, A, 2] (background, object); rpn_deltas: [B, A, 4];
    anchors: [A, 4] normalised; proposal_count: R (POST_NMS_ROIS_*);
    nms_threshold: RPN_NMS_THRESHOLD; pre_nms_limit: K at most
    (PRE_NMS_LIMIT); std_dev: [4] RPN_BBOX_STD_DEV -> proposals [B, R, 4],
    zero-padded when fewer survive NMS (nms.py: greedy NMS, static shapes).
    """
    scores = rpn_probs[:, :, 1]
    num_anchors = anchors.shape[0]
    if num_anchors is None:  # image size not static: TensorFlow graphs only
        k = ops.minimum(pre_nms_limit, ops.shape(anchors)[0])
    else:
        k = min(pre_nms_limit, num_anchors)
    scores, idx = ops.top_k(scores, k=k, sorted=True)  # [B, K]
    deltas = ops.take_along_axis(rpn_deltas, idx[..., None], axis=1)  # [B, K, 4]
    boxes = box_ops.decode(ops.take(anchors, idx, axis=0), deltas, std_dev)
    boxes = box_ops.clip(boxes, [0.0, 0.0, 1.0, 1.0])

    keep, valid = non_max_suppression(boxes, scores, proposal_count, nms_threshold)
    proposals = ops.take_along_axis(boxes, keep[..., None], axis=1)  # [B, R, 4]
    return ops.stop_gradient(ops.where(valid[..., None], proposals, 0.0))
