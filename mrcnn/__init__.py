"""Mask R-CNN for TensorFlow 2.21 / Keras 3 with Matterport's API and layer names."""

import os
import sys
import tempfile

# TensorFlow's C++ warnings (grappler cost estimates for crop_and_resize,
# CUDA probing) drown the training log; set TF_CPP_MIN_LOG_LEVEL to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly():
    """Import TensorFlow without its start-up banner (command lines use it).

    TensorFlow writes a few lines (oneDNN, CUDA probing) straight to file
    descriptor 2 while it loads, before its log level applies; they are
    kept aside and shown only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as banner:
        os.dup2(banner.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            banner.seek(0)
            sys.stderr.write(banner.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_start(verbose=False):
    """The command lines' start-up: TensorFlow imported without its banner
    unless `verbose`."""
    if not verbose:
        import_tensorflow_quietly()
