"""Where detect's and a training step's time goes, stage by stage, in two trees.

    .venv/bin/python -m benchmarks.bench_stages --before ../before \\
        [--size 1024x2048] [--backbone resnet50] [--rounds 2] [--repeats 3] \\
        [--out table.md] [--json raw.json]

`--before` is a git worktree of an older commit (issue 16 compares against
0df162a: `git worktree add ../before 0df162a`); the other tree is this one.
Each round runs one subprocess per tree, in turn (before, this, before,
this, ...), so that both trees see the same machine over the same minutes;
a subprocess imports `mrcnn` from its own tree only. TensorFlow, jit off,
float32, random weights (seed 0), one synthetic 1024 x 2048 image.

Detect (inference mode, DETECTION_MIN_CONFIDENCE = 0, so that detection
and mask pasting always handle DETECTION_MAX_INSTANCES boxes):
    backbone (ResNet C2-C5), FPN, RPN head (5 levels, softmax), proposals
    (top-k, decode, NMS), ROIAlign (the classifier's 7 x 7 on the proposals
    and the mask head's 14 x 14 on the detections), heads (classifier and
    mask head on those crops), detection (refine + per-class NMS), mask
    pasting (unmold: boxes back to pixels, masks pasted); and the whole
    `MaskRCNN.detect([image])`.
Training step (training mode, 20 ground-truth instances padded to
MAX_GT_INSTANCES, 56 x 56 mini-masks): forward + backward (gradients of the
sum of the outputs) of backbone, FPN, RPN head, ROIAlign and heads;
forward of proposals and of the targets (RPN and head targets); and the
whole step (`train_step`, SGD). "rest" is the whole minus the stages: the
losses, their backward pass and the optimizer update.

Each stage runs in its own tf.function on inputs computed once by the
tree's own code; figures are medians over all rounds; "spread" is max - min
over all timed calls of both trees, relative to the median. The verdict
column flags a stage of this tree slower than the before tree by more than
max(5 %, spread). Results: docs/benchmarks.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 11
GT_INSTANCES = 20
DETECT_STAGES = ("backbone (ResNet C2-C5)", "FPN", "RPN head", "proposals", "ROIAlign",
                 "heads", "detection", "mask pasting")
TRAIN_STAGES = ("backbone (ResNet C2-C5)", "FPN", "RPN head", "proposals", "targets",
                "ROIAlign", "heads")


# ------------------------------------------------------------------ child
def _config(backbone, height, width, mode):
    from mrcnn.config import Config

    attrs = {"NAME": "stages", "NUM_CLASSES": NUM_CLASSES, "IMAGES_PER_GPU": 1,
             "BACKBONE": backbone, "IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": height,
             "IMAGE_MAX_DIM": width}
    if mode == "inference":
        attrs["DETECTION_MIN_CONFIDENCE"] = 0.0
    return type("StagesConfig", (Config,), attrs)()


def _image_meta(config, height, width):
    """Matterport's image meta row [12 + C] for an unresized H x W image."""
    return np.concatenate([[0], [height, width, 3], [height, width, 3], [0, 0, height, width],
                           [1.0], np.ones(config.NUM_CLASSES)]).astype(np.float32)[None]


def _batch(config, height, width, seed=0):
    """One image with GT_INSTANCES random boxes (elliptic mini-masks),
    padded to MAX_GT_INSTANCES. -> dict of NumPy arrays"""
    rng = np.random.default_rng(seed)
    m = config.MAX_GT_INSTANCES
    y1 = rng.uniform(0.0, 0.8, GT_INSTANCES)
    x1 = rng.uniform(0.0, 0.8, GT_INSTANCES)
    boxes = np.zeros([1, m, 4], np.float32)
    boxes[0, :GT_INSTANCES] = np.stack(
        [y1, x1, y1 + rng.uniform(0.03, 0.2, GT_INSTANCES),
         x1 + rng.uniform(0.03, 0.2, GT_INSTANCES)], axis=1)
    class_ids = np.zeros([1, m], np.int32)
    class_ids[0, :GT_INSTANCES] = rng.integers(1, config.NUM_CLASSES, GT_INSTANCES)
    yy, xx = np.mgrid[-1:1:56j, -1:1:56j]
    masks = np.zeros([1, m, 56, 56], np.uint8)
    masks[0, :GT_INSTANCES] = yy ** 2 + xx ** 2 <= 1.0
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    return image, {"image": (image - config.MEAN_PIXEL).astype(np.float32)[None],
                   "image_meta": _image_meta(config, height, width),
                   "gt_class_ids": class_ids, "gt_boxes": boxes, "gt_masks": masks}


def _tree_api():
    """The few functions whose module or signature differ between trees."""
    try:  # this tree's layout
        from mrcnn.engine.trainable import set_trainable
        from mrcnn.modeling import detection, matching, proposals, targets
        from mrcnn.modeling.network import image_size
        from mrcnn.modeling.postprocess import unmold_detections
        from mrcnn.modeling.roi_align import pyramid_roi_align
        new = True
    except ImportError:  # the flat layout before issue 16's restructuring
        import tensorflow as tf
        from mrcnn.roi_align import pyramid_roi_align
        from mrcnn.training import set_trainable

        from mrcnn import detection, matching, proposals, targets
        from mrcnn.model import unmold_detections

        def image_size(image):
            return tf.shape(image)[1:3]
        new = False
    return {"new": new, "detection": detection, "matching": matching,
            "proposals": proposals, "targets": targets, "image_size": image_size,
            "unmold": unmold_detections, "roi_align": pyramid_roi_align,
            "set_trainable": set_trainable}


def _timer(repeats):
    def timed(fn, *args):
        fn(*args)  # traces
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t0)
        return times
    return timed


def _split_backbone(backbone, resnet_depth):
    """(ResNet model image -> [C2..C5], FPN model [C2..C5] -> [P2..P6])."""
    import keras

    c4 = "res4w_out" if resnet_depth == "resnet101" else "res4f_out"
    names = ("res2c_out", "res3d_out", c4, "res5c_out")
    cs = [backbone.get_layer(n).output for n in names]
    return keras.Model(backbone.inputs, cs), keras.Model(cs, backbone.outputs)


def _grad_fn(fn, variables):
    """tf.function: forward + backward of sum(fn(*x)) w.r.t. variables and x."""
    import tensorflow as tf

    @tf.function
    def run(*x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(*x)
            total = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32))
                              for o in tf.nest.flatten(out)])
        return tape.gradient(total, [*variables, *x])
    return run


def child_detect(args, api, timed):
    import tensorflow as tf

    from mrcnn.model import MaskRCNN

    h, w = args.height, args.width
    config = _config(args.backbone, h, w, "inference")
    image, batch = _batch(config, h, w)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = MaskRCNN("inference", config, tmp)
        km = model.keras_model
        out["whole detect()"] = timed(lambda: model.detect([image]))
        resnet, fpn = _split_backbone(km.backbone, args.backbone)
        x = tf.constant(batch["image"])
        shape = api["image_size"](x)
        f_resnet = tf.function(lambda x: resnet(x, training=False))
        f_fpn = tf.function(lambda cs: fpn(cs, training=False))
        f_rpn = tf.function(km._rpn)
        c = config
        anchors = km.anchors(shape)
        f_prop = tf.function(lambda p, d: api["proposals"].generate_proposals(
            p, d, anchors, proposal_count=c.POST_NMS_ROIS_INFERENCE,
            nms_threshold=c.RPN_NMS_THRESHOLD, pre_nms_limit=c.PRE_NMS_LIMIT,
            std_dev=tuple(c.RPN_BBOX_STD_DEV)))
        align = api["roi_align"]
        f_align = tf.function(lambda rois, boxes, maps: (
            align(rois, maps, shape, c.POOL_SIZE), align(boxes, maps, shape, c.MASK_POOL_SIZE)))
        f_heads = tf.function(lambda p7, p14: (km.classifier(p7, training=False),
                                               km.mask_head(p14, training=False)))
        windows = tf.constant([[0.0, 0.0, 1.0, 1.0]])
        f_det = tf.function(lambda rois, probs, deltas: api["detection"].detect_batch(
            rois, probs, deltas, windows, max_instances=c.DETECTION_MAX_INSTANCES,
            min_confidence=c.DETECTION_MIN_CONFIDENCE, nms_threshold=c.DETECTION_NMS_THRESHOLD,
            std_dev=tuple(c.BBOX_STD_DEV)))

        cs = f_resnet(x)
        maps = f_fpn(cs)
        _, probs, deltas = f_rpn(maps)
        rois = f_prop(probs, deltas)
        _, cls_probs, cls_deltas = km._heads(rois, maps[:4], shape, False)
        detections = f_det(rois, cls_probs, cls_deltas)
        p7, p14 = f_align(rois, detections[..., :4], maps[:4])
        masks = km._masks(detections[..., :4], maps[:4], shape, False)
        det_np, masks_np = detections[0].numpy(), masks[0].numpy()

        out["backbone (ResNet C2-C5)"] = timed(f_resnet, x)
        out["FPN"] = timed(f_fpn, cs)
        out["RPN head"] = timed(f_rpn, maps)
        out["proposals"] = timed(f_prop, probs, deltas)
        out["ROIAlign"] = timed(f_align, rois, detections[..., :4], maps[:4])
        out["heads"] = timed(f_heads, p7, p14)
        out["detection"] = timed(f_det, rois, cls_probs, cls_deltas)
        out["mask pasting"] = timed(lambda: api["unmold"](
            det_np, masks_np, image.shape, (h, w, 3), np.array([0, 0, h, w])))
    return out


def child_train(args, api, timed):
    import tensorflow as tf

    from mrcnn.model import MaskRCNN

    h, w = args.height, args.width
    config = _config(args.backbone, h, w, "training")
    _, batch = _batch(config, h, w)
    batch = {k: tf.constant(v) for k, v in batch.items()}
    c = config
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = MaskRCNN("training", config, tmp)
        km = model.keras_model
        api["set_trainable"](km, "all")
        import keras

        km.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9, clipnorm=5.0),
                   jit_compile=False)
        step = tf.function(km.train_step, reduce_retracing=True)
        out["whole train step"] = timed(lambda: step(batch))

        resnet, fpn = _split_backbone(km.backbone, args.backbone)
        x = batch["image"]
        shape = api["image_size"](x)
        anchors = km.anchors(shape)
        f_resnet = _grad_fn(lambda x: resnet(x, training=True), resnet.trainable_variables)
        f_fpn = _grad_fn(lambda *cs: fpn(list(cs), training=True), fpn.trainable_variables)
        f_rpn = _grad_fn(lambda *ps: km._rpn(list(ps)), km.rpn.trainable_variables)
        f_prop = tf.function(lambda p, d: api["proposals"].generate_proposals(
            p, d, anchors, proposal_count=c.POST_NMS_ROIS_TRAINING,
            nms_threshold=c.RPN_NMS_THRESHOLD, pre_nms_limit=c.PRE_NMS_LIMIT,
            std_dev=tuple(c.RPN_BBOX_STD_DEV)))
        m = api["matching"].max_positives(c.TRAIN_ROIS_PER_IMAGE, c.ROI_POSITIVE_RATIO)
        sample = {"rois_per_image": c.TRAIN_ROIS_PER_IMAGE,
                      "positive_fraction": c.ROI_POSITIVE_RATIO, "std_dev": tuple(c.BBOX_STD_DEV),
                      "mask_shape": tuple(c.MASK_SHAPE), "include_gt": c.PROPOSALS_INCLUDE_GT,
                      "mini_masks": c.USE_MINI_MASK}
        t = c.TRAIN_ROIS_PER_IMAGE
        if api["new"]:
            def head_targets(rois):
                return api["targets"].detection_targets_batch(
                    rois, batch["gt_class_ids"], batch["gt_boxes"], batch["gt_masks"],
                    seed=km.seed_generator, **sample)
        else:
            def head_targets(rois):
                return tf.map_fn(
                    lambda a: api["targets"].detection_targets(*a, **sample),
                    (rois, batch["gt_class_ids"], batch["gt_boxes"], batch["gt_masks"]),
                    fn_output_signature=(
                        tf.TensorSpec([t, 4], tf.float32), tf.TensorSpec([t], tf.int32),
                        tf.TensorSpec([t, 4], tf.float32),
                        tf.TensorSpec([t, *c.MASK_SHAPE], tf.float32),
                        tf.TensorSpec([t], tf.bool)))
        f_targets = tf.function(lambda rois: (
            head_targets(rois),
            km._rpn_targets(batch["gt_class_ids"], batch["gt_boxes"], shape)))
        align = api["roi_align"]
        f_align = _grad_fn(lambda rois, *maps: (
            align(rois, list(maps), shape, c.POOL_SIZE),
            align(rois[:, :m], list(maps), shape, c.MASK_POOL_SIZE)), [])
        head_vars = km.classifier.trainable_variables + km.mask_head.trainable_variables
        f_heads = _grad_fn(lambda p7, p14: (km.classifier(p7, training=True),
                                            km.mask_head(p14, training=True)), head_vars)

        cs = resnet(x, training=True)
        maps = fpn(cs, training=True)
        _, probs, deltas = km._rpn(maps)
        rois = f_prop(probs, deltas)
        sampled = f_targets(rois)[0][0]
        p7 = align(sampled, maps[:4], shape, c.POOL_SIZE)
        p14 = align(sampled[:, :m], maps[:4], shape, c.MASK_POOL_SIZE)

        out["backbone (ResNet C2-C5)"] = timed(f_resnet, x)
        out["FPN"] = timed(f_fpn, *cs)
        out["RPN head"] = timed(f_rpn, *maps)
        out["proposals"] = timed(f_prop, probs, deltas)
        out["targets"] = timed(f_targets, rois)
        out["ROIAlign"] = timed(f_align, sampled, *maps[:4])
        out["heads"] = timed(f_heads, p7, p14)
    return out


def run_child(args):
    import keras

    sys.path.insert(0, os.getcwd())  # the tree under test (the parent sets cwd)
    keras.utils.set_random_seed(0)
    timed = _timer(args.repeats)
    api = _tree_api()
    result = {"detect": child_detect(args, api, timed), "train": child_train(args, api, timed)}
    with open(args.result_file, "w") as f:
        json.dump(result, f)


# ----------------------------------------------------------------- parent
def _commit(tree):
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _spawn(tree, args):
    fd, result_file = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--result-file", result_file,
           "--size", args.size, "--backbone", args.backbone, "--repeats", str(args.repeats)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=tree, KERAS_BACKEND="tensorflow")
    subprocess.run(cmd, cwd=tree, env=env, check=True)
    with open(result_file) as f:
        result = json.load(f)
    os.unlink(result_file)
    return result


def _merge(results):
    """[{group: {stage: [s]}}] -> {group: {stage: [s, ...all rounds]}}"""
    merged = {}
    for r in results:
        for group, stages in r.items():
            for stage, times in stages.items():
                merged.setdefault(group, {}).setdefault(stage, []).extend(times)
    return merged


def table(before, after, group, stages, whole):
    """Markdown rows: stage | before s | this s | change | spread | verdict."""
    lines = ["| stage | before (s) | this tree (s) | change | spread | verdict |",
             "|---|---|---|---|---|---|"]
    b, a = before[group], after[group]
    rows = list(stages)
    if group == "train":
        for d in (b, a):
            d["rest (losses, their backward, optimizer)"] = [
                statistics.median(d[whole]) - sum(statistics.median(d[s]) for s in stages)]
        rows.append("rest (losses, their backward, optimizer)")
    rows.append(whole)
    verdicts = []
    for s in rows:
        mb, ma = statistics.median(b[s]), statistics.median(a[s])
        both = b[s] + a[s]
        spread = (max(both) - min(both)) / statistics.median(both) if len(both) > 2 else 0.0
        change = ma / mb - 1.0
        allowed = max(0.05, spread)
        verdict = "slower" if change > allowed and s != rows[-2 if group == "train" else -1] \
            else "ok"
        if s.startswith("rest"):
            verdict = "(difference)"
        verdicts.append(verdict)
        lines.append(f"| {s} | {mb:.3f} | {ma:.3f} | {change:+.1%} | {spread:.1%} | {verdict} |")
    return "\n".join(lines), verdicts


def run_parent(args):
    before = os.path.abspath(args.before)
    trees = {"before": before, "after": REPO_ROOT}
    commits = {k: _commit(v) for k, v in trees.items()}
    results = {"before": [], "after": []}
    started = time.strftime("%Y-%m-%d %H:%M")
    for r in range(args.rounds):
        for name, tree in trees.items():
            print(f"[stages] round {r + 1}/{args.rounds}: {name} ({commits[name]})",
                  file=sys.stderr, flush=True)
            results[name].append(_spawn(tree, args))
    b, a = _merge(results["before"]), _merge(results["after"])
    header = (f"Stages, {started}: {args.backbone}, {args.size}, TensorFlow, jit off, float32; "
              f"before = {commits['before']}, this tree = {commits['after']}; "
              f"{args.rounds} rounds x {args.repeats} timed calls per stage and tree, "
              f"medians; {os.cpu_count()} CPUs")
    detect_table, dv = table(b, a, "detect", DETECT_STAGES, "whole detect()")
    train_table, tv = table(b, a, "train", TRAIN_STAGES, "whole train step")
    text = (f"{header}\n\ndetect():\n\n{detect_table}\n\ntraining step (forward + backward "
            f"where the stage has one):\n\n{train_table}\n")
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"commits": commits, "before": results["before"],
                       "after": results["after"]}, f, indent=1)
    return 1 if "slower" in dv + tv else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", help="path of the older tree (a git worktree)")
    p.add_argument("--size", default="1024x2048", help="H x W, multiples of 64")
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--rounds", type=int, default=2, help="subprocesses per tree (default 2)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed calls per stage in each subprocess (default 3)")
    p.add_argument("--out", help="also write the Markdown tables here")
    p.add_argument("--json", help="also write the raw times here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.height, args.width = (int(v) for v in args.size.lower().split("x"))
    if args.child:
        run_child(args)
        return 0
    if not args.before:
        p.error("--before is required")
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
