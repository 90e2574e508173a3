"""COCO-style mask and box AP with pycocotools.

Shape shorthand:
    G: ground-truth objects of an image (instances and crowd regions)
    D: detections of an image

Ground truth and detections are collected image by image as RLEs (see
`mrcnn.evaluation.rle`) and handed to `pycocotools.cocoeval.COCOeval` at the end,
once for "segm" and once for "bbox". Crowd regions go in with iscrowd=1:
COCO matches a detection to a crowd only when no regular instance is left,
and such a detection is neither a true nor a false positive.

Detections for "segm" carry only their mask (pycocotools takes the area
for the small/medium/large split from the mask); detections for "bbox"
carry only their box (the area is the box's), as in detectron2.

Detections are ranked by `mrcnn.evaluation.ranking` (decreasing score,
equal scores in their given order): each image's detections go to
pycocotools in that order, and its sorts (mergesort, stable) keep it.

Summary keys: AP (IoU 0.5:0.95), AP50, AP75, APs, APm, APl, as fractions in
[0, 1]. pycocotools reports -1 where a figure has no ground truth (no
small objects, say): those come out as None. With no detection at all
every figure is 0.0 (pycocotools itself cannot load an empty result list).
"""

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.evaluation import rle
from mrcnn.evaluation.ranking import rank_order

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class CocoEval:
    """Collects images, then scores them with pycocotools.

    class_names: names of class ids 1..C (index 0, the background, unused).
    """

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self._images, self._gt, self._dt = [], [], []

    def add_image(self, height, width, gt_class_ids, gt_rles, gt_crowd,
                  pred_class_ids, pred_scores, pred_rles, pred_boxes=None):
        """gt_class_ids: [G] 1..C; gt_rles: G RLEs; gt_crowd: [G] bool;
        pred_class_ids, pred_scores: [D] (finite: ValueError otherwise);
        pred_rles: D RLEs; pred_boxes: [D, (y1, x1, y2, x2)] pixels, or None
        to use the masks' boxes.
        Returns the image's COCO id."""
        image_id = len(self._images) + 1
        self._images.append({"id": image_id, "height": int(height), "width": int(width)})
        gt_rles = [rle.for_pycocotools(r) for r in gt_rles]
        if gt_rles:
            areas = mask_utils.area(gt_rles)
            boxes = mask_utils.toBbox(gt_rles)
            for c, r, crowd, a, b in zip(gt_class_ids, gt_rles, gt_crowd, areas, boxes):
                self._gt.append({"id": len(self._gt) + 1, "image_id": image_id,
                                 "category_id": int(c), "segmentation": r, "area": float(a),
                                 "bbox": [float(v) for v in b], "iscrowd": int(bool(crowd))})
        pred_rles = [rle.for_pycocotools(r) for r in pred_rles]
        if pred_rles:
            if pred_boxes is None:
                boxes = mask_utils.toBbox(pred_rles)
            else:
                y1, x1, y2, x2 = np.asarray(pred_boxes, np.float64).reshape(-1, 4).T
                boxes = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
            # In the one ranking order; pycocotools' stable sorts keep it.
            for i in rank_order(pred_scores):
                self._dt.append((image_id, int(pred_class_ids[i]), float(pred_scores[i]),
                                 pred_rles[i], [float(v) for v in boxes[i]]))
        return image_id

    def result(self):
        """{"segm": {AP, AP50, AP75, APs, APm, APl}, "bbox": {...}}."""
        return {"segm": self._score("segm"), "bbox": self._score("bbox")}

    def _score(self, iou_type):
        if not self._dt:
            return {k: 0.0 for k in SUMMARY_KEYS}
        gt = COCO()
        gt.dataset = {"images": self._images, "annotations": self._gt,
                      "categories": [{"id": i, "name": n}
                                     for i, n in enumerate(self.class_names) if i > 0]}
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            if iou_type == "segm":
                results = [{"image_id": i, "category_id": c, "score": s, "segmentation": r}
                           for i, c, s, r, _ in self._dt]
            else:
                results = [{"image_id": i, "category_id": c, "score": s, "bbox": b}
                           for i, c, s, _, b in self._dt]
            dt = gt.loadRes(results)
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {k: (None if v < 0 else float(v)) for k, v in zip(SUMMARY_KEYS, ev.stats[:6])}
