"""Region proposals from the RPN outputs (Matterport's ProposalLayer).

Shape shorthand:
    B: images; A: anchors; K: pre-NMS candidates, min(pre_nms_limit, A)
    R: proposals kept per image (POST_NMS_ROIS_TRAINING / _INFERENCE)
    boxes normalised to [0, 1], (y1, x1, y2, x2)
"""

import tensorflow as tf

from mrcnn.modeling import box_ops


def generate_proposals(rpn_probs, rpn_deltas, anchors, *, proposal_count, nms_threshold,
                       pre_nms_limit, std_dev):
    """Top-scoring anchors, refined by their deltas, clipped, after NMS.

    rpn_probs: [B, A, 2] (background, object); rpn_deltas: [B, A, 4];
    anchors: [A, 4] normalised; proposal_count: R (POST_NMS_ROIS_*);
    nms_threshold: RPN_NMS_THRESHOLD; pre_nms_limit: K at most
    (PRE_NMS_LIMIT); std_dev: [4] RPN_BBOX_STD_DEV -> proposals [B, R, 4],
    zero-padded when fewer survive NMS.
    """
    scores = rpn_probs[:, :, 1]
    k = tf.minimum(pre_nms_limit, tf.shape(anchors)[0])
    scores, idx = tf.math.top_k(scores, k=k, sorted=True)  # [B, K]
    deltas = tf.gather(rpn_deltas, idx, batch_dims=1)  # [B, K, 4]
    boxes = box_ops.decode(tf.gather(anchors, idx), deltas, std_dev)
    boxes = box_ops.clip(boxes, [0.0, 0.0, 1.0, 1.0])

    def nms(args):
        image_boxes, image_scores = args
        keep = tf.image.non_max_suppression(
            image_boxes, image_scores, proposal_count, nms_threshold
        )
        kept = tf.gather(image_boxes, keep)
        return tf.pad(kept, [[0, proposal_count - tf.shape(kept)[0]], [0, 0]])

    proposals = tf.map_fn(
        nms, (boxes, scores), fn_output_signature=tf.TensorSpec([proposal_count, 4], tf.float32)
    )
    return tf.stop_gradient(proposals)
