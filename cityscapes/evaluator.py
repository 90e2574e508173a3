"""What `python evaluate.py` does, as functions: options -> report.

    plan = prepare(options)      # checks, dataset, models or predictions file
    results = run(plan)          # score every model, export, write the report

Models come from checkpoints (`--weights PATH|last`, each with the
Config and classes that train.py records in its run folder) or, with
`--zero-shot`, from Matterport's 81-class COCO weights, whose person,
bicycle, car, motorcycle, bus, train and truck detections are renamed to
the Cityscapes classes (rider, caravan and trailer have no COCO class).
`--predictions FILE` scores a COCO-results JSON instead (no model, no
TensorFlow work beyond the matching).

Every check on the user's input happens in `prepare`, before a model is
built, and fails with `cli.UsageError` (evaluate.py prints it on one line
and exits with 2); the split's images are decoded once in full there
(remembered in the --decode_cache file), and --skip_bad leaves bad ones
out: they are not scored, and are named in the log and the report
folder's skipped.json.

`mask_ap50(model, dataset, image_ids)` is the headline number alone (val
mask AP@0.5, Matterport's per-image protocol) through the same code as a
report's: train.py's end-of-run evaluation and tuning's val_ap use it.
"""

import collections
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import cli
from cityscapes import export, options, predictions, report, scoring
from cityscapes.config import CityscapesConfig
from cityscapes.dataset import CityscapesDataset
from cityscapes.labels import INSTANCE_CLASSES, ClassMap
from cityscapes.options import decode_cache as decode_cache_file
from cityscapes.rasterize import CityscapesDataError
from cli import UsageError
from mrcnn import staging
from mrcnn.checkpoint.pretrained import COCO_CLASS_NAMES
from mrcnn.engine import skipped


@dataclasses.dataclass
class EvalOptions:
    """evaluate.py's options (its flags), with their defaults."""

    dataset: str = None
    annotations: str = "auto"
    split: str = "val"
    weights: list = dataclasses.field(default_factory=list)
    names: str = None
    report: str = None
    predictions: str = None
    export: str = None
    zero_shot: bool = False
    images: int = None
    samples: int = 3
    logs: str = "logs"
    classes: str = None
    legacy_matterport: bool = False
    backbone: str = None
    image_min_dim: int = None
    image_max_dim: int = None
    skip_bad: bool = False
    decode_cache: str = options.DECODE_CACHE  # or "none"
    allow_partial: bool = False
    jit_compile: str = "auto"  # on | off | auto (Config.JIT_COMPILE of the models)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked evaluation: options, the split's dataset and image ids, the models."""

    options: EvalOptions
    root: str
    dataset: object
    image_ids: list
    models: list
# Matterport's COCO class ids of the classes Cityscapes also has (same names):
# person 1, bicycle 2, car 3, motorcycle 4, bus 6, train 7, truck 8.
COCO_TO_CITYSCAPES = {k: name for k, name in enumerate(COCO_CLASS_NAMES)
                      if name in INSTANCE_CLASSES}
COCO_NUM_CLASSES = len(COCO_CLASS_NAMES)


# ------------------------------------------------------------------ planning
def _model_spec(o, spec):
    """(checkpoint path, config, class names or None) of one --weights value."""
    if spec == "coco" and not o.zero_shot:
        raise UsageError("--weights coco is the 81-class COCO model: add --zero-shot")
    if o.zero_shot:
        from mrcnn.engine import initial_weights

        try:
            path = initial_weights.weights_file(spec, o.backbone or "resnet101")
        except initial_weights.WeightsError as e:
            raise UsageError(f"--weights {spec}: {e}")
        if path is None or not os.path.isfile(path):
            raise UsageError(f"--weights {spec}: no such file")
        config = CityscapesConfig.from_dict({"NUM_CLASSES": COCO_NUM_CLASSES, "NAME": "coco",
                                             **_overrides(o)})
        return path, config, list(INSTANCE_CLASSES)
    if spec == "last":
        path = options.last_checkpoint(o.logs, options.run_name(o.dataset))
    else:
        path = os.path.expanduser(spec)
    if not os.path.isfile(path):
        raise UsageError(f"--weights {spec}: no such file")
    from mrcnn.engine.inference import RunRecordError, run_config

    try:
        config = run_config(path, _overrides(o))
    except RunRecordError as e:
        raise UsageError(f"--weights {spec}: {e}")
    classes = options.run_record_classes(path)
    if classes is None and o.classes:
        classes = cli.csv(o.classes)
    if classes is None and config.NUM_CLASSES == 1 + len(INSTANCE_CLASSES):
        classes = list(INSTANCE_CLASSES)
    if classes is None or len(classes) + 1 != config.NUM_CLASSES:
        raise UsageError(f"--weights {spec}: cannot tell its classes ({config.NUM_CLASSES - 1} "
                         f"in config.json): pass --classes")
    return path, config, classes


def _overrides(o):
    """Config fields set by --backbone / --image_min_dim / --image_max_dim,
    and --jit_compile (the training run's value is not inherited)."""
    keys = {"backbone": "BACKBONE", "image_min_dim": "IMAGE_MIN_DIM",
            "image_max_dim": "IMAGE_MAX_DIM"}
    fields = {field: getattr(o, k) for k, field in keys.items() if getattr(o, k) is not None}
    return {**fields, "JIT_COMPILE": cli.jit_value(o.jit_compile)}


def prepare(options):
    """Check everything, load the split and the models' configs -> Plan.

    options: EvalOptions, or a dict of some of its fields."""
    if isinstance(options, dict):
        options = EvalOptions(**{k: v for k, v in options.items() if v is not None})
    o = dataclasses.replace(options, dataset=cli.dataset_value(options.dataset))
    if bool(o.weights) == bool(o.predictions):
        raise UsageError("give either --weights (one or more) or --predictions FILE")
    if o.export and o.export not in export.FORMATS:
        raise UsageError(f"--export {o.export}: choose from {', '.join(export.FORMATS)}")
    if o.export and not o.report:
        raise UsageError(f"--export {o.export}: needs --report DIR (the files go there)")
    if o.images is not None and o.images < 1:
        raise UsageError(f"--images {o.images}: must be >= 1")
    names = [n.strip() for n in o.names.split(",")] if o.names else None
    count = len(o.weights) or 1
    if names is not None and len(names) != count:
        raise UsageError(f"--names {o.names}: {len(names)} names for {count} models")
    if names is not None and len(set(names)) != len(names):
        raise UsageError(f"--names {o.names}: names must differ")
    root = cli.dataset_root(o.dataset)
    models = []
    for i, spec in enumerate(o.weights):
        path, config, classes = _model_spec(o, spec)
        models.append({"name": names[i] if names else _default_name(spec, path, i),
                       "path": path, "config": config,
                       "classes": classes, "zero_shot": o.zero_shot})
    if o.predictions:
        classes = ([c.strip() for c in o.classes.split(",")] if o.classes
                   else list(INSTANCE_CLASSES))
        models.append({"name": names[0] if names else
                       os.path.splitext(os.path.basename(o.predictions))[0],
                       "path": o.predictions, "config": None, "classes": classes,
                       "zero_shot": False})
    labels = [m["name"] for m in models]
    if len(set(labels)) != len(labels) and not names:  # same file name in two runs
        for m in models:
            m["name"] = f"{os.path.basename(os.path.dirname(os.path.abspath(m['path'])))}/{m['name']}"
        labels = [m["name"] for m in models]
    if len(set(labels)) != len(labels):
        raise UsageError(f"--weights: models {labels} share names: pass --names")
    try:
        ClassMap(models[0]["classes"])
    except ValueError as e:
        raise UsageError(f"--classes: {e}")
    dataset = CityscapesDataset(INSTANCE_CLASSES)
    try:
        dataset.load_cityscapes(root, o.split, annotations=o.annotations, skip_bad=o.skip_bad,
                                decode_cache=decode_cache_file(o))
    except CityscapesDataError as e:
        raise UsageError(f"--dataset {root}: {e}"
                         + ("" if o.skip_bad else " (--skip_bad leaves bad images out)"))
    dataset.prepare()
    ids = list(dataset.image_ids[:o.images] if o.images else dataset.image_ids)
    if o.predictions:
        models[-1]["predictions"] = _read_predictions(o.predictions, dataset, models[-1])
    return Plan(o, root, dataset, ids, models)


def _read_predictions(path, dataset, model):
    """{stem: predictions} of a --predictions file, checked against the
    split's images (all of them, also with --images N: entries of the
    images not scored are left out) and the model's classes."""
    sizes = {info["id"]: (info["height"], info["width"]) for info in dataset.image_info}
    try:
        return predictions.read_coco_results(path, sizes, len(model["classes"]))
    except predictions.PredictionsError as e:
        raise UsageError(str(e))


def _default_name(spec, path, index):
    if spec in ("coco", "last"):
        return spec
    return os.path.splitext(os.path.basename(path))[0] or f"model{index + 1}"


# ----------------------------------------------------------------------- run
def run(plan, log=print):
    """Score every model; export and write the report when asked. -> dict
    {"models": {name: report entry}} (report.json's content)."""
    o = plan.options
    if not o.report:
        return _score_all(plan, None, log)
    with staging.staged(o.report, log=log) as folder:
        return _score_all(plan, folder, log)


def _score_all(plan, folder, log):
    o, dataset, ids = plan.options, plan.dataset, plan.image_ids
    stems = [dataset.image_info[i]["id"] for i in ids]
    left_out = skipped.load_entries(o.split, dataset.skipped)
    if left_out:
        log(f"{skipped.summary(left_out)}: not scored"
            + (f" (listed in {os.path.join(o.report, skipped.FILE)})" if folder else ""))
        if folder:
            skipped.append(folder, left_out)
    results, pictures = {}, {}
    for model in plan.models:
        started = time.time()
        class_map = ClassMap(model["classes"])
        scorer = scoring.Scorer(class_map, legacy_matterport=o.legacy_matterport)
        kept, exported = {}, []
        streams = zip(_predictions(plan, model, ids, stems, log),
                      read_ahead(dataset.load_instance_ids, ids))
        for (stem, image_id, preds, proposals), gt_ids in streams:
            found = scorer.add(stem, gt_ids, preds)
            if found and len(kept) < o.samples:  # the first images with ground truth
                kept[stem] = (image_id, preds, proposals)
            if o.export == "coco":
                exported += predictions.coco_results(stem, preds)
            elif o.export == "cityscapes":
                export.write_cityscapes_results(
                    os.path.join(folder, f"{_file_name(model['name'])}_cityscapes_results"), stem,
                    [class_map.label_id(c) for c in preds["class_ids"]], preds["scores"],
                    preds["rles"])
        if o.export == "coco":
            predictions.write_coco_results(
                os.path.join(folder, f"{_file_name(model['name'])}_coco_results.json"), exported)
        entry = scorer.result()
        entry["seconds"] = round(time.time() - started, 1)
        entry["source"] = model["path"]
        if model["zero_shot"]:
            entry["zero_shot"] = {
                "coco_class_ids": {c: k for k, c in COCO_TO_CITYSCAPES.items()},
                "no_coco_class": [c for c in INSTANCE_CLASSES
                                  if c not in COCO_TO_CITYSCAPES.values()]}
        results[model["name"]] = entry
        pictures[model["name"]] = (class_map, kept)
        log(f"{model['name']}: AP@0.5 {_pct(entry['matterport']['ap50'])}, "
            f"rAP {_pct(entry['matterport']['rap'])}, COCO segm AP "
            f"{_pct(entry['coco']['segm']['AP'])}, Cityscapes AP "
            f"{_pct(entry['cityscapes']['AP'])} over {len(ids)} images")
    if folder:
        report.write_report(folder, results, dataset, pictures)
        log(f"Report written to {o.report}")
    return {"models": {k: report.public(v) for k, v in results.items()}}


def read_ahead(fn, items, ahead=4, workers=2):
    """fn(item) for each item, in order, computed by `workers` threads up to
    `ahead` items in advance. PNG decoding releases the GIL: reading the
    next ground truths overlaps with scoring this one."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _file_name(name):
    return name.replace(os.sep, "_").replace("/", "_")


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.1f}"


def _predictions(plan, model, ids, stems, log):
    """(stem, image_id, predictions, proposals or None) per image."""
    dataset = plan.dataset
    if model["config"] is None:
        for stem, image_id in zip(stems, ids):
            yield stem, image_id, model["predictions"][stem], None
        return
    net = _inference_model(model, plan.options.allow_partial)
    for n, (stem, image_id, preds, proposals) in enumerate(
            detections(net, dataset, ids, coco_classes=model["zero_shot"])):
        yield stem, image_id, preds, proposals
        if (n + 1) % 50 == 0:
            log(f"{model['name']}: {n + 1}/{len(ids)} images")


def detections(net, dataset, image_ids, coco_classes=False):
    """(stem, image_id, predictions, proposals) per image: an inference
    MaskRCNN's detections as predictions (RLE masks, cityscapes/predictions.py);
    coco_classes: those of an 81-class COCO model, renamed."""
    for image_id in image_ids:
        r = net.detect([dataset.load_image(image_id)])[0]
        if coco_classes:
            r = _coco_to_cityscapes(r)
        yield (dataset.image_info[image_id]["id"], image_id, predictions.from_detections(r),
               r.get("proposals"))


def mask_ap50(net, dataset, image_ids):
    """Mask AP@0.5 (Matterport's per-image protocol) of an inference
    MaskRCNN on images of a CityscapesDataset, by the code evaluate.py's
    reports use. -> {"mask_ap50", "images" (scored), "without_instances",
    "scored" (their ids, in order)}"""
    scorer = scoring.Scorer(ClassMap(dataset.class_names[1:]), all_protocols=False)
    scored, without = [], 0
    streams = zip(detections(net, dataset, image_ids),
                  read_ahead(dataset.load_instance_ids, image_ids))
    for (stem, image_id, preds, _), gt_ids in streams:
        if scorer.add(stem, gt_ids, preds):
            scored.append(image_id)
        else:
            without += 1
    ap = scorer.result()["matterport"]["ap50"]
    return {"mask_ap50": float("nan") if ap is None else ap, "images": len(scored),
            "without_instances": without, "scored": scored}


def _inference_model(model, allow_partial=False):
    from mrcnn.engine.inference import inference_model

    try:
        return inference_model(model["config"], weights=model["path"],
                               allow_partial=allow_partial)
    except ValueError as e:
        raise UsageError(f"--weights {model['path']}: {e}")


def _coco_to_cityscapes(result):
    """COCO detections -> those of COCO classes Cityscapes has, renumbered
    to Cityscapes class ids (all 10 classes, label-id order)."""
    order = {name: i + 1 for i, name in enumerate(INSTANCE_CLASSES)}
    lut = np.zeros(COCO_NUM_CLASSES, np.int32)
    for k, name in COCO_TO_CITYSCAPES.items():
        lut[k] = order[name]
    new = lut[result["class_ids"]]
    keep = new > 0
    out = {k: (v[keep] if k in ("rois", "scores") else v) for k, v in result.items()}
    out["class_ids"] = new[keep]
    out["masks"] = result["masks"][..., keep]
    return out
