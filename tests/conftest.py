import os

# Before TensorFlow is imported by any test: keep its C++ warnings (grappler
# cost estimates for crop_and_resize) out of the test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
