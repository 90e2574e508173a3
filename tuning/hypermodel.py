"""The Mask R-CNN of a trial, as a keras_tuner.HyperModel.

    hypermodel = MaskRCNNHyperModel(space, base_options, data, objective="val_loss")
    model = hypermodel.build(hp)        # a training mrcnn.model.MaskRCNN, --weights loaded
    model.log_dir = ".../trial_0003/run"; model.epoch = 1   # the tuner's doing (tuner.py)
    metrics = hypermodel.fit(hp, model, epochs=3, initial_epoch=1, callbacks=[...])

A trial's options are the sweep's base options (cityscapes.options.resolve:
flags, --hparams, demo, defaults) updated by its hyperparameters
(spaces.options_of); they go through train.py's own checks, Config and
model building (cityscapes/trainer.py, mrcnn/engine/), so a trial trains
exactly as `train.py --hparams` with the same values would: one stage of
`options.layers` at `options.lr`, --gpus N on a MirroredStrategy.

`fit` trains from `initial_epoch` to `epochs` (cumulative, Matterport's
convention), passes Keras Tuner's `callbacks` on to Keras (their logs
carry the objective, "val_loss" or "val_ap", every epoch) and returns the
metrics of the trial's best epoch after `tuner/initial_epoch`, read back
from the run folder's epochs.jsonl, so epochs trained before an
interruption count too. A NaN / Inf loss ends the trial with the worst
score (objectives.worst) and `non_finite_epoch`; nothing is raised.
"""

import dataclasses
import json

import keras_tuner

from cityscapes import options as opts
from cityscapes import trainer
from mrcnn import files
from mrcnn.data.dataset import Dataset
from mrcnn.engine.callbacks import NonFiniteLossError
from tuning import callbacks as trial_callbacks
from tuning import layout, objectives, spaces


@dataclasses.dataclass(frozen=True)
class SweepData:
    """The datasets every trial trains and scores on (prepared, subsets)."""

    train: Dataset
    val: Dataset
    classes: tuple
    root: str


class MaskRCNNHyperModel(keras_tuner.HyperModel):
    """Builds and trains a trial's Mask R-CNN.

    space: a checked space (spaces.check_space); base: the sweep's resolved
    options (cityscapes.options.TrainOptions); data: SweepData (None on a chief, which builds nothing);
    objective: "val_loss" | "val_ap".
    """

    def __init__(self, space, base, data=None, objective="val_loss"):
        super().__init__(name="mask_rcnn")
        self.space, self.base, self.data = space, base, data
        self.objective = objectives.check(objective)

    def declare_hyperparameters(self, hp):
        spaces.declare(hp, self.space)

    def options(self, hp):
        """The train.py options of a trial: one stage of its layers (the
        epochs are Keras Tuner's). -> TrainOptions"""
        values = spaces.options_of(hp.values, opts.record(self.base))
        return opts.TrainOptions(**dict(values, schedule=None))

    def plan(self, hp):
        """trainer's Plan of a trial (checked options, the sweep's datasets, Config)."""
        if self.data is None:
            raise RuntimeError("this hypermodel has no datasets (a chief builds no models)")
        d = self.data
        return trainer.prepare(self.options(hp), data=(d.root, d.train, d.val))

    def build(self, hp):
        """A training MaskRCNN with the trial's Config and --weights loaded.

        UsageError for options or weights that cannot be used."""
        return trainer.build_model(self.plan(hp))

    def record_options(self, model, o, epochs):
        """train_args.json in the trial's run folder: the train.py options it
        trains with (the subsets' sizes and seed included), which
        --export_best hands to train.py."""
        d = self.data
        o = dataclasses.replace(o, train_images=len(d.train.image_ids),
                                val_images=len(d.val.image_ids), hparams=None, epochs=epochs)
        trainer.write_run_options(model, trainer.Plan(o, opts.stages(o), d.classes, d.root,
                                                      d.train, d.val, model.config))

    def fit(self, hp, model, *args, epochs, initial_epoch=0, callbacks=None, verbose=None,
            **kwargs):
        """Train `model` (built by `build`, its log_dir set to the trial's run
        folder) from `initial_epoch` to `epochs`. -> metrics dict: the
        objective, best_epoch, loss and val_loss of the best epoch; or the
        worst objective and non_finite_epoch."""
        if args or kwargs:
            raise TypeError("MaskRCNNHyperModel.fit takes no data arguments (the datasets "
                            f"are the hypermodel's); got {len(args)} positional and "
                            f"{sorted(kwargs)}")
        o, run = self.options(hp), model.log_dir
        model.epoch = initial_epoch
        self.record_options(model, o, epochs)
        own = []
        if self.objective == "val_ap" and initial_epoch < epochs:
            own.append(trial_callbacks.ValAP(model.config, self.data.val,
                                             self.data.val.image_ids, run, self.objective))
        own += [trial_callbacks.EpochLog(layout.epochs_file(run), initial_epoch),
                trial_callbacks.PruneCheckpoints(run)]
        try:
            if initial_epoch < epochs:
                model.train(self.data.train, self.data.val, o.lr, epochs, o.layers,
                            augmentation=trainer.augmentation(o),
                            custom_callbacks=own + list(callbacks or []),
                            freeze=opts.freeze(o), mask_cache=opts.mask_cache(o))
        except NonFiniteLossError as e:
            record_non_finite(run, e)
            print(f"Trial stopped: {e}")
            return {self.objective: objectives.worst(self.objective),
                    "non_finite_epoch": float(e.epoch)}
        first = hp.values.get("tuner/initial_epoch", initial_epoch)
        rows = [r for r in trial_callbacks.read_epochs(layout.epochs_file(run))
                if first < r["epoch"] <= epochs]
        return metrics_of(self.objective, rows)


def metrics_of(objective, rows):
    """The metrics a trial reports from its epochs.jsonl rows. -> dict"""
    best = objectives.best_row(objective, rows)
    if best is None:
        raise ValueError(f"the trial has no epoch with a finite {objective} "
                         f"(epochs {[r['epoch'] for r in rows]})")
    metrics = {objective: best[objective], "best_epoch": float(best["epoch"])}
    metrics.update({k: best[k] for k in ("loss", "val_loss") if k in best})
    return metrics


def record_non_finite(run, error):
    """non_finite.json in the run folder: epoch, step, lr, loss name, message."""
    record = {"epoch": error.epoch, "step": error.step, "lr": error.lr, "loss": error.name,
              "value": str(error.value), "message": str(error)}
    files.write_text(layout.non_finite_file(run), json.dumps(record, indent=2) + "\n")
