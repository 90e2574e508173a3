"""Tests for cityscapes/report.py's pictures."""

import numpy as np

from cityscapes import report
from mrcnn import visualize


def test_proposals_picture_draws_the_best_50(monkeypatch):
    image = np.zeros((128, 256, 3), np.uint8)
    y = np.arange(300) % 100
    proposals = np.stack([y, y, y + 20, y + 40], axis=1)  # best first, 300 distinct boxes
    proposals[3] = [5, 5, 5, 9]                           # empty: not a proposal
    drawn = []
    outline_boxes = visualize.outline_boxes
    monkeypatch.setattr(visualize, "outline_boxes", lambda im, b, *a, **k: (
        drawn.append(np.asarray(b)), outline_boxes(im, b, *a, **k))[1])
    picture = report.proposals_picture(image, proposals)
    assert report.PROPOSALS_DRAWN == 50 and len(drawn) == 1
    assert (drawn[0] == np.delete(proposals, 3, axis=0)[:50]).all()
    assert picture.shape[0] > 128 and picture.shape[1:] == (256, 3)  # caption band on top
    # The boxes really drawn: 50 distinct top-left corners in the box colour.
    body = picture[picture.shape[0] - 128:]
    corners = {(y1, x1) for y1, x1, _, _ in drawn[0] if (body[y1, x1] == (255, 200, 0)).all()}
    assert len(corners) == 50
