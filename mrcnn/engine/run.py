"""A staged training run, for any `mrcnn.data.dataset.Dataset`.

    initial = initial_weights.choose("coco", config.BACKBONE, config.NUM_CLASSES)
    model = training_model(config, "logs", initial, seed=0)
    summary = train_stages(model, train, val, [Stage("heads", 10), Stage("all", 20, 0.1)],
                           lr=1e-3, early_stopping=3, evaluate=my_scorer)
    print(summary_line(summary))

`training_model` sets up the run's numerics and devices (seed, mixed
precision, a MirroredStrategy over config.GPU_COUNT devices), builds the
training `MaskRCNN` and loads its initial weights (engine/initial_weights.py);
a checkpoint of a run continues that run (its folder and epoch).

`train_stages` trains the stages the run has not finished (a resumed run
skips them; epochs are cumulative, as in Matterport), with early stopping on
the validation loss over all stages (`callbacks.BestEpoch`, every epoch's
checkpoint kept), then scores the best checkpoint when given an `evaluate`
function, and writes summary.json into the run folder.

Resuming: checkpoints hold the weights only (Matterport's layout), not the
optimizer's state; a continued run starts SGD momentum / Adam's moments
from zero at its first step.
"""

import contextlib
import json
import os
import time

from mrcnn import files
from mrcnn.engine import callbacks, devices, initial_weights, run_dir, schedule
from mrcnn.engine import skipped as skipped_images

SUMMARY = "summary.json"


def training_model(config, model_dir, initial=None, seed=None, mixed_precision=False):
    """The training MaskRCNN of a run, its initial weights loaded.

    initial: an `initial_weights.InitialWeights` (None: random weights).
    ValueError when config.GPU_COUNT devices are not there;
    initial_weights.WeightsError when the weights do not fit."""
    import keras

    from mrcnn.model import MaskRCNN

    if seed is not None:
        keras.utils.set_random_seed(seed)
    devices.set_mixed_precision(mixed_precision)
    strategy = devices.make_strategy(config.GPU_COUNT)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = MaskRCNN("training", config, os.path.expanduser(model_dir))
    if initial is not None:
        initial_weights.load(model, initial)
    if model.log_dir is None:
        model.set_log_dir()
    return model


def checkpoint_of(model, epoch):
    """The checkpoint of `epoch` in the model's run folder, or None."""
    if not epoch:
        return None
    path = run_dir.checkpoint_path(model.log_dir, model.config.NAME or "mrcnn", epoch)
    return path if os.path.exists(path) else None


def train_stages(model, train, val, stages, lr, early_stopping=0, augmentation=None,
                 freeze=(), mask_cache=None, extra_callbacks=(), evaluate=None, log=print,
                 skipped=()):
    """Train a model's remaining stages; evaluate; write summary.json.

    model: a training MaskRCNN (its log_dir and epoch set); stages: list of
    `schedule.Stage`; lr: the base learning rate (each stage multiplies it
    by its lr_factor); evaluate: None or checkpoint path -> dict (e.g.
    {"mask_ap50": ...}), called with the best (else the last) checkpoint;
    skipped: the images left out when loading (skipped.json entries), to
    which the summary adds those the input pipeline skipped.
    -> the summary dict. NonFiniteLossError and TooManyFailuresError
    propagate (the last good checkpoint stays)."""
    history_path = os.path.join(model.log_dir, "history.csv")
    # Rows after the checkpoint continued (an epoch killed between its row
    # and its checkpoint) are not the run's: HistoryCSV drops them too.
    history = [r for r in callbacks.read_history(history_path) if r["epoch"] <= model.epoch]
    best = callbacks.BestEpoch(early_stopping, history=history)
    start_epoch, started = model.epoch, time.time()
    if start_epoch:
        log(f"Continuing {model.log_dir} after epoch {start_epoch}")
    for stage in schedule.remaining(stages, model.epoch):
        if best.stopped:
            break
        log(f"Stage {stage}: layers {stage.layers} to epoch {stage.epochs}, "
            f"lr {lr * stage.lr_factor:g}")
        model.train(train, val, lr * stage.lr_factor, stage.epochs, stage.layers,
                    augmentation=augmentation, custom_callbacks=[best, *extra_callbacks],
                    freeze=freeze, mask_cache=mask_cache)
    summary = {
        "run": model.log_dir,
        "epochs_run": [start_epoch + 1, model.epoch] if model.epoch > start_epoch else [],
        "last_epoch": model.epoch, "seconds": round(time.time() - started, 1),
        "early_stopped": best.stopped, "best_epoch": best.best_epoch,
        "best_val_loss": None if best.best_epoch is None else best.best,
        "last_checkpoint": checkpoint_of(model, model.epoch),
        "best_checkpoint": checkpoint_of(model, best.best_epoch),
        "skipped": list(skipped) + list(model.feed_skipped),
    }
    checkpoint = summary["best_checkpoint"] or summary["last_checkpoint"]
    if evaluate is not None and checkpoint is not None:
        summary["evaluation"] = evaluate(checkpoint)
    files.write_text(os.path.join(model.log_dir, SUMMARY), json.dumps(summary, indent=2) + "\n")
    return summary


def summary_line(summary):
    """The one-line summary printed at the end of a run."""
    epochs = summary["epochs_run"]
    text = (f"Run {summary['run']}: epochs {epochs[0]}-{epochs[1]} in {summary['seconds']:.0f} s"
            if epochs else f"Run {summary['run']}: nothing left to train")
    if summary["early_stopped"]:
        text += " (early stop)"
    if summary["best_epoch"]:
        text += (f"; best epoch {summary['best_epoch']} (val loss "
                 f"{summary['best_val_loss']:.4f})")
    text += f"; last checkpoint {summary['last_checkpoint']}"
    ev = summary.get("evaluation")
    if ev:
        text += (f"; val mask AP@0.5 {ev['mask_ap50']:.3f} over {ev['images']} images "
                 f"({ev['without_instances']} without instances not scored)")
    if summary.get("skipped"):
        text += f"; {skipped_images.summary(summary['skipped'])} (listed in {skipped_images.FILE})"
    return text
