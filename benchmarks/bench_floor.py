"""The network's FLOPs, this CPU's convolution throughput, and detect's time
as a multiple of the floor they give.

    .venv/bin/python -m benchmarks.bench_floor [--sizes 1024x1024,1024x2048] \\
        [--backbone resnet50] [--repeats 5] [--json raw.json]

FLOPs: TensorFlow's profiler (`float_operation`) over the inference graph
(`MaskRCNNModel.inference_graph`, one image of H x W, ResNet-50,
Matterport's default sizes: 1000 proposals through the classifier head,
100 detections through the mask head; DETECTION_MIN_CONFIDENCE 0 so that
all 100 are kept). Convolutions and matmuls are counted as 2 x
multiply-adds; elementwise ops count one each; a while loop's body once
(NMS: negligible). Also printed: the FLOPs of the convolutions alone, by
part (backbone, FPN, RPN head, heads).

Throughput: the median GFLOP/s of TensorFlow's Conv2D (float32, NHWC)
on the model's costliest convolution shapes (the FPN's and RPN's 3 x 3
convs on P2, a ResNet 3 x 3 and 1 x 1, the mask head's 3 x 3 on 100 crops),
each timed alone; the floor is FLOPs / the best of them. Detect: the graph
alone (`predict_on_batch` of the compiled inference function) and the
whole `MaskRCNN.detect` (mold, graph, unmold), medians of --repeats calls.
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks.timing import median_seconds

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

CONV_SHAPES = {  # name: (input [N, H, W, C] at 1024 x 2048, kernel size, filters)
    "FPN P2 3x3 256->256 on 256x512": ((1, 256, 512, 256), 3, 256),
    "RPN 3x3 256->512 on 256x512": ((1, 256, 512, 256), 3, 512),
    "ResNet res3 3x3 128->128 on 128x256": ((1, 128, 256, 128), 3, 128),
    "ResNet res2 1x1 64->256 on 256x512": ((1, 256, 512, 64), 1, 256),
    "mask head 3x3 256->256 on 100 x 14x14": ((100, 14, 14, 256), 3, 256),
}


def conv_throughput(repeats):
    """{shape name: GFLOP/s} of tf.nn.conv2d, "SAME" padding, stride 1."""
    import tensorflow as tf

    out = {}
    rng = np.random.default_rng(0)
    for name, (shape, k, filters) in CONV_SHAPES.items():
        x = tf.constant(rng.normal(size=shape).astype(np.float32))
        w = tf.constant(rng.normal(size=(k, k, shape[-1], filters)).astype(np.float32))
        conv = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
        flops = 2.0 * np.prod(shape[:3]) * k * k * shape[-1] * filters
        seconds, _ = median_seconds(lambda c=conv, x=x, w=w: c(x, w).numpy(), repeats)
        out[name] = flops / seconds / 1e9
    return out


def _config(backbone, height, width):
    from mrcnn.config import Config

    return type("FloorConfig", (Config,), {
        "NAME": "floor", "NUM_CLASSES": 11, "IMAGES_PER_GPU": 1, "BACKBONE": backbone,
        "IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": height, "IMAGE_MAX_DIM": width,
        "DETECTION_MIN_CONFIDENCE": 0.0, "JIT_COMPILE": False})()


def graph_flops(km, height, width):
    """(total FLOPs, {op type: FLOPs}) of the inference graph, by TF's profiler."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    meta = tf.TensorSpec([1, 12 + km.num_classes], tf.float32)
    fn = tf.function(lambda image, image_meta: km.inference_graph(
        {"image": image, "image_meta": image_meta}, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec([1, height, width, 3], tf.float32),
                                     meta).graph
    opts = (option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder
                                                .float_operation())
            .with_empty_output().build())
    opts["account_displayed_op_only"] = True
    opts["select"] = ["float_ops"]
    opts["order_by"] = "float_ops"
    stats = model_analyzer.profile(graph, cmd="op", options=opts)
    by_type = {node.name: node.total_float_ops for node in stats.children}
    return stats.total_float_ops, by_type


def conv_flops_by_part(km, height, width, proposals, detections):
    """Convolution and dense FLOPs (2 x multiply-adds) of each part, from the
    layers' kernels and the output sizes they run at."""
    import keras

    flops = {"backbone (ResNet)": 0.0, "FPN": 0.0}
    # Backbone and FPN: the functional graph's own output shapes at H x W.
    probe = keras.Model(km.backbone.inputs, [
        layer.output for layer in km.backbone.layers if isinstance(layer, keras.layers.Conv2D)])
    convs = [layer for layer in km.backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    shapes = probe.compute_output_shape((1, height, width, 3))
    for layer, shape in zip(convs, shapes):
        k = layer.kernel.shape
        f = 2.0 * shape[1] * shape[2] * k[0] * k[1] * k[2] * k[3]
        flops["FPN" if layer.name.startswith("fpn_") else "backbone (ResNet)"] += f
    # RPN: shared 3x3 conv and two 1x1 convs on each of P2..P6.
    rpn = 0.0
    for stride in (4, 8, 16, 32, 64):
        cells = (height // stride) * (width // stride)
        for w in km.rpn.trainable_weights:
            if len(w.shape) == 4:
                rpn += 2.0 * cells * np.prod(w.shape)
    flops["RPN head"] = rpn
    def macs(weight, positions):
        return 2.0 * positions * np.prod(weight.shape)

    c, m = km.classifier, km.mask_head
    pool, mask_pool = 14 * 14, 28 * 28  # mask head: 14 x 14 crops, 28 x 28 masks
    heads = proposals * sum(macs(layer.kernel, 1) for layer in (
        c.class_conv1, c.class_conv2, c.class_logits, c.bbox_fc))
    heads += detections * sum(macs(layer.kernel, pool) for layer in (
        m.mask_conv1, m.mask_conv2, m.mask_conv3, m.mask_conv4, m.mask_deconv))
    heads += detections * macs(m.mask_out.kernel, mask_pool)
    flops["heads"] = heads
    return flops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1024x1024,1024x2048")
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)

    import keras

    from mrcnn.model import MaskRCNN

    keras.utils.set_random_seed(0)
    result = {"conv_gflops": conv_throughput(args.repeats), "sizes": {}}
    best = max(result["conv_gflops"].values())
    for name, g in result["conv_gflops"].items():
        print(f"conv throughput: {name}: {g:.1f} GFLOP/s", flush=True)
    print(f"best: {best:.1f} GFLOP/s (the floor's rate)", flush=True)
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        config = _config(args.backbone, h, w)
        with tempfile.TemporaryDirectory() as tmp:
            model = MaskRCNN("inference", config, tmp)
            km = model.keras_model
            total, by_type = graph_flops(km, h, w)
            parts = conv_flops_by_part(km, h, w, config.POST_NMS_ROIS_INFERENCE,
                                       config.DETECTION_MAX_INSTANCES)
            image = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
            detect_s, detect_spread = median_seconds(lambda m=model, i=image: m.detect([i]),
                                                     args.repeats)
            molded, metas, _ = model.mold_inputs([image])
            infer = model._infer
            inputs = {"image": molded, "image_meta": metas}
            graph_s, graph_spread = median_seconds(lambda f=infer, x=inputs: f(x), args.repeats)
        floor = total / (best * 1e9)
        entry = {"flops": total, "flops_by_op": by_type, "conv_flops_by_part": parts,
                 "floor_s": floor, "graph_s": graph_s, "graph_spread_s": graph_spread,
                 "detect_s": detect_s, "detect_spread_s": detect_spread,
                 "graph_multiple": graph_s / floor, "detect_multiple": detect_s / floor}
        result["sizes"][size] = entry
        top = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in list(by_type.items())[:4])
        print(f"{args.backbone} {size}: {total / 1e9:.0f} GFLOP ({top}); conv/dense by part: "
              + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in parts.items()), flush=True)
        print(f"  floor {floor:.2f} s at {best:.0f} GFLOP/s; graph {graph_s:.2f} s "
              f"(x{graph_s / floor:.2f}, spread {graph_spread:.2f}); detect() {detect_s:.2f} s "
              f"(x{detect_s / floor:.2f}, spread {detect_spread:.2f})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
