"""All three protocols on Cityscapes predictions, image by image.

Shape shorthand:
    H, W: an image's original size; U: distinct values of its instance id
    image; G: its ground-truth instances; D: its detections

For each image, the predicted masks are compared once with the official
instance id image (`mrcnn.evaluation.rle.overlap_counts`: pixels of every prediction
on every id), and the three protocols read what they need from that table:

- "matterport" (`mrcnn.evaluation.mask_ap.MatterportEval`): per-image AP@0.5 and at
  each IoU of 0.5:0.05:0.95, rAP, cAP@0.5 per class. Ground truth: the
  instances (ids >= 1000) of our classes; groups are not ground truth.
- "coco" (`mrcnn.evaluation.coco.CocoEval`, pycocotools): segm and bbox AP, AP50,
  AP75, APs/m/l. Ground truth: the instances, plus one crowd region per
  class made of its group pixels.
- "cityscapes" (`cityscapes.official_ap.CityscapesInstanceEval`): the
  official AP and AP50 over the 8 evaluated classes, overall and per class.

Images without ground truth: Matterport skips them (counted in
"skipped"); in COCO and the official protocol their detections are false
positives (except on void / groups, by the official rules).
"""

import numpy as np

from cityscapes.labels import EVALUATED_CLASSES
from cityscapes.official_ap import CityscapesInstanceEval
from cityscapes.rasterize import value_classes
from mrcnn.evaluation import mask_ap, rle
from mrcnn.evaluation.coco import CocoEval


class Scorer:
    """Matterport, COCO and official Cityscapes AP of one model's predictions.

    class_map: `labels.ClassMap` of the model's classes (ids 1..K).
    all_protocols: False scores Matterport's protocol alone (the mask
        AP@0.5 that train.py and tuning print, at a fraction of the cost).
    """

    def __init__(self, class_map, legacy_matterport=False, all_protocols=True):
        self.class_map = class_map
        names = ["BG"] + list(class_map.names)
        self.matterport = mask_ap.MatterportEval(names, legacy_matterport=legacy_matterport)
        self.coco = CocoEval(names) if all_protocols else None
        self.cityscapes = CityscapesInstanceEval() if all_protocols else None
        self.images = 0

    def add(self, key, gt_ids, predictions):
        """gt_ids: [H, W] official instance id image; predictions: see
        cityscapes/predictions.py (class ids of this class_map).
        Returns the number of ground-truth instances (crowds not counted)."""
        gt_ids = np.asarray(gt_ids)
        height, width = gt_ids.shape
        rles = predictions["rles"]
        ov = rle.overlap_counts(gt_ids, rles)
        instance, crowd, class_ids = value_classes(ov["values"], self.class_map)
        iou = mask_ap.iou_from_overlaps(ov["intersection"][:, instance].T,
                                        ov["value_pixels"][instance], ov["areas"])
        pred_classes = np.asarray(predictions["class_ids"], np.int32)
        self.matterport.add_image(key, class_ids[instance], pred_classes,
                                  predictions["scores"], iou)
        self.images += 1
        if self.coco is None:
            return int(instance.sum())
        gt_values = np.concatenate([ov["values"][instance], ov["values"][crowd]])
        self.coco.add_image(
            height, width, np.concatenate([class_ids[instance], class_ids[crowd]]),
            rle.encode_label_image(gt_ids, gt_values),
            np.concatenate([np.zeros(instance.sum(), bool), np.ones(crowd.sum(), bool)]),
            pred_classes, predictions["scores"], rles, predictions.get("boxes"))
        label_ids = np.array([self.class_map.label_id(c) for c in pred_classes], np.int64)
        self.cityscapes.add_image(gt_ids, label_ids, predictions["scores"], rles, overlaps=ov)
        return int(instance.sum())

    def result(self):
        """The report.json entry of the model: {"matterport", "coco",
        "cityscapes"} (see cityscapes/report.py; "matterport" alone when not
        all_protocols), plus "_details" with the
        per-image APs and the precision/recall curves for the pictures."""
        m = self.matterport.result()
        entry = {
            "matterport": {"ap50": _num(m["ap50"]), "ap_by_iou": {k: _num(v) for k, v in
                                                                   m["ap_by_iou"].items()},
                           "rap": _num(m["rap"]), "cap50": {k: _num(v) for k, v in
                                                            m["cap50"].items()},
                           "images": len(m["per_image"]), "without_ground_truth": len(m["skipped"])},
            "_details": {"per_image": m["per_image"], "pr_curve": m["pr_curve"]},
        }
        if self.coco is not None:
            c = self.cityscapes.result()
            entry["coco"] = self.coco.result()
            entry["cityscapes"] = {
                "AP": _num(c["AP"]), "AP50": _num(c["AP50"]),
                "classes": {name: {"AP": _num(c["classes"][name]["AP"]),
                                   "AP50": _num(c["classes"][name]["AP50"])}
                            for name in EVALUATED_CLASSES}}
        return entry


def _num(v):
    """float, or None for NaN / missing (JSON has no NaN)."""
    return None if v is None or not np.isfinite(v) else float(v)
