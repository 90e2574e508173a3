"""Tests for cityscapes/scoring.py: the three protocols rank detections by
one rule (mrcnn/evaluation/ranking.py), equal scores included."""

import numpy as np
import pytest

from cityscapes.labels import ClassMap
from cityscapes.scoring import Scorer
from mrcnn.evaluation import rle

CAR = ClassMap().class_id(26)


def scene():
    """A 64 x 64 road with two cars of 400 pixels."""
    ids = np.full((64, 64), 7)  # road: not void
    ids[0:20, 0:20] = 26001
    ids[30:50, 30:50] = 26002
    return ids


def mask(region):
    m = np.zeros((64, 64, 1), bool)
    m[region] = True
    return rle.encode(m)[0]


TP1, FP, TP2 = (mask(np.s_[0:20, 0:20]), mask(np.s_[0:20, 40:60]),
                mask(np.s_[30:50, 30:50]))


def score(rles, scores):
    s = Scorer(ClassMap())
    s.add("a", scene(), {"class_ids": np.full(len(rles), CAR, np.int32),
                         "scores": np.asarray(scores, np.float64), "rles": rles,
                         "boxes": None})
    r = s.result()
    return {"matterport": r["matterport"]["ap_by_iou"], "coco": r["coco"],
            "cityscapes": r["cityscapes"]["AP"]}


@pytest.mark.parametrize("rles, expected_ap50", [
    ([FP, TP1, TP2], 2 / 3),  # the false positive ranks first: precision 1/2, 2/3
    ([TP1, FP, TP2], 0.5 * 1 + 0.5 * 2 / 3),
])
def test_equal_scores_rank_in_their_given_order_in_every_protocol(rles, expected_ap50):
    tied = score(rles, [0.8, 0.8, 0.5])
    # The same detections with distinct scores in that order: the ranking the
    # rule gives. Matterport and COCO give the same figures, so they ranked
    # the tie in the given order (either of them putting TP1 first would
    # change them).
    distinct = score(rles, [0.8, 0.7, 0.5])
    assert tied["matterport"]["0.50"] == pytest.approx(expected_ap50)
    assert tied["matterport"] == distinct["matterport"]
    assert tied["coco"] == distinct["coco"]


def test_official_ap_does_not_depend_on_the_order_of_equal_scores():
    # It reads precision at each distinct score (all detections scoring >=
    # it count), as cityscapesscripts does: both orders of the tie give the
    # same AP, between those of the two orders with distinct scores.
    first, second = score([FP, TP1, TP2], [0.8, 0.8, 0.5]), score([TP1, FP, TP2],
                                                                   [0.8, 0.8, 0.5])
    assert first["cityscapes"] == second["cityscapes"]
    low = score([FP, TP1, TP2], [0.8, 0.7, 0.5])["cityscapes"]
    high = score([TP1, FP, TP2], [0.8, 0.7, 0.5])["cityscapes"]
    assert low < first["cityscapes"] < high


def test_a_non_finite_score_stops_scoring():
    with pytest.raises(ValueError, match="NaN or infinite"):
        score([TP1, FP], [np.nan, 0.5])
