"""Where TensorFlow's own kernels may stand in for the keras.ops graph.

The network is keras.ops with static shapes, so that it compiles (XLA) and
runs on every backend. Op by op on TensorFlow (the default, jit off), three
of TensorFlow's kernels are faster than their keras.ops equivalents and
take their place; each pair is tested equal:

- ROIAlign: `tf.image.crop_and_resize` per level (roi_align.py);
- greedy NMS: `tf.image.non_max_suppression` per image (nms.py);
- the RPN targets' IoU over only the ground-truth columns in use, a shape
  known at run time only (targets.py).

Op by op on TensorFlow's CPU kernels, the 3x3 convs of one image with 256+
channels (ResNet's, the FPN's, the RPN's) run in row strips at inference
(strip_conv.py): the same sums, up to 1.6x faster there.

And on TensorFlow, jit on or off, `argmax` is TensorFlow's own: Keras'
float argmax first turns -0.0 into the smallest negative float, three more
passes over the input (on the RPN's IoU [B, M, A] at 1024 x 2048: 20 ms
against 6 ms); inputs without -0.0 (IoUs) get the same answer.
"""

import keras
from keras import ops


def tensorflow_op_by_op():
    """Whether this runs on the TensorFlow backend outside XLA (eagerly or
    in a plain tf.function): TensorFlow's kernels and run-time shapes may
    be used."""
    if keras.backend.backend() != "tensorflow":
        return False
    from tensorflow.python.framework import ops as tf_ops
    from tensorflow.python.ops import control_flow_util

    return not control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


def argmax(x, axis):
    """Index int32 of the largest entry along `axis`, the first one among
    equals; x must not hold -0.0 (it ties with 0.0 here; Keras ranks it
    below). TensorFlow's kernel on TensorFlow, keras.ops elsewhere."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.argmax(x, axis=axis, output_type=tf.int32)
    return ops.cast(ops.argmax(x, axis=axis), "int32")
