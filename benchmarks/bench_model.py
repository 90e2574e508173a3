"""Time one training step and one detect() call of Mask R-CNN on this machine.

    .venv/bin/python -m benchmarks.bench_model \\
        [--backbones resnet50,resnet101] [--sizes 512x1024,1024x2048] \\
        [--backend tensorflow|jax] [--jit off|on] [--precision float32|mixed_float16|...] \\
        [--steps 3] [--pipeline-steps 20] [--breakdown] [--out table.md] [--json raw.json]

--backend, --jit and --precision pick the Keras backend, XLA compilation
(of the train step and of detect's graph) and the dtype policy the model
is built under; the defaults (tensorflow, off, float32) are what earlier
figures measured.

For every (backbone, H x W) case, two fresh subprocesses run (so that the
peak resident memory reported belongs to that case and phase group):

- "train": first, on TensorFlow, the input pipeline
  (`mrcnn.data.pipeline.build_dataset` over a synthetic dataset of H x W
  images with ~20 instances each): warm-up batches, then `--pipeline-steps`
  batches timed one by one from the iterator (other backends take the
  batch from `mrcnn.data.py_feeder.PyFeeder` and time no pipeline). Then
  `MaskRCNN("training", ...)`, `set_trainable(km, "all")`, compile with the
  project's SGD (`make_optimizer`) and `jit_compile`, and Keras'
  `train_on_batch` on one batch (the same batch every call): `--warmup`
  calls (the first one traces), then `--steps` timed calls.
- "detect": `MaskRCNN("inference", ...)` with DETECTION_MIN_CONFIDENCE = 0.0
  (random weights: this keeps the full post-processing path, up to
  DETECTION_MAX_INSTANCES detections and their mask pasting, busy), then
  `model.detect([image])`: `--warmup` calls (the first traces), then
  `--steps` timed calls.

Seconds per call is the median of the timed calls. Timed calls stop early,
never below 2, when the next one would take a phase's timed loop past
`--phase-budget` seconds. Peak memory is `ru_maxrss` of the subprocess
(KiB on Linux) read right after the phase, so the train-step figure also
includes the input pipeline that ran before it in the same process. A
subprocess is killed when it runs past `--case-timeout` seconds, when its
resident memory passes `--max-rss-gib`, or when the machine's available
memory falls under 1 GiB; the table then says so.

--breakdown also times parts of the train step after it (forward pass;
backbone + FPN forward, and forward + backward; RPN head forward + backward;
proposals; mask head forward + backward on as many ROIs as the train step
gives it), each in its own tf.function.

The header names the commit and a hash of mrcnn/*.py; as other people may
edit mrcnn/ during a run, the hash is taken again after every subprocess and
a change is reported as a WARNING line.

All weights are random (`keras.utils.set_random_seed(0)`; no weight file is
read or downloaded). Results and figures: docs/benchmarks.md.
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

DEFAULT_BACKBONES = "resnet50,resnet101"
DEFAULT_SIZES = "512x1024,1024x2048"
NUM_CLASSES = 11  # background + 10 Cityscapes instance classes
INSTANCES_PER_IMAGE = 20
DATASET_IMAGES = 4
SEED = 0


# ---------------------------------------------------------------- configs
def make_config(backbone, height, width, mode):
    """A Cityscapes-like Config: Matterport defaults except the listed fields."""
    from mrcnn.config import Config

    attrs = {
        "NAME": "bench",
        "NUM_CLASSES": NUM_CLASSES,
        "IMAGES_PER_GPU": 1,
        "BACKBONE": backbone,
        "IMAGE_RESIZE_MODE": "pad64",
        "IMAGE_MIN_DIM": height,  # an H x W image (H <= W) is not rescaled
        "IMAGE_MAX_DIM": width,
    }
    if mode == "inference":
        # Random weights: keep every ROI, so that detection and mask pasting
        # always run on up to DETECTION_MAX_INSTANCES detections.
        attrs["DETECTION_MIN_CONFIDENCE"] = 0.0
    return type(f"Bench{mode.title()}Config", (Config,), attrs)()


def config_summary(config):
    keys = ("BACKBONE", "NUM_CLASSES", "IMAGES_PER_GPU", "IMAGE_RESIZE_MODE", "IMAGE_MIN_DIM",
            "IMAGE_MAX_DIM", "PRE_NMS_LIMIT", "POST_NMS_ROIS_TRAINING", "POST_NMS_ROIS_INFERENCE",
            "TRAIN_ROIS_PER_IMAGE", "RPN_TRAIN_ANCHORS_PER_IMAGE", "MAX_GT_INSTANCES",
            "USE_MINI_MASK", "MINI_MASK_SHAPE", "DETECTION_MAX_INSTANCES",
            "DETECTION_MIN_CONFIDENCE", "TRAIN_BN", "OPTIMIZER", "WEIGHT_DECAY",
            "GRADIENT_CLIP_NORM", "PROPOSALS_INCLUDE_GT")
    d = config.to_dict()
    return {k: d[k] for k in keys}


# ---------------------------------------------------------------- dataset
def synthetic_dataset_class():
    from mrcnn.data.dataset import Dataset

    class SyntheticDataset(Dataset):
        """H x W images with random filled rectangles and ellipses (numpy only).

        Shapes are painted in order over a plain background; a mask is the
        visible part of its shape (later shapes occlude earlier ones), and a
        shape hidden entirely is left out. Deterministic from `seed`.
        """

        def load_synthetic(self, count, height, width, instances=INSTANCES_PER_IMAGE, seed=SEED):
            for class_id in range(1, NUM_CLASSES):
                self.add_class("synthetic", class_id, f"class{class_id}")
            rng = np.random.default_rng(seed)
            short = min(height, width)
            for i in range(count):
                shapes = []
                for _ in range(instances):
                    h = int(rng.uniform(0.03, 0.3) * short)
                    w = int(h * rng.uniform(0.5, 2.0))
                    h, w = max(h, 4), max(min(w, width - 1), 4)
                    y1 = int(rng.integers(0, height - h))
                    x1 = int(rng.integers(0, width - w))
                    shapes.append((
                        "rect" if rng.random() < 0.5 else "ellipse",
                        int(rng.integers(1, NUM_CLASSES)),
                        tuple(int(c) for c in rng.integers(0, 256, 3)),
                        (y1, x1, y1 + h, x1 + w),
                    ))
                self.add_image("synthetic", image_id=i, path=None, height=height, width=width,
                               bg=tuple(int(c) for c in rng.integers(0, 256, 3)), shapes=shapes)

        def _full_masks(self, info):
            masks = np.zeros((len(info["shapes"]), info["height"], info["width"]), bool)
            for m, (kind, _, _, (y1, x1, y2, x2)) in zip(masks, info["shapes"]):
                if kind == "rect":
                    m[y1:y2, x1:x2] = True
                else:
                    yy, xx = np.ogrid[y1:y2, x1:x2]
                    cy, cx = (y1 + y2 - 1) / 2, (x1 + x2 - 1) / 2
                    ry, rx = (y2 - y1) / 2, (x2 - x1) / 2
                    m[y1:y2, x1:x2] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            return masks

        def load_image(self, image_id):
            info = self.image_info[image_id]
            image = np.empty((info["height"], info["width"], 3), np.uint8)
            image[:] = info["bg"]
            for (_, _, color, _), m in zip(info["shapes"], self._full_masks(info)):
                image[m] = color
            return image

        def load_mask(self, image_id):
            info = self.image_info[image_id]
            masks = self._full_masks(info)
            covered = np.logical_or.accumulate(masks[::-1], axis=0)[::-1]
            visible = masks.copy()
            visible[:-1] &= ~covered[1:]
            keep = visible.any(axis=(1, 2))
            class_ids = np.array([s[1] for s in info["shapes"]], np.int32)
            return np.moveaxis(visible[keep], 0, -1), class_ids[keep]

    return SyntheticDataset


def make_dataset(height, width):
    ds = synthetic_dataset_class()()
    ds.load_synthetic(DATASET_IMAGES, height, width)
    ds.prepare()
    return ds


# ----------------------------------------------------------------- timing
def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def timed_calls(fn, steps, warmup, budget):
    """Run fn `warmup` times, then up to `steps` timed times.

    Returns (first call s, [timed call s], process CPU s per wall s).
    """
    first = None
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if i == 0:
            first = time.perf_counter() - t0
    times = []
    cpu0 = time.process_time()
    for i in range(steps):
        if i >= 2 and sum(times) + statistics.median(times) > budget:
            break
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    # Process CPU seconds per wall second over the timed calls (all threads):
    # about the core count when the process had the machine to itself.
    cpu_per_wall = (time.process_time() - cpu0) / sum(times)
    return first, times, cpu_per_wall


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def row(phase, timing, **extra):
    first, times, cpu_per_wall = timing
    return {"phase": phase, "first_s": first, "times_s": times,
            "median_s": statistics.median(times), "mean_s": statistics.fmean(times),
            "cpu_per_wall": cpu_per_wall, "peak_rss_kib": peak_rss_kib(),
            "loadavg": os.getloadavg()[0], **extra}


# ------------------------------------------------------------ child phases
def time_pipeline(ds, args):
    """Time batches from a tf.data iterator. -> (last batch, timed_calls result)"""
    it = iter(ds)
    holder = {}

    def next_batch():
        holder["batch"] = next(it)

    timing = timed_calls(next_batch, args.pipeline_steps, args.warmup, args.phase_budget)
    return holder["batch"], timing


def child_train(backbone, height, width, args, emit):
    import keras

    from mrcnn.engine import optimizers, trainable
    from mrcnn.model import MaskRCNN

    config = make_config(backbone, height, width, "training")
    dataset = make_dataset(height, width)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        from mrcnn.data.pipeline import build_dataset

        # Input pipeline, on its own (no model in memory yet). The iterator
        # is dropped afterwards so that its prefetching stops before the
        # train steps.
        batch, timing = time_pipeline(build_dataset(dataset, config, seed=SEED), args)
        gc.collect()
        batch = {k: v.numpy() for k, v in batch.items()}
        n_gt = int(tf.math.count_nonzero(batch["gt_class_ids"]))
        emit(row("input pipeline", timing, gt_instances=n_gt))
        log(f"input pipeline: median {statistics.median(timing[1]):.3f} s/batch, "
            f"{n_gt} gt instances")
    else:
        from mrcnn.data.py_feeder import PyFeeder

        batch = PyFeeder(dataset, config, shuffle=False, seed=SEED)[0]

    with tempfile.TemporaryDirectory() as tmpdir:
        t0 = time.perf_counter()
        keras.mixed_precision.set_global_policy(args.precision)
        model = MaskRCNN("training", config, model_dir=tmpdir)
        build_s = time.perf_counter() - t0
        km = model.keras_model
        trainable.set_trainable(km, "all")
        km.compile(optimizer=optimizers.make_optimizer("sgd", 1e-3),
                   jit_compile=args.jit == "on")
        losses = []

        def train_once():
            logs = km.train_on_batch(batch, return_dict=True)
            losses.append({k: float(v) for k, v in logs.items()})

        log(f"train model built in {build_s:.1f} s; running train steps")
        timing = timed_calls(train_once, args.steps, args.warmup, args.phase_budget)
        first, times = timing[:2]
        finite = all(np.isfinite(v) for d in losses for v in d.values())
        emit(row("train step", timing, build_s=build_s, last_losses=losses[-1],
                 losses_finite=finite, trainable_weights=len(km.trainable_weights)))
        log(f"train step: median {statistics.median(times):.2f} s, first {first:.1f} s, "
            f"loss {losses[-1]['loss']:.3f}")
        if args.breakdown:
            train_row = emit.rows[-1]
            train_row["breakdown"] = train_breakdown(km, batch, config, args)
            emit(None)
            log(f"train step breakdown: {train_row['breakdown']}")


def train_breakdown(km, batch, config, args):
    """Median seconds of parts of the train step, each in its own tf.function.

    Run after the train-step timing (so it does not change that row's peak
    memory). The parts overlap: the forward pass includes the backbone.
    """
    import tensorflow as tf

    def grads_of(fn, variables):
        @tf.function
        def run(x):
            with tf.GradientTape() as tape:
                out = fn(x)
                total = tf.add_n([tf.reduce_sum(o) for o in tf.nest.flatten(out)])
            return tape.gradient(total, variables)
        return run

    forward = tf.function(lambda b: km(b, training=True))
    backbone_fwd = tf.function(lambda x: km.backbone(x, training=True))
    backbone_fb = grads_of(lambda x: km.backbone(x, training=True),
                           km.backbone.trainable_variables)
    mask_fb = grads_of(lambda x: km.mask_head(x, training=True),
                       km.mask_head.trainable_variables)
    # As many ROIs as the train step gives the mask head: all sampled ROIs
    # (Matterport), or only the positive rows where mrcnn has max_positives.
    from mrcnn.modeling import matching

    if hasattr(matching, "max_positives"):
        mask_rois = matching.max_positives(config.TRAIN_ROIS_PER_IMAGE,
                                           config.ROI_POSITIVE_RATIO)
    else:
        mask_rois = config.TRAIN_ROIS_PER_IMAGE
    pooled = tf.random.normal(
        [1, mask_rois, config.MASK_POOL_SIZE, config.MASK_POOL_SIZE,
         config.TOP_DOWN_PYRAMID_SIZE])
    # The RPN head on the five pyramid levels, and the proposal layer, on
    # the feature maps / RPN outputs of this batch (computed once, untimed).
    from mrcnn.modeling import proposals

    feature_maps = list(backbone_fwd(batch["image"]))
    rpn_fb = grads_of(lambda fs: [km.rpn(f) for f in fs], km.rpn.trainable_variables)
    _, rpn_probs, rpn_deltas = km._rpn(feature_maps)
    anchors = km.anchors(tuple(batch["image"].shape[1:3]))
    rpn = km.rpn_spec
    proposal_fn = tf.function(lambda p, d: proposals.generate_proposals(
        p, d, anchors, proposal_count=rpn.proposal_count, nms_threshold=rpn.nms_threshold,
        pre_nms_limit=rpn.pre_nms_limit, std_dev=rpn.std_dev))
    parts = {
        "forward pass (training mode, no gradients)": (forward, (batch,)),
        "backbone + FPN forward": (backbone_fwd, (batch["image"],)),
        "backbone + FPN forward + backward": (backbone_fb, (batch["image"],)),
        "RPN head forward + backward (5 levels)": (rpn_fb, (feature_maps,)),
        f"proposals ({rpn.pre_nms_limit} -> {rpn.proposal_count}, NMS)":
            (proposal_fn, (rpn_probs, rpn_deltas)),
        f"mask head forward + backward ({mask_rois} ROIs)": (mask_fb, (pooled,)),
    }
    out, cpu_s, wall_s = {}, 0.0, 0.0
    for name, (fn, x) in parts.items():
        _, times, c = timed_calls(lambda: fn(*x), args.steps, args.warmup, args.phase_budget)
        out[name] = statistics.median(times)
        cpu_s += c * sum(times)
        wall_s += sum(times)
    out["CPU s/s over all parts"] = cpu_s / wall_s
    return out


def child_detect(backbone, height, width, args, emit):
    from mrcnn.modeling import postprocess as model_lib
    from mrcnn.model import MaskRCNN

    import keras

    config = make_config(backbone, height, width, "inference")
    config.JIT_COMPILE = args.jit == "on"
    dataset = make_dataset(height, width)
    image = dataset.load_image(0)
    keras.mixed_precision.set_global_policy(args.precision)

    # Split each detect() call into the graph call and the unmolding
    # (boxes back to image pixels + pasting the masks), without changing it.
    parts = {"graph": 0.0, "unmold": 0.0}
    unmold = model_lib.unmold_detections

    def timed_unmold(*a, **k):
        t0 = time.perf_counter()
        out = unmold(*a, **k)
        parts["unmold"] += time.perf_counter() - t0
        return out

    model_lib.unmold_detections = timed_unmold
    with tempfile.TemporaryDirectory() as tmpdir:
        t0 = time.perf_counter()
        model = MaskRCNN("inference", config, tmpdir)
        build_s = time.perf_counter() - t0
        counts, splits = [], []

        def detect_once():
            parts.update(graph=0.0, unmold=0.0)
            infer = model._infer
            if infer is not None and not getattr(infer, "_bench_wrapped", False):
                def timed_infer(inputs, _f=infer):
                    t = time.perf_counter()
                    out = _f(inputs)
                    parts["graph"] += time.perf_counter() - t
                    return out
                timed_infer._bench_wrapped = True
                model._infer = timed_infer
            r = model.detect([image])[0]
            counts.append(len(r["class_ids"]))
            splits.append(dict(parts))

        log(f"inference model built in {build_s:.1f} s; running detect")
        timing = timed_calls(detect_once, args.steps, args.warmup, args.phase_budget)
        first, times = timing[:2]
        timed_splits = splits[-len(times):]
        emit(row("detect", timing, build_s=build_s, detections=counts[-len(times):],
                 graph_s=statistics.median(s["graph"] for s in timed_splits),
                 unmold_s=statistics.median(s["unmold"] for s in timed_splits)))
        log(f"detect: median {statistics.median(times):.2f} s, first {first:.1f} s, "
            f"detections {counts[-1]}")
    model_lib.unmold_detections = unmold


def run_child(args):
    import keras

    keras.utils.set_random_seed(SEED)  # same random weights in every run
    height, width = parse_size(args.size)
    rows = []

    def emit(r):
        """Add a result row (None: rewrite the file after a row changed)."""
        if r is not None:
            r.update(backbone=args.backbone, size=args.size, batch=1)
            rows.append(r)
        with open(args.result_file, "w") as f:
            json.dump(rows, f)

    emit.rows = rows

    if args.child == "train":
        child_train(args.backbone, height, width, args, emit)
    else:
        child_detect(args.backbone, height, width, args, emit)


# ------------------------------------------------------------------ parent
def parse_size(text):
    h, w = text.lower().split("x")
    return int(h), int(w)


def available_mem_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def spawn(group, backbone, size, args):
    """Run one child; returns (rows, failure message or None, wall seconds)."""
    fd, result_file = tempfile.mkstemp(prefix="bench_", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, "-m", "benchmarks.bench_model", "--child", group,
           "--backbone", backbone, "--size", size, "--result-file", result_file,
           "--backend", args.backend, "--jit", args.jit, "--precision", args.precision,
           "--steps", str(args.steps), "--pipeline-steps", str(args.pipeline_steps),
           "--warmup", str(args.warmup), "--phase-budget", str(args.phase_budget)]
    if args.breakdown and group == "train":
        cmd.append("--breakdown")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT,
               KERAS_BACKEND=args.backend)
    log(f"{backbone} {size} {group}: starting")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
    failure, max_rss = None, 0
    while proc.poll() is None:
        time.sleep(0.5)
        max_rss = max(max_rss, rss_kib(proc.pid))
        avail = available_mem_kib()
        if time.perf_counter() - t0 > args.case_timeout:
            failure = f"killed after {args.case_timeout:.0f} s (--case-timeout)"
        elif max_rss > args.max_rss_gib * 2**20:
            failure = f"killed: RSS passed {args.max_rss_gib:g} GiB (--max-rss-gib)"
        elif avail is not None and avail < 2**20:
            failure = (f"killed: machine's available memory under 1 GiB "
                       f"(child RSS {max_rss / 2**20:.1f} GiB)")
        if failure:
            proc.kill()
            proc.wait()
            break
    wall = time.perf_counter() - t0
    if failure is None and proc.returncode != 0:
        failure = f"exited with status {proc.returncode}"
    try:
        with open(result_file) as f:
            rows = json.load(f)
    except (OSError, ValueError):
        rows = []
    os.unlink(result_file)
    for r in rows:
        r["child_wall_s"] = wall
        r["child_max_rss_polled_kib"] = max_rss
    log(f"{backbone} {size} {group}: done in {wall:.0f} s"
        + (f" -- {failure}" if failure else ""))
    return rows, failure, wall, max_rss


def code_state():
    """Commit and a hash of mrcnn/*.py as they are on disk now.

    Other people may edit mrcnn/ while a run goes on; the parent compares
    this before and after every subprocess and says so when it changed.
    """
    import hashlib

    digest = hashlib.sha256()
    folder = os.path.join(REPO_ROOT, "mrcnn")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(f.read())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mrcnn"],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    return {"commit": commit, "mrcnn_dirty": bool(dirty),
            "mrcnn_sha256": digest.hexdigest()[:12]}


def versions():
    import keras

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from mrcnn.engine import devices

    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:
        tf_version = "absent"
    gpus = devices.gpu_names()
    return {"tensorflow": tf_version, "keras": keras.__version__,
            "python": platform.python_version(), "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "cpu_model": cpu, "gpus": len(gpus)}


def fmt_table(rows):
    head = ("| backbone | image (H x W) | phase | batch | s / call (median) | images / s "
            "| peak RSS (GiB) | timed calls | first call (s) | notes |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if r.get("failure") and "median_s" not in r:
            lines.append(f"| {r['backbone']} | {r['size']} | {r['phase']} | 1 | -- | -- "
                         f"| {r.get('peak_gib', '--')} | -- | -- | {r['failure']} |")
            continue
        notes = []
        if r["phase"] == "input pipeline":
            notes.append(f"mean {r['mean_s']:.3f} s; {r['gt_instances']} GT instances/image")
        if r["phase"] == "train step":
            notes.append(f"loss {r['last_losses']['loss']:.2f}"
                         + ("" if r["losses_finite"] else " (NOT FINITE)"))
        if r["phase"] == "detect":
            dets = sorted(set(r["detections"]))
            notes.append(f"{'/'.join(map(str, dets))} detections; graph {r['graph_s']:.2f} s, "
                         f"unmold+paste {r['unmold_s']:.2f} s")
        notes.append(f"CPU {r['cpu_per_wall']:.1f} s/s; load {r['loadavg']:.1f}")
        if r.get("failure"):
            notes.append(r["failure"])
        med = r["median_s"]
        first = f"{r['first_s']:.2f}" if r["first_s"] is not None else "--"
        lines.append(
            f"| {r['backbone']} | {r['size'].replace('x', ' x ')} | {r['phase']} | {r['batch']} "
            f"| {med:.3f} | {1 / med:.2f} | {r['peak_rss_kib'] / 2**20:.2f} "
            f"| {len(r['times_s'])} | {first} | {'; '.join(notes)} |"
        )
    return "\n".join(lines)


def run_parent(args):
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        parse_size(s)
    info = versions()
    code = code_state()
    code_changes = []
    all_rows, raw = [], []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    for backbone in backbones:
        for size in sizes:
            # The input pipeline is timed on TensorFlow only (tf.data).
            train_phases = (("input pipeline",) if args.backend == "tensorflow" else ()) + (
                "train step",)
            for group, phases in (("train", train_phases), ("detect", ("detect",))):
                rows, failure, wall, max_rss = spawn(group, backbone, size, args)
                now = code_state()
                if now != code:
                    code_changes.append(f"mrcnn/ changed on disk during {backbone} {size} "
                                        f"{group}: {code} -> {now}")
                    log(code_changes[-1])
                    code = now
                raw.extend(rows)
                done = {r["phase"] for r in rows}
                if failure and rows and done.issuperset(phases):
                    rows[-1]["failure"] = failure
                all_rows.extend(rows)
                for phase in phases:
                    if phase not in done:
                        all_rows.append({
                            "backbone": backbone, "size": size, "phase": phase,
                            "failure": (failure or "no result") + f" (child ran {wall:.0f} s)",
                            "peak_gib": f"{max_rss / 2**20:.2f} (polled)",
                        })
    table = fmt_table(all_rows)
    broken = [r for r in all_rows if r.get("breakdown")]
    if broken:
        table += ("\n\nTrain step broken down (median s per call; parts overlap, "
                  "each part timed on its own):\n\n| backbone | image (H x W) | train step | "
                  + " | ".join(broken[0]["breakdown"]) + " |\n|" + "---|" * (3 + len(
                      broken[0]["breakdown"])))
        for r in broken:
            table += (f"\n| {r['backbone']} | {r['size'].replace('x', ' x ')} "
                      f"| {r['median_s']:.2f} | "
                      + " | ".join(f"{v:.2f}" for v in r["breakdown"].values()) + " |")
    header = (
        f"Mask R-CNN benchmark, {started}: TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']}, Python {info['python']}, NumPy {info['numpy']}; "
        f"{info['cpu_count']} CPUs ({info['cpus_usable']} usable, {info['cpu_model']}), "
        f"{info['gpus']} GPUs; backend {args.backend}, jit {args.jit}, {args.precision}; "
        f"--steps {args.steps}, --pipeline-steps {args.pipeline_steps}, "
        f"--warmup {args.warmup}, --phase-budget {args.phase_budget:g} s; "
        f"code: commit {code['commit']}"
        + (" with uncommitted changes in mrcnn/" if code["mrcnn_dirty"] else "")
        + f", mrcnn/*.py sha256 {code['mrcnn_sha256']}"
    )
    if code_changes:
        header += "\n\nWARNING: " + "\nWARNING: ".join(code_changes)
    print()
    print(header)
    print()
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(header + "\n\n" + table + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "code": code, "code_changes": code_changes,
                       "args": vars(args), "rows": raw}, f, indent=1)
    return 1 if any(r.get("failure") for r in all_rows) else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbones", default=DEFAULT_BACKBONES,
                   help=f"comma-separated (default {DEFAULT_BACKBONES})")
    p.add_argument("--sizes", default=DEFAULT_SIZES,
                   help=f"comma-separated HxW, multiples of 64 (default {DEFAULT_SIZES})")
    p.add_argument("--steps", type=int, default=3,
                   help="timed train steps and timed detect calls per case (default 3)")
    p.add_argument("--pipeline-steps", type=int, default=20,
                   help="timed input-pipeline batches per case (default 20)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed calls before timing; the first one traces (default 1)")
    p.add_argument("--phase-budget", type=float, default=300.0,
                   help="stop timing a phase early (never below 2 calls) when the next call "
                        "would take its timed loop past this many seconds (default 300)")
    p.add_argument("--case-timeout", type=float, default=1200.0,
                   help="kill a subprocess after this many seconds (default 1200)")
    p.add_argument("--max-rss-gib", type=float, default=20.0,
                   help="kill a subprocess whose resident memory passes this (default 20)")
    p.add_argument("--breakdown", action="store_true",
                   help="also time parts of the train step (forward pass, backbone + FPN "
                        "forward / forward + backward, RPN head, proposals, mask head)")
    p.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"),
                   help="Keras backend of the runs (default tensorflow)")
    p.add_argument("--jit", default="off", choices=("off", "on"),
                   help="XLA compilation of the train step and detect (default off)")
    p.add_argument("--precision", default="float32",
                   choices=("float32", "mixed_float16", "mixed_bfloat16"),
                   help="Keras dtype policy the model is built under (default float32)")
    p.add_argument("--out", help="also write the Markdown table to this file")
    p.add_argument("--json", help="also write the raw measurements to this JSON file")
    # Internal: one subprocess per (backbone, size, phase group).
    p.add_argument("--child", choices=("train", "detect"), help=argparse.SUPPRESS)
    p.add_argument("--backbone", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.pipeline_steps < 1 or args.warmup < 1:
        p.error("--steps, --pipeline-steps and --warmup must be at least 1")
    if args.child:
        run_child(args)
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
