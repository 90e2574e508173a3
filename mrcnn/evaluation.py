"""Per-image average precision (the protocol of Matterport's `utils.compute_ap`).

Shape shorthand:
    G: ground-truth instances of an image; D: detections of that image
    T: IoU thresholds; HW: pixels of the image

For one image, detections are taken in decreasing score order; each is
matched to the unmatched ground truth of the same class with the highest
mask IoU, if that IoU is >= the threshold. AP is the area under the
precision/recall curve with all-point interpolation (precision made
monotone from the right, summed over the recall steps). Each ground truth
is matched at most once, so recall never exceeds 1 and a second detection
of an already matched instance is a false positive.

Crowd regions (negative class ids) are not ground truth here and images
without ground truth have no AP (None); callers count and skip them.
"""

import numpy as np

# Matterport's IoU sweep: 0.5, 0.55, ..., 0.95.
IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def mask_iou(masks1, masks2):
    """Pairwise mask IoU. masks1: [H, W, G] bool, masks2: [H, W, D] -> [G, D]."""
    pixels = masks1.shape[0] * masks1.shape[1]
    a = masks1.reshape(pixels, masks1.shape[-1]).astype(np.float32)
    b = masks2.reshape(pixels, masks2.shape[-1]).astype(np.float32)
    inter = a.T @ b
    union = a.sum(0)[:, None] + b.sum(0)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1.0), 0.0)


def match_detections(iou, gt_class_ids, pred_class_ids, pred_scores, thresholds):
    """Greedy matching at several IoU thresholds at once.

    iou: [G, D]; gt_class_ids: [G]; pred_class_ids, pred_scores: [D];
    thresholds: [T]. Returns (order [D]: detections by decreasing score,
    matched [T, D] bool in that order). The loop runs over the detections
    because each match depends on the earlier ones; thresholds and ground
    truth are handled as arrays.
    """
    thresholds = np.asarray(thresholds, np.float32)
    order = np.argsort(-np.asarray(pred_scores), kind="stable")
    same = np.asarray(gt_class_ids)[:, None] == np.asarray(pred_class_ids)[None, :]
    iou = np.where(same, iou, -1.0)[:, order]  # [G, D]
    taken = np.zeros((len(thresholds), iou.shape[0]), bool)  # [T, G]
    matched = np.zeros((len(thresholds), iou.shape[1]), bool)  # [T, D]
    rows = np.arange(len(thresholds))
    for d in range(iou.shape[1]):
        candidates = np.where(taken, -1.0, iou[None, :, d])  # [T, G]
        if not candidates.size:
            break
        best = candidates.argmax(axis=1)
        hit = candidates[rows, best] >= thresholds
        taken[rows[hit], best[hit]] = True
        matched[:, d] = hit
    return order, matched


def average_precision(matched, num_gt):
    """All-point interpolated AP per threshold. matched: [T, D] in score
    order; num_gt > 0. -> [T]"""
    matched = np.asarray(matched, bool)
    if matched.shape[1] == 0:
        return np.zeros(matched.shape[0])
    tp = np.cumsum(matched, axis=1)
    precision = tp / np.arange(1, matched.shape[1] + 1)
    recall = tp / num_gt
    # Monotone precision envelope (from the right), then sum over recall steps.
    envelope = np.flip(np.maximum.accumulate(np.flip(precision, 1), axis=1), 1)
    steps = np.diff(np.concatenate([np.zeros((len(recall), 1)), recall], axis=1), axis=1)
    return (envelope * steps).sum(axis=1)


def image_ap(gt_masks, gt_class_ids, pred_masks, pred_class_ids, pred_scores,
             thresholds=(0.5,)):
    """AP of one image at each IoU threshold, or None without ground truth.

    gt_masks: [H, W, G] bool (crowds, class id < 0, are ignored);
    pred_masks: [H, W, D] bool. -> [T] float or None
    """
    keep = np.asarray(gt_class_ids) > 0
    gt_masks, gt_class_ids = gt_masks[..., keep], np.asarray(gt_class_ids)[keep]
    if not len(gt_class_ids):
        return None
    iou = mask_iou(gt_masks, pred_masks)
    _, matched = match_detections(iou, gt_class_ids, pred_class_ids, pred_scores, thresholds)
    return average_precision(matched, len(gt_class_ids))


def evaluate_model(model, dataset, image_ids=None, thresholds=(0.5,)):
    """Mean per-image AP of an inference `MaskRCNN` over a dataset.

    Images without ground truth are skipped and counted. Returns a dict:
    ap [T] (mean over scored images), per_image {image_id: [T]}, skipped
    (ids without ground truth).
    """
    image_ids = dataset.image_ids if image_ids is None else image_ids
    per_image, skipped = {}, []
    batch = model.config.BATCH_SIZE
    for start in range(0, len(image_ids), batch):
        ids = list(image_ids[start:start + batch])
        images = [dataset.load_image(i) for i in ids]
        padded = images + [images[-1]] * (batch - len(images))
        results = model.detect(padded)[:len(ids)]
        for image_id, r in zip(ids, results):
            masks, class_ids = dataset.load_mask(image_id)
            ap = image_ap(masks, class_ids, r["masks"], r["class_ids"], r["scores"], thresholds)
            if ap is None:
                skipped.append(image_id)
            else:
                per_image[image_id] = ap
    scores = np.array(list(per_image.values())).reshape(-1, len(thresholds))
    mean = scores.mean(axis=0) if len(scores) else np.full(len(thresholds), np.nan)
    return {"ap": mean, "per_image": per_image, "skipped": skipped}
