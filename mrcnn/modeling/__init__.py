"""The network: box math, anchors, matching and targets, ResNet + FPN, RPN,
ROIAlign, heads, proposals, detections, losses, and their assembly
(network.py) and un-molding (postprocess.py)."""
