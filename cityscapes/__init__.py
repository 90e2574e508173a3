"""Cityscapes instance segmentation on top of `mrcnn` (which knows nothing of it)."""
