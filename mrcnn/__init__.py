"""Mask R-CNN for TensorFlow 2.21 / Keras 3 with Matterport's API and layer names."""

import os

# TensorFlow's C++ warnings (grappler cost estimates for crop_and_resize,
# CUDA probing) drown the training log; set TF_CPP_MIN_LOG_LEVEL to see them.
# The command lines' start-up (mrcnn/quiet.py) keeps the warnings on a machine
# with a GPU, so that a CUDA library that fails to load is shown.
TF_LOG_LEVEL_FROM_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
