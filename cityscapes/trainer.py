"""What `python train.py` does on Cityscapes: options -> datasets -> a run.

    options, resumed = cityscapes.options.resolve(explicit)   # flags > ... > defaults
    plan = prepare(options, resumed)      # every check, the datasets, the Config (no model)
    summary = run(plan)                   # mrcnn.engine.run: model, weights, stages, summary

Every check of the user's input happens in `options.resolve`, `prepare`
and the weights choice at the start of `run`, before a model trains, and
fails with `cli.UsageError` (exit 2). A NaN / Inf loss ends the run with
`mrcnn.engine.callbacks.NonFiniteLossError` (exit 3); the last good
checkpoint stays.

The run folder ({logs}/{name}{YYYYmmddTHHMM}/, mrcnn/engine/run_dir.py)
holds what `MaskRCNN.train` and the engine write (checkpoints,
history.csv, tensorboard/, summary.json, and runs.jsonl: one line per
invocation and per checkpoint, mrcnn/engine/run_record.py). Each
invocation's line carries its resolved options (`invocation_record`),
which `--weights last` reads back for the checkpoint it continues; for a
continued run also that checkpoint and the options changed since, which
`run` prints. config.json and train_args.json hold the Config and options
of the invocation that started the run, and are never overwritten. When
images were left out (--skip_bad at load time, or files that failed to
load during training), skipped.json (mrcnn/engine/skipped.py). More than
1 % of the images failing during training stops the run with a UsageError
(exit 2).
"""

import dataclasses
import json
import os

import numpy as np
from PIL import Image

import cli
from cityscapes import options as opts
from cityscapes.dataset import CityscapesDataset
from cityscapes.rasterize import CityscapesDataError
from mrcnn import files
from mrcnn.config import Config
from mrcnn.data.dataset import Dataset
from mrcnn.data.feed_failures import TooManyFailuresError
from mrcnn.engine import skipped


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked training run, before its model is built."""

    options: opts.TrainOptions
    stages: list
    classes: tuple
    root: str
    train: Dataset
    val: Dataset
    config: Config
    resume_from: str = None


def load_split(root, split, classes, annotations="auto", subset=None, seed=0, skip_bad=False,
               decode_cache=None, log=print):
    """A prepared CityscapesDataset of one split (a seeded subset of
    `subset` images when given), every image decoded once (those the
    `decode_cache` file does not remember), or UsageError for a bad folder
    or file; with skip_bad, bad images are left out (`dataset.skipped`).
    Logs one line: images, decoding, skipped files."""
    dataset = CityscapesDataset(classes)
    try:
        dataset.load_cityscapes(root, split, annotations=annotations, subset=subset, seed=seed,
                                skip_bad=skip_bad, decode_cache=decode_cache)
    except CityscapesDataError as e:
        raise cli.UsageError(f"--dataset {root}: {e}"
                             + ("" if skip_bad else " (--skip_bad leaves bad images out)"))
    except ValueError as e:  # e.g. a subset larger than the split
        flag = "--train_images" if split == "train" else "--val_images"
        raise cli.UsageError(f"{flag} {subset}: {e}")
    dataset.prepare()
    log(load_line(split, dataset))
    return dataset


def load_line(split, dataset):
    """"train: 2975 images (3 decoded in 0.2 s, 2972 known to the decode
    cache); 1 skipped: PATH (why)" """
    check = dataset.verify_report
    text = f"{split}: {len(dataset.image_ids)} images"
    if check:
        text += f" ({check['decoded']} decoded in {check['seconds']:.1f} s"
        text += f", {check['cached']} known to the decode cache)" if check["cached"] else ")"
    if dataset.skipped:
        text += "; " + skipped.summary(skipped.load_entries(split, dataset.skipped))
    return text


def build_config(o, num_classes, num_train, num_val):
    """The Config of a run from its options (UsageError for a bad value)."""
    try:
        return opts.config_class(o.dataset).from_dict(opts.config_fields(o, num_classes, num_train, num_val))
    except ValueError as e:
        raise cli.UsageError(str(e))


def prepare(o, resume_from=None, data=None, log=print):
    """Check everything and load the datasets. -> Plan (no model yet).

    data: (root, train, val) already loaded (a sweep's subsets), else they
    are loaded here from --dataset, --annotations, --train_images,
    --val_images, --seed, --skip_bad and --decode_cache (a line per split
    to `log`)."""
    opts.check(o)
    classes = opts.classes(o)
    if data is None:
        root = cli.dataset_root(o.dataset)
        seed = o.seed or 0
        train, val = (load_split(root, split, classes, o.annotations, size or None, seed,
                                 o.skip_bad, opts.decode_cache(o), log)
                      for split, size in (("train", o.train_images), ("val", o.val_images)))
    else:
        root, train, val = data
    config = build_config(o, 1 + len(classes), len(train.image_ids), len(val.image_ids))
    return Plan(o, opts.stages(o), tuple(classes), root, train, val, config, resume_from)


def initial_weights_of(plan):
    """The run's InitialWeights (COCO / ImageNet found or downloaded now)."""
    from mrcnn.engine import initial_weights

    o = plan.options
    try:
        return initial_weights.choose(o.weights, o.backbone, plan.config.NUM_CLASSES,
                                      resume_from=plan.resume_from, exclude=o.exclude,
                                      allow_partial=o.allow_partial)
    except initial_weights.WeightsError as e:
        raise cli.UsageError(f"--weights {o.weights}: {e}")


def build_model(plan):
    """The training MaskRCNN of a plan: --gpus, --mixed_precision, --seed
    set up and --weights loaded (UsageError when they do not fit)."""
    from mrcnn.engine import initial_weights
    from mrcnn.engine import run as engine

    o = plan.options
    initial = initial_weights_of(plan)
    try:
        return engine.training_model(plan.config, o.logs, initial, seed=o.seed,
                                     mixed_precision=o.mixed_precision)
    except initial_weights.WeightsError as e:
        raise cli.UsageError(f"--weights {o.weights}: {e}")
    except ValueError as e:
        raise cli.UsageError(f"--gpus {o.gpus}: {e}")


def augmentation(o):
    """The FlipCrop of --augment (None for "none")."""
    from mrcnn.data.augmentation import FlipCrop

    flip, crop = opts.augmentation(o)
    return FlipCrop(flip=flip, crop=crop, seed=o.seed) if flip or crop else None


def run_options(plan):
    """The resolved options, stages, dataset and classes of a plan (a dict)."""
    return {"options": opts.record(plan.options), "stages": [str(s) for s in plan.stages],
            "dataset_root": plan.root, "classes": list(plan.classes)}


def write_run_options(model, plan):
    """train_args.json: the resolved options, stages and dataset of the run."""
    files.write_text(os.path.join(model.log_dir, opts.RUN_RECORD),
                     json.dumps(run_options(plan), indent=2) + "\n")


def invocation_record(plan, model):
    """This invocation's fields in runs.jsonl (`run_options`); when it
    continues a run (the model's log_dir and epoch set by its weights), also
    `continues` (the checkpoint and the invocation that wrote it) and
    `changed` (options that differ from that invocation's: `opts.changes`)."""
    from mrcnn.engine.run import checkpoint_of

    info = run_options(plan)
    continued = checkpoint_of(model, model.epoch)
    if continued:
        before = opts.recorded_run(continued)
        info["continues"] = {"checkpoint": os.path.basename(continued),
                             "invocation": before.get("invocation")}
        info["changed"] = opts.changes(before.get("options", {}), plan.options)
    return info


def continuation_line(info):
    """What a continued run takes over and changes, for the log."""
    c = info["continues"]
    source = (f"invocation {c['invocation']}, which wrote it" if c["invocation"]
              else "the run's train_args.json")
    return (f"Options of {c['checkpoint']}: those of {source}; this command changes "
            f"{opts.describe_changes(info['changed'])}")


def run(plan, log=print):
    """Train a plan's stages; evaluate if asked. -> the engine's summary
    dict (also summary.json in the run folder)."""
    from mrcnn.engine import run as engine

    o = plan.options
    model = build_model(plan)
    model.run_info = invocation_record(plan, model)
    if "continues" in model.run_info:
        log(continuation_line(model.run_info))
    if not os.path.exists(os.path.join(model.log_dir, opts.RUN_RECORD)):
        write_run_options(model, plan)
    left_out = load_skipped(plan)
    skipped.append(model.log_dir, left_out)
    evaluate = None
    if o.evaluate:
        def evaluate(checkpoint):
            return evaluate_checkpoint(plan, checkpoint, o.eval_images)
    try:
        return engine.train_stages(
            model, plan.train, plan.val, plan.stages, o.lr, early_stopping=o.early_stopping,
            augmentation=augmentation(o), freeze=opts.freeze(o),
            mask_cache=opts.mask_cache(o), evaluate=evaluate, log=log, skipped=left_out)
    except TooManyFailuresError as e:
        raise cli.UsageError(f"{e} (listed in {skipped.path_of(model.log_dir)})")


def load_skipped(plan):
    """skipped.json entries of the images the plan's datasets left out."""
    return (skipped.load_entries("train", plan.train.skipped)
            + skipped.load_entries("val", plan.val.skipped))


def evaluate_checkpoint(plan, checkpoint, limit=None):
    """Val mask AP@0.5 of a checkpoint (evaluate.py's code path), and a
    picture of its first detections (val_examples.png beside it)."""
    from cityscapes import evaluator
    from mrcnn.engine.inference import inference_model

    model = inference_model(checkpoint)
    val = plan.val
    ids = list(val.image_ids[:limit] if limit else val.image_ids)
    result = evaluator.mask_ap50(model, val, ids)
    picture = os.path.join(os.path.dirname(checkpoint), "val_examples.png")
    save_examples(model, val, result["scored"][:3], picture)
    return {"checkpoint": checkpoint, "mask_ap50": result["mask_ap50"],
            "images": result["images"], "without_instances": result["without_instances"],
            "examples": picture}


def save_examples(model, dataset, image_ids, path):
    """Ground truth (left) next to detections (right), one row per image."""
    from mrcnn import visualize
    from mrcnn.data.masks import boxes_from_masks

    rows = []
    for image_id in image_ids:
        image = dataset.load_image(image_id)
        masks, class_ids = dataset.load_mask(image_id)
        boxes = boxes_from_masks(masks).numpy()
        r = model.detect([image])[0]
        rows.append(visualize.side_by_side(
            visualize.draw_instances(image, boxes, masks, class_ids, dataset.class_names),
            visualize.draw_instances(image, r["rois"], r["masks"], r["class_ids"],
                                     dataset.class_names, r["scores"])))
    if rows:
        with files.atomic_path(path) as tmp:
            Image.fromarray(np.concatenate(rows)).save(tmp, format="PNG")
