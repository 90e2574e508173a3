"""The one ranking rule of every AP protocol: which detection comes first.

Shape shorthand:
    D: detections (of an image, or pooled over images)

Detections are ranked by decreasing score; equal scores keep the order in
which they are given (an image's detections in their input order, e.g. a
predictions file's entry order; pooled over images, image by image in
evaluation order). Scores must be finite: NaN compares false with every
number, so each sort would put it somewhere else (NumPy's sorts put it
last, i.e. above every score in an ascending sort and below every score in
a descending one).

Who uses it:
- Matterport's protocol (`mask_ap.MatterportEval`): the greedy matching
  order of an image and the pooled precision/recall curves;
- COCO (`coco.CocoEval`): each image's detections are handed to
  pycocotools in this order; its own sorts (`np.argsort(-scores,
  kind="mergesort")`, per image and pooled) are stable, so they keep it;
- the official Cityscapes AP (`cityscapes.official_ap`): the true positive
  among several matches of one ground truth is the best ranked, and the
  integration walks the scores in this order. It reads precision and
  recall only at each distinct score (as the official script does: all
  detections scoring >= the score count), so the order among equal scores
  does not change its AP; in the other two protocols it does.

Not here, on purpose: `mrcnn.utils.compute_matches` / `compute_ap`, the
Matterport API kept for compatibility, rank as Matterport's code does
(`argsort()[::-1]`: equal scores later index first).
"""

import numpy as np


def finite_scores(scores):
    """scores as float64 [D]; ValueError when one is NaN or infinite."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    bad = ~np.isfinite(scores)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {len(scores)} scores are NaN or infinite "
                         f"(the first at index {int(np.argmax(bad))}): scores must be finite")
    return scores


def rank_order(scores):
    """Indices [D] of the detections, best first: decreasing score, equal
    scores in their given order. ValueError on NaN / infinite scores."""
    return np.argsort(-finite_scores(scores), kind="stable")


def ranks(scores):
    """Position [D] of each detection in `rank_order` (0: the best)."""
    order = rank_order(scores)
    out = np.empty(len(order), np.int64)
    out[order] = np.arange(len(order))
    return out
