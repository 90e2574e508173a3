"""What `python evaluate.py` does, as functions: options -> report.

    plan = prepare(options)      # checks, dataset, models or predictions file
    results = run(plan)          # score every model, export, write the report

Models come from checkpoints (`--weights PATH|last`, each with the
config.json and train_args.json that train.py writes beside it) or, with
`--zero-shot`, from Matterport's 81-class COCO weights, whose person,
bicycle, car, motorcycle, bus, train and truck detections are renamed to
the Cityscapes classes (rider, caravan and trailer have no COCO class).
`--predictions FILE` scores a COCO-results JSON instead (no model, no
TensorFlow work beyond the matching).

Every check on the user's input happens in `prepare`, before a model is
built, and fails with `trainer.UsageError` (evaluate.py prints it on one
line and exits with 2).
"""

import collections
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cityscapes import export, predictions, report, scoring, trainer
from cityscapes.config import CityscapesConfig
from cityscapes.labels import INSTANCE_CLASSES, ClassMap
from cityscapes.trainer import UsageError

DEFAULTS = {"dataset": None, "split": "val", "weights": [], "names": None, "report": None,
            "predictions": None, "export": None, "zero_shot": False, "images": None,
            "samples": 3, "logs": "logs", "classes": None, "legacy_matterport": False,
            "backbone": None, "image_min_dim": None, "image_max_dim": None}
EXPORTS = ("cityscapes", "coco")
# Matterport's COCO class ids of the classes Cityscapes also has (same names).
COCO_TO_CITYSCAPES = {1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 6: "bus",
                      7: "train", 8: "truck"}
COCO_NUM_CLASSES = 81


# ------------------------------------------------------------------ planning
def _model_spec(o, spec):
    """(checkpoint path, config, class names or None) of one --weights value."""
    if spec == "coco" and not o["zero_shot"]:
        raise UsageError("--weights coco is the 81-class COCO model: add --zero-shot")
    if o["zero_shot"]:
        path = trainer.weights_path({"weights": spec, "resume_from": None},
                                    o["backbone"] or "resnet101")
        if not os.path.isfile(path):
            raise UsageError(f"--weights {spec}: no such file")
        config = CityscapesConfig.from_dict({"NUM_CLASSES": COCO_NUM_CLASSES, "NAME": "coco",
                                             **_overrides(o)})
        return path, config, list(INSTANCE_CLASSES)
    if spec == "last":
        path = trainer.last_checkpoint(o["logs"], trainer.run_name(o["dataset"]))
    else:
        path = os.path.expanduser(spec)
    if not os.path.isfile(path):
        raise UsageError(f"--weights {spec}: no such file")
    folder = os.path.dirname(os.path.abspath(path))
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise UsageError(f"--weights {spec}: no config.json beside it in {folder} "
                         f"(train.py writes one in each run folder)")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = CityscapesConfig.from_dict({**json.load(f), **_overrides(o)})
    except ValueError as e:
        raise UsageError(f"{config_path}: {e}")
    classes = None
    args_path = os.path.join(folder, "train_args.json")
    if os.path.isfile(args_path):
        with open(args_path, encoding="utf-8") as f:
            classes = json.load(f).get("classes")
    if classes is None and o["classes"]:
        classes = [c.strip() for c in o["classes"].split(",") if c.strip()]
    if classes is None and config.NUM_CLASSES == 1 + len(INSTANCE_CLASSES):
        classes = list(INSTANCE_CLASSES)
    if classes is None or len(classes) + 1 != config.NUM_CLASSES:
        raise UsageError(f"--weights {spec}: cannot tell its classes ({config.NUM_CLASSES - 1} "
                         f"in config.json): pass --classes")
    return path, config, classes


def _overrides(o):
    """Config fields set by --backbone / --image_min_dim / --image_max_dim."""
    keys = {"backbone": "BACKBONE", "image_min_dim": "IMAGE_MIN_DIM",
            "image_max_dim": "IMAGE_MAX_DIM"}
    return {field: o[k] for k, field in keys.items() if o.get(k) is not None}


def prepare(options):
    """Check everything, load the split and the models' configs -> plan."""
    o = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    if not o["dataset"]:
        raise UsageError(f"--dataset: give a Cityscapes folder or 'demo' "
                         f"(or set ${trainer.ENV_VAR})")
    if bool(o["weights"]) == bool(o["predictions"]):
        raise UsageError("give either --weights (one or more) or --predictions FILE")
    if o["export"] and o["export"] not in EXPORTS:
        raise UsageError(f"--export {o['export']}: choose from {', '.join(EXPORTS)}")
    if o["export"] and not o["report"]:
        raise UsageError(f"--export {o['export']}: needs --report DIR (the files go there)")
    if o["images"] is not None and o["images"] < 1:
        raise UsageError(f"--images {o['images']}: must be >= 1")
    names = [n.strip() for n in o["names"].split(",")] if o["names"] else None
    count = len(o["weights"]) or 1
    if names is not None and len(names) != count:
        raise UsageError(f"--names {o['names']}: {len(names)} names for {count} models")
    if names is not None and len(set(names)) != len(names):
        raise UsageError(f"--names {o['names']}: names must differ")
    root = trainer.dataset_root(o)
    models = []
    for i, spec in enumerate(o["weights"]):
        path, config, classes = _model_spec(o, spec)
        models.append({"name": names[i] if names else _default_name(spec, path, i),
                       "path": path, "config": config,
                       "classes": classes, "zero_shot": o["zero_shot"]})
    if o["predictions"]:
        classes = ([c.strip() for c in o["classes"].split(",")] if o["classes"]
                   else list(INSTANCE_CLASSES))
        models.append({"name": names[0] if names else
                       os.path.splitext(os.path.basename(o["predictions"]))[0],
                       "path": o["predictions"], "config": None, "classes": classes,
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
    dataset = trainer.load_split(root, o["split"], INSTANCE_CLASSES)
    ids = list(dataset.image_ids[:o["images"]] if o["images"] else dataset.image_ids)
    return {"options": o, "root": root, "dataset": dataset, "image_ids": ids, "models": models}


def _default_name(spec, path, index):
    if spec in ("coco", "last"):
        return spec
    return os.path.splitext(os.path.basename(path))[0] or f"model{index + 1}"


# ----------------------------------------------------------------------- run
def run(plan, log=print):
    """Score every model; export and write the report when asked. -> dict
    {"models": {name: report entry}} (report.json's content)."""
    o = plan["options"]
    if not o["report"]:
        return _score_all(plan, None, log)
    with report.staged(o["report"]) as folder:
        return _score_all(plan, folder, log)


def _score_all(plan, folder, log):
    o, dataset, ids = plan["options"], plan["dataset"], plan["image_ids"]
    stems = [dataset.image_info[i]["id"] for i in ids]
    results, pictures = {}, {}
    for model in plan["models"]:
        started = time.time()
        class_map = ClassMap(model["classes"])
        scorer = scoring.Scorer(class_map, legacy_matterport=o["legacy_matterport"])
        kept, exported = {}, []
        streams = zip(_predictions(plan, model, ids, stems, log),
                      read_ahead(dataset.load_instance_ids, ids))
        for (stem, image_id, preds, proposals), gt_ids in streams:
            found = scorer.add(stem, gt_ids, preds)
            if found and len(kept) < o["samples"]:  # the first images with ground truth
                kept[stem] = (image_id, preds, proposals)
            if o["export"] == "coco":
                exported += predictions.coco_results(stem, preds)
            elif o["export"] == "cityscapes":
                export.write_cityscapes_results(
                    os.path.join(folder, f"{_file_name(model['name'])}_cityscapes_results"), stem,
                    [class_map.label_id(c) for c in preds["class_ids"]], preds["scores"],
                    preds["rles"])
        if o["export"] == "coco":
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
        log(f"Report written to {o['report']}")
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
    dataset = plan["dataset"]
    if model["config"] is None:
        sizes = {s: (dataset.image_info[i]["height"], dataset.image_info[i]["width"])
                 for s, i in zip(stems, ids)}
        try:
            by_stem = predictions.read_coco_results(model["path"], sizes, len(model["classes"]))
        except predictions.PredictionsError as e:
            raise UsageError(str(e))
        for stem, image_id in zip(stems, ids):
            yield stem, image_id, by_stem[stem], None
        return
    net = _inference_model(model)
    for n, (stem, image_id) in enumerate(zip(stems, ids)):
        r = net.detect([dataset.load_image(image_id)])[0]
        if model["zero_shot"]:
            r = _coco_to_cityscapes(r)
        yield stem, image_id, predictions.from_detections(r), r.get("proposals")
        if (n + 1) % 50 == 0:
            log(f"{model['name']}: {n + 1}/{len(ids)} images")


def _inference_model(model):
    from mrcnn.model import MaskRCNN

    config = type(model["config"]).from_dict(
        {**model["config"].to_dict(), "IMAGES_PER_GPU": 1, "GPU_COUNT": 1})
    net = MaskRCNN("inference", config, os.path.dirname(os.path.abspath(model["path"])))
    try:
        net.load_weights(model["path"], by_name=True)
    except ValueError as e:
        raise UsageError(f"--weights {model['path']}: {e}")
    return net


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
