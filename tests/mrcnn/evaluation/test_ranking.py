"""Tests for mrcnn/evaluation/ranking.py: the one ranking rule."""

import numpy as np
import pytest

from mrcnn.evaluation import ranking


def test_decreasing_score_and_equal_scores_in_given_order():
    scores = [0.5, 0.9, 0.5, 0.9, 0.1, 0.5]
    assert ranking.rank_order(scores).tolist() == [1, 3, 0, 2, 5, 4]
    assert ranking.ranks(scores).tolist() == [2, 0, 3, 1, 5, 4]
    assert ranking.rank_order([]).tolist() == []


def test_ints_negative_and_huge_scores_rank_like_floats():
    assert ranking.rank_order([1, -1e300, 1e300, 0]).tolist() == [2, 0, 3, 1]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_refused(bad):
    with pytest.raises(ValueError, match="1 of 3 scores are NaN or infinite .*index 1"):
        ranking.rank_order([0.5, bad, 0.2])
