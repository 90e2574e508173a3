"""Scores: Matterport's per-image mask AP (mask_ap.py), COCO AP with
pycocotools (coco.py), COCO RLE masks (rle.py)."""
