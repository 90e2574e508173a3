"""Per-image average precision (the protocol of Matterport's `utils.compute_ap`).

Shape shorthand:
    B: images; G: ground-truth instances of an image; D: detections of an
    image, in decreasing score order; T: IoU thresholds; C: classes
    HW: pixels of an image

For one image, detections are taken in decreasing score order (equal
scores in their given order: `mrcnn.evaluation.ranking`); each is
matched to the unmatched ground truth of the same class with the highest
mask IoU, if that IoU is >= the threshold. AP is the area under the
precision/recall curve with all-point interpolation (precision made
monotone from the right, summed over the recall steps).

- AP@t: the mean over images with ground truth of the image's AP at IoU t;
  AP@0.5 is the headline figure, rAP the mean of AP@0.5, 0.55, ..., 0.95.
- cAP of class c: for each image that has ground truth of class c, the AP
  of its class-c detections against its class-c ground truth; then the
  mean over those images. Detections of c in images without c do not
  count. (Matching is per class anyway, so the matches are the same ones
  as for AP.)
- Crowd regions (negative class ids) are not ground truth here, and
  detections on them are false positives, as in Matterport. Images
  without ground truth have no AP; they are counted and skipped.

Each ground truth is matched at most once, so recall never exceeds 1 and a
second detection of a matched instance is a false positive. Matterport's
`compute_matches` skips a ground truth only when `gt_match[j] > 0`, where
gt_match holds the index of the detection that took it: a ground truth
taken by the highest-scoring detection (index 0) stays free, and the next
detection on it is counted as a second true positive. That raises AP
whenever the top detection has a duplicate above the threshold (and can
give recall above 1). `legacy_matterport=True` reproduces it for
comparison; docs/evaluation.md reports the difference it makes.

All thresholds are matched at once from one IoU matrix per image, in a
compiled keras.ops loop over the detections (a tf.function on TensorFlow,
jax.jit on JAX; on a GPU when there is one), for a chunk of images at a
time.
"""

import functools

import keras
import numpy as np
from keras import ops

from mrcnn.evaluation.ranking import rank_order
from mrcnn.modeling import kernels

# Matterport's IoU sweep: 0.5, 0.55, ..., 0.95.
IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
# Images matched in one TensorFlow call.
CHUNK = 64


def threshold_key(t):
    """0.5 -> "0.50", the key of a threshold in reports."""
    return f"{float(t):.2f}"


def mask_iou(masks1, masks2):
    """Pairwise mask IoU. masks1: [H, W, G] bool, masks2: [H, W, D] -> [G, D]."""
    pixels = masks1.shape[0] * masks1.shape[1]
    a = masks1.reshape(pixels, masks1.shape[-1]).astype(np.float32)
    b = masks2.reshape(pixels, masks2.shape[-1]).astype(np.float32)
    return iou_from_overlaps(a.T @ b, a.sum(0), b.sum(0))


def iou_from_overlaps(intersection, gt_pixels, pred_pixels):
    """Mask IoU from pixel counts: intersection [G, D], gt_pixels [G],
    pred_pixels [D] -> [G, D] float32 (0 where the union is empty)."""
    inter = np.asarray(intersection, np.float32)
    union = (np.asarray(gt_pixels, np.float32)[:, None]
             + np.asarray(pred_pixels, np.float32)[None, :] - inter)
    return np.where(union > 0, inter / np.maximum(union, 1.0), 0.0).astype(np.float32)


def sweep_matches(iou, thresholds, legacy_matterport=False):
    """Greedy matching at every threshold for a batch of images.

    iou: [B, G, D] float32, detections in score order; -1 where the classes
        differ and for padding rows/columns.
    thresholds: [T] float32. legacy_matterport: see the module docstring.
    Returns NumPy arrays (matched [B, T, D] bool: detection d is a true
    positive, taken [B, T, G] bool: ground truth g was matched,
    gt_index [B, T, D] int32: the ground truth detection d matched, or -1).
    """
    iou = np.ascontiguousarray(iou, np.float32)
    thresholds = np.ascontiguousarray(thresholds, np.float32)
    taken, gt_index = _compiled_sweep(keras.backend.backend(), bool(legacy_matterport))(
        iou, thresholds)
    gt_index = ops.convert_to_numpy(gt_index)
    return gt_index >= 0, ops.convert_to_numpy(taken), gt_index


def _sweep(iou, thresholds, legacy_matterport):
    """sweep_matches' loop in keras.ops: one step per detection, all images
    and thresholds at once. -> taken [B, T, G] bool, gt_index [B, T, D]"""
    shape = ops.shape(iou)
    batch, num_gt, num_det = shape[0], shape[1], shape[2]
    num_t = ops.shape(thresholds)[0]
    by_det = ops.transpose(iou, (2, 0, 1))  # [D, B, G]

    def step(d, state):
        taken, gt_index = state  # [B, T, G], [D, B, T]
        candidates = ops.where(taken, -1.0, ops.take(by_det, d, axis=0)[:, None, :])  # [B, T, G]
        best = kernels.argmax(candidates, axis=2)  # [B, T]
        hit = ops.max(candidates, axis=2) >= thresholds[None, :]  # [B, T]
        take = ops.logical_and(ops.one_hot(best, num_gt, dtype="bool"), hit[..., None])
        if legacy_matterport:
            take = ops.logical_and(take, d > 0)
        row = ops.where(hit, best, -1)[None]  # [1, B, T]
        return ops.logical_or(taken, take), ops.slice_update(gt_index, (d, 0, 0), row)

    taken, gt_index = ops.fori_loop(0, num_det, step, (
        ops.zeros((batch, num_t, num_gt), "bool"), ops.zeros((num_det, batch, num_t), "int32")))
    return taken, ops.transpose(gt_index, (1, 2, 0))


@functools.cache
def _compiled_sweep(backend, legacy_matterport):
    """_sweep compiled for the backend, once per (backend, rule): a
    tf.function off XLA on TensorFlow (shapes left free: the chunks' G and D
    vary), jax.jit on JAX (one compilation per shape). A metric on small
    host-side arrays, not the model: Config.JIT_COMPILE does not apply."""
    def sweep(iou, thresholds):
        return _sweep(iou, thresholds, legacy_matterport)

    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(sweep, reduce_retracing=True, jit_compile=False)
    if backend == "jax":
        import jax

        return jax.jit(sweep)
    return sweep


def precision_envelope(matched, selected):
    """Precision after each selected detection, made monotone from the right.

    matched: [..., T, D] bool (true positives, detections in score order);
    selected: [..., D] bool, the detections that count. Returns (hits
    [..., T, D] bool: selected true positives, their running count
    [..., T, D], the envelope [..., T, D] float64, 0 where not selected).
    """
    sel = np.asarray(selected, bool)[..., None, :]
    hit = np.asarray(matched, bool) & sel
    tp = np.cumsum(hit, axis=-1)
    seen = np.cumsum(np.broadcast_to(sel, hit.shape), axis=-1)
    precision = np.where(sel, tp / np.maximum(seen, 1), 0.0)
    envelope = np.flip(np.maximum.accumulate(np.flip(precision, -1), axis=-1), -1)
    return hit, tp, envelope


def average_precision(matched, selected, num_gt):
    """All-point interpolated AP of the selected detections.

    matched: [..., T, D] bool (true positives, detections in score order);
    selected: [..., D] bool, the detections that count (e.g. one class);
    num_gt: [...] > 0, ground truths they are scored against. -> [..., T]
    """
    # Recall grows by 1/num_gt at each hit.
    hit, _, envelope = precision_envelope(matched, selected)
    return np.where(hit, envelope, 0.0).sum(axis=-1) / np.asarray(num_gt, float)[..., None]


class MatterportEval:
    """AP@t, rAP and cAP@0.5 over images added one at a time.

    class_names: names of class ids 1..C (index 0, the background, unused).
    thresholds: [T] IoU thresholds (default 0.5:0.05:0.95).
    """

    def __init__(self, class_names, thresholds=IOU_THRESHOLDS, legacy_matterport=False):
        self.class_names = list(class_names)
        self.thresholds = np.asarray(thresholds, np.float32)
        self.legacy_matterport = bool(legacy_matterport)
        self._images = []

    def add_image(self, key, gt_class_ids, pred_class_ids, pred_scores, iou):
        """gt_class_ids: [G] (crowds, ids <= 0, are dropped); pred_class_ids,
        pred_scores: [D] (finite: ValueError otherwise); iou: [G, D] mask
        IoU of each pair."""
        gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
        iou = np.asarray(iou, np.float32).reshape(len(gt_class_ids), len(pred_scores))
        keep = gt_class_ids > 0
        order = rank_order(pred_scores)
        self._images.append((key, gt_class_ids[keep], np.asarray(pred_class_ids)[order],
                             np.asarray(pred_scores, np.float64)[order], iou[keep][:, order],
                             order))

    def matches(self):
        """Per image (key, gt classes [G], det classes [D], scores [D],
        matched [T, D], gt_matched [T, G], order [D]): detections in score
        order, order[i] = the index given to add_image of the i-th."""
        out = []
        for start in range(0, len(self._images), CHUNK):
            chunk = self._images[start:start + CHUNK]
            g = max(1, max(len(c[1]) for c in chunk))
            d = max(1, max(len(c[2]) for c in chunk))
            iou = np.full((len(chunk), g, d), -1.0, np.float32)
            for i, (_, gt, det, _, m, _) in enumerate(chunk):
                same = gt[:, None] == det[None, :]
                iou[i, :len(gt), :len(det)] = np.where(same, m, -1.0)
            matched, taken, _ = sweep_matches(iou, self.thresholds, self.legacy_matterport)
            out += [(k, gt, det, s, matched[i, :, :len(det)], taken[i, :, :len(gt)], order)
                    for i, (k, gt, det, s, _, order) in enumerate(chunk)]
        return out

    def result(self):
        """Dict with ap [T] (mean over images with ground truth), ap50, rap,
        ap_by_iou {"0.50": ...}, cap50 {name: AP or None when no image has
        the class}, per_image {key: [T]}, skipped (keys without ground
        truth), and pr_curve: pooled precision/recall over all images at
        each threshold, {"0.50": (precision [N], recall [N])}."""
        per_image, skipped, per_class = {}, [], {c: [] for c in range(1, len(self.class_names))}
        pooled_scores, pooled_hits, total_gt = [], [], 0
        half = int(np.argmin(np.abs(self.thresholds - 0.5)))
        for key, gt, det, scores, matched, _, _ in self.matches():
            pooled_scores.append(scores)
            pooled_hits.append(matched)
            total_gt += len(gt)
            if not len(gt):
                skipped.append(key)
                continue
            per_image[key] = average_precision(matched, np.ones(len(det), bool), len(gt))
            for c in np.unique(gt):
                if c in per_class:
                    per_class[c].append(average_precision(
                        matched[half:half + 1], det == c, np.count_nonzero(gt == c))[0])
        t = len(self.thresholds)
        ap = (np.mean(list(per_image.values()), axis=0) if per_image
              else np.full(t, np.nan))
        return {
            "ap": ap, "ap50": float(ap[half]), "rap": float(np.mean(ap)),
            "ap_by_iou": {threshold_key(th): float(a) for th, a in zip(self.thresholds, ap)},
            "cap50": {self.class_names[c]: (float(np.mean(v)) if v else None)
                      for c, v in per_class.items()},
            "per_image": per_image, "skipped": skipped,
            "pr_curve": _pooled_curves(pooled_scores, pooled_hits, total_gt, self.thresholds),
        }


def _pooled_curves(scores, hits, total_gt, thresholds):
    """Precision/recall of all detections pooled over images, per threshold."""
    if not scores or total_gt == 0:
        return {threshold_key(t): (np.zeros(0), np.zeros(0)) for t in thresholds}
    scores = np.concatenate(scores)
    hits = np.concatenate(hits, axis=1)  # [T, N]
    order = rank_order(scores)
    tp = np.cumsum(hits[:, order], axis=1)
    n = np.arange(1, len(order) + 1)
    return {threshold_key(t): (tp[i] / n, tp[i] / total_gt) for i, t in enumerate(thresholds)}


def image_ap(gt_masks, gt_class_ids, pred_masks, pred_class_ids, pred_scores,
             thresholds=(0.5,)):
    """AP of one image at each IoU threshold, or None without ground truth.

    gt_masks: [H, W, G] bool (crowds, class id < 0, are ignored);
    pred_masks: [H, W, D] bool. -> [T] float or None
    """
    ev = MatterportEval(["BG"], thresholds)
    ev.add_image(0, gt_class_ids, pred_class_ids, pred_scores, mask_iou(gt_masks, pred_masks))
    return ev.result()["per_image"].get(0)


def evaluate_model(model, dataset, image_ids=None, thresholds=(0.5,)):
    """Mean per-image AP of an inference `MaskRCNN` over a dataset.

    Images without ground truth are skipped and counted. Returns
    `MatterportEval.result()` (ap [T], per_image, skipped, cap50, ...).
    """
    image_ids = dataset.image_ids if image_ids is None else image_ids
    ev = MatterportEval(dataset.class_names, thresholds)
    batch = model.config.BATCH_SIZE
    for start in range(0, len(image_ids), batch):
        ids = list(image_ids[start:start + batch])
        images = [dataset.load_image(i) for i in ids]
        padded = images + [images[-1]] * (batch - len(images))
        results = model.detect(padded)[:len(ids)]
        for image_id, r in zip(ids, results):
            masks, class_ids = dataset.load_mask(image_id)
            ev.add_image(image_id, class_ids, r["class_ids"], r["scores"],
                         mask_iou(masks, r["masks"]))
    return ev.result()
