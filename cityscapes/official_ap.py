"""The official Cityscapes instance-level AP, computed from mask runs.

Shape shorthand:
    H, W: image height and width
    P: predictions of an image; U: distinct values of its instance id image
    G: those values whose label is an evaluated class (instances and groups)
    T: IoU thresholds (10); K: evaluated classes (8); M: scored predictions
    R: foreground runs of the masks; S: vertical runs of one id-image value

A re-implementation of cityscapesscripts'
`evaluation/evalInstanceLevelSemanticLabeling.py` (matchGtWithPreds,
assignGt2Preds, evaluateMatches, computeAverages, with instances2dict and
instance.py for the ground truth) whose results equal the script's, quirks
included, without reading mask PNGs or comparing full images per pair: an
image's work is one overlap count (the dict of `mrcnn.evaluation.rle.overlap_counts`:
pixels of every predicted mask on every value of the id image, from the
runs of the masks and of the id image) and a few [T, P, G] array
operations. Only the scores of true and false
positives and the hard false negative counts per (class, threshold) are
kept between images.

The ground truth is the official instance id image: labelId * 1000 + k for
an instance, the plain labelId for a group ("cargroup") or stuff. The
rules, as the script applies them (setting without distances: only the
first minimum region size, infinite distance):

* classes: the labels with instances that are not ignoreInEval: person,
  rider, car, truck, bus, train, motorcycle, bicycle (caravan and trailer
  are not evaluated); a prediction of any other label is skipped, and so
  is a prediction whose mask is empty (it does not even count as "the
  class has predictions");
* the gt instances scored are the values >= 1000 of the class with at
  least MIN_REGION_SIZE = 100 pixels;
* a prediction is compared with every value of its own label in the image
  (groups and small instances too); IoU = inter / (gt pixels + predicted
  pixels - inter), matched when strictly greater than the threshold, for
  the thresholds np.arange(0.5, 1., 0.05) exactly as the script builds them
  (0.6000000000000001, 0.7000000000000002, ...: not the rounded decimals);
* a scored gt matched by several predictions: the best ranked
  (`mrcnn.evaluation.ranking`: highest score, then given order) is the
  true positive, each other one a false positive with its own score (the
  script keeps a running maximum and appends the minimum as a false
  positive, which comes to this multiset);
* a scored gt matched by none: a hard false negative;
* a prediction matching nothing (no value of its label above the
  threshold) is a false positive unless ignored. It is ignored when it
  matches a group or small instance (any value of its label, so this is
  covered by "matching nothing"), or when its share of ignored pixels is
  <= the threshold, where ignored pixels = pixels on void (values equal to
  the id of an ignoreInEval label: 0 unlabeled, 1 ego vehicle, ..., 29
  caravan group, 30 trailer group; caravan instances 29xxx are not void)
  + pixels on groups of its label + pixels on small instances of its
  label, so a group under 100 pixels counts twice, as in the script;
* per class and threshold, over all images: no scored gt -> NaN; scored gt
  but no prediction -> 0.0; otherwise the script's integration: scores
  sorted with their unique values as thresholds, precision = tp / (tp +
  fp) and recall = tp / (tp + fn + hard FNs) at each (counting the
  predictions scoring >= the threshold), an artificial last point with
  precision 1 and recall 0, step widths from the convolution of the
  recalls (padded with the first recall in front and 0 behind) with
  [-0.5, 0, 0.5], AP = precision . widths. (Half-steps: one false positive
  scoring above the only true positive gives 0.25, not 0.5.)
* AP = np.nanmean over all (class, threshold) entries, AP50 = np.nanmean
  over the classes at threshold 0.5; per class np.average (NaN when the
  class is NaN).

One case where the script fails: a class with scored gt and predictions,
but at some threshold no true and no false positive at all (every
prediction ignored, every gt missed) makes it raise IndexError (cumsum of
an empty array). There we give 0.0, the value of its integration over the
artificial point alone.

    ev = CityscapesInstanceEval()
    for gt_ids, label_ids, scores, rles in frames:
        ev.add_image(gt_ids, label_ids, scores, rles)
    ev.result()  # {"AP", "AP50", "classes": {name: {"AP", "AP50"}}, "ap_matrix" [K, T]}
"""

import warnings

import numpy as np
from cityscapesscripts.helpers.labels import id2label
from cityscapesscripts.helpers.labels import labels as _LABELS

from cityscapes.labels import EVALUATED_CLASSES, label_by_name
from cityscapes.rasterize import INSTANCE_FACTOR, label_of_value
from mrcnn.evaluation import rle
from mrcnn.evaluation.ranking import rank_order, ranks

# IoU thresholds [T], built as the script builds them.
OVERLAPS = np.arange(0.5, 1., 0.05)
# The threshold of AP50 (the script finds it with np.isclose).
AP50_INDEX = int(np.flatnonzero(np.isclose(OVERLAPS, 0.5))[0])
# Scored gt instances have at least this many pixels.
MIN_REGION_SIZE = 100
# The evaluated classes [K] and their label ids, in the script's order.
CLASS_NAMES = EVALUATED_CLASSES
CLASS_LABEL_IDS = np.array([label_by_name(n).id for n in CLASS_NAMES], np.int64)
# Values whose pixels are void: the ids of the ignoreInEval labels.
VOID_IDS = np.array(sorted(label.id for label in _LABELS if label.ignoreInEval), np.int64)


def class_index(label_ids):
    """Index of each label id [N] in CLASS_LABEL_IDS, -1 for labels not evaluated."""
    label_ids = np.asarray(label_ids, np.int64)
    hit = label_ids[..., None] == CLASS_LABEL_IDS
    return np.where(hit.any(-1), hit.argmax(-1), -1)


def ignore_share(overlaps, pred_class, gt_class):
    """Share of each prediction's pixels the script ignores, [P] float64.

    (void pixels + pixels on groups of its class + pixels on instances of
    its class under MIN_REGION_SIZE) / its pixels, with a small group
    counted twice. Predictions without pixels get NaN.
    """
    values, pixels = overlaps["values"], overlaps["value_pixels"]
    inter, areas = overlaps["intersection"], overlaps["areas"]
    void = inter[:, np.isin(values, VOID_IDS)].sum(axis=1)
    weight = (values < INSTANCE_FACTOR).astype(np.int64) + (pixels < MIN_REGION_SIZE)
    same = (pred_class[:, None] == gt_class[None, :]) & (gt_class >= 0)[None, :]
    ignored = void + (np.where(same, inter, 0) * weight).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ignored.astype(np.float64) / areas


def match_image(overlaps, label_ids, scores):
    """One image's contribution to the AP of every class and threshold.

    overlaps: `rle.overlap_counts(gt_ids, rles)` (values [U], value_pixels
    [U], intersection [P, U], areas [P]); label_ids [P] official label ids;
    scores [P]. Returns a dict:
        threshold [M] int, klass [M] int, score [M] float64, true [M] bool:
            the scored entries (true and false positives);
        hard_fn [K, T] int64: scored gts matched by no prediction;
        has_gt [K] bool: the image has scored gts of the class;
        has_pred [K] bool: it has non-empty predictions of the class.
    """
    label_ids = np.asarray(label_ids, np.int64).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    values, pixels = overlaps["values"], overlaps["value_pixels"]
    inter, areas = overlaps["intersection"], overlaps["areas"]
    n = len(label_ids)
    if len(scores) != n or inter.shape != (n, len(values)) or len(areas) != n:
        raise ValueError(f"{n} label ids, {len(scores)} scores and overlaps of "
                         f"{inter.shape[0]} masks x {len(values)} values do not fit together")
    unknown = [int(i) for i in np.unique(label_ids) if int(i) not in id2label]
    if unknown:
        raise ValueError(f"unknown label ids {unknown}")
    k, t = len(CLASS_NAMES), len(OVERLAPS)

    pred_class = class_index(label_ids)  # [P]
    gt_class = class_index(label_of_value(values))  # [U]
    keep = (pred_class >= 0) & (areas > 0)
    share = ignore_share(overlaps, pred_class, gt_class)[keep]  # [P']
    cols = gt_class >= 0
    pred_class, score, area = pred_class[keep], scores[keep], areas[keep]
    gt_class, gt_pixels = gt_class[cols], pixels[cols]  # [G]
    scored = (values[cols] >= INSTANCE_FACTOR) & (gt_pixels >= MIN_REGION_SIZE)  # [G]
    same_inter = np.where(pred_class[:, None] == gt_class[None, :], inter[keep][:, cols], 0)

    # The script divides a Python float by an int sum: the same float64 division.
    union = gt_pixels[None, :] + area[:, None] - same_inter  # [P', G], > 0
    iou = same_inter.astype(np.float64) / union
    match = (iou[None] > OVERLAPS[:, None, None]) & (same_inter > 0)[None]  # [T, P', G]

    # Scored gts: the best-scoring match is the true positive, others false positives.
    on_scored = match & scored[None, None, :]
    if len(score):  # the best ranked match
        best = np.where(on_scored, ranks(score)[None, :, None], len(score)).argmin(axis=1)
    else:
        best = np.zeros((t, len(gt_class)), np.int64)
    is_best = on_scored & (np.arange(len(score))[None, :, None] == best[:, None, :])
    tp_t, tp_p, _ = np.nonzero(is_best)
    dup_t, dup_p, _ = np.nonzero(on_scored & ~is_best)
    missed = scored[None, :] & ~on_scored.any(axis=1)  # [T, G]
    miss_t, miss_g = np.nonzero(missed)
    hard_fn = np.bincount(gt_class[miss_g] * t + miss_t, minlength=k * t).reshape(k, t)

    # Predictions matching nothing of their label: false positives unless ignored.
    unmatched = ~match.any(axis=2) & (share[None, :] <= OVERLAPS[:, None])  # [T, P']
    fp_t, fp_p = np.nonzero(unmatched)

    preds = np.concatenate([tp_p, dup_p, fp_p])
    return {
        "threshold": np.concatenate([tp_t, dup_t, fp_t]),
        "klass": pred_class[preds],
        "score": score[preds],
        "true": np.arange(len(preds)) < len(tp_p),
        "hard_fn": hard_fn.astype(np.int64),
        "has_gt": np.bincount(gt_class[scored], minlength=k) > 0,
        "has_pred": np.bincount(pred_class, minlength=k) > 0,
    }


def average_precision(scores, true, hard_fns):
    """The script's AP of one class at one threshold.

    scores [M] float64 (finite: ValueError otherwise), true [M] bool over
    all images; hard_fns: count of missed gts. M = 0 gives 0.0 (the script
    raises IndexError there). Precision and recall are read at each
    distinct score, so the order among equal scores does not matter.
    """
    if len(scores) == 0:
        return 0.0
    order = rank_order(scores)  # best first
    ranked = np.asarray(scores, np.float64)[order]
    trues = np.cumsum(np.asarray(true, bool)[order])  # trues among the first i + 1
    last = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # of each score
    tp = trues[last]  # trues scoring >= each distinct score, best first
    fp = last + 1 - tp
    fn = trues[-1] - tp + hard_fns
    # The script's order: distinct scores increasing, then an artificial point.
    precision = np.append((tp / (tp + fp))[::-1], 1.0)
    recall = np.append((tp / (tp + fn))[::-1], 0.0)
    widths = np.convolve(np.concatenate([recall[:1], recall, [0.0]]), [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, widths))


def ap_matrix(threshold, klass, score, true, hard_fn, has_gt, has_pred):
    """AP of every class and threshold, [K, T] float64, from the entries [M]
    of all images (as `match_image` gives them), hard_fn [K, T], has_gt [K],
    has_pred [K]: NaN without scored gt, 0.0 with gt but no prediction."""
    k, t = len(CLASS_NAMES), len(OVERLAPS)
    out = np.where(has_gt, 0.0, np.nan)[:, None].repeat(t, axis=1)
    group = np.asarray(klass, np.int64) * t + np.asarray(threshold, np.int64)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(k * t + 1))
    for c in np.flatnonzero(has_gt & has_pred):
        for j in range(t):
            sel = order[bounds[c * t + j]:bounds[c * t + j + 1]]
            out[c, j] = average_precision(score[sel], true[sel], hard_fn[c, j])
    return out


def summarize(matrix):
    """{"AP", "AP50", "classes": {name: {"AP", "AP50"}}, "ap_matrix"} of an
    AP matrix [K, T], averaged as the script's computeAverages does."""
    matrix = np.asarray(matrix, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN: NaN
        ap = float(np.nanmean(matrix))
        ap50 = float(np.nanmean(matrix[:, AP50_INDEX]))
    classes = {name: {"AP": float(np.average(matrix[c])), "AP50": float(matrix[c, AP50_INDEX])}
               for c, name in enumerate(CLASS_NAMES)}
    return {"AP": ap, "AP50": ap50, "classes": classes, "ap_matrix": matrix}


class CityscapesInstanceEval:
    """Streaming official evaluation: add_image per frame, then result().

    Keeps per frame only the scored entries (a few per prediction and
    threshold) and counts, never the masks or id images.
    """

    def __init__(self):
        k, t = len(CLASS_NAMES), len(OVERLAPS)
        self._entries = []
        self._hard_fn = np.zeros((k, t), np.int64)
        self._has_gt = np.zeros(k, bool)
        self._has_pred = np.zeros(k, bool)
        self.images = 0

    def add_image(self, gt_ids, label_ids, scores, rles, overlaps=None):
        """Score one frame.

        gt_ids: [H, W] int official instance id image; label_ids [P]
        official label ids; scores [P]; rles: P COCO RLEs of [H, W] masks.
        overlaps: `rle.overlap_counts(gt_ids, rles)` if already computed
        (gt_ids and rles are then not read). Raises ValueError when an RLE's
        size is not the image's, or the inputs' lengths differ.
        """
        if overlaps is None:
            if len(rles) != len(np.asarray(label_ids).reshape(-1)):
                raise ValueError(f"{len(rles)} masks for {len(label_ids)} label ids")
            overlaps = rle.overlap_counts(gt_ids, rles)
        m = match_image(overlaps, label_ids, scores)
        self._entries.append((m["threshold"].astype(np.int8), m["klass"].astype(np.int8),
                              m["score"], m["true"]))
        self._hard_fn += m["hard_fn"]
        self._has_gt |= m["has_gt"]
        self._has_pred |= m["has_pred"]
        self.images += 1

    def ap_matrix(self):
        """AP [K, T] of the frames added so far."""
        if self._entries:
            threshold, klass, score, true = (np.concatenate(p) for p in zip(*self._entries))
        else:
            threshold = klass = np.zeros(0, np.int64)
            score, true = np.zeros(0, np.float64), np.zeros(0, bool)
        return ap_matrix(threshold, klass, score, true, self._hard_fn, self._has_gt,
                         self._has_pred)

    def result(self):
        """{"AP": float, "AP50": float, "classes": {name: {"AP", "AP50"}},
        "ap_matrix": [K, T]} over the frames added so far (NaN as the script)."""
        return summarize(self.ap_matrix())
