"""The Keras Tuner `Tuner` of a sweep: Hyperband over Mask R-CNN trials.

    tuner = SweepTuner(hypermodel, "val_loss", max_epochs=20, factor=3,
                       directory="sweeps", project_name="fine_sgd")
    tuner.search()          # standalone or worker: runs trials; chief: serves the oracle

The oracle is Keras Tuner's Hyperband (tuning/oracle.py: its state files
written atomically). `run_trial` is this module's, because a trial here is
a `MaskRCNN` training run, not a bare Keras model:

- Hyperband continues trial `tuner/trial_id` in a new trial from
  `tuner/initial_epoch`: the new trial loads that trial's last checkpoint
  (its run folder, tuning/layout.py) and trains on to `tuner/epochs`.
- A trial interrupted by a kill is retried by the reloaded oracle; it goes
  on from its own newest checkpoint when its run folder holds one of the
  same hyperparameter values (one that reads whole: a damaged one is passed
  over with a warning, for the one before it, the parent's, or epoch 0).
- A checkpoint that cannot be written (a full disk) stops the sweep
  (`TrialStoppedError`); the trial goes on when the command runs again.
- Keras Tuner's `callbacks` (from `search(callbacks=...)`, deep-copied per
  trial) and a callback driving the Tuner's on_epoch_* / on_batch_* hooks
  go to `HyperModel.fit`.
- The continuation of a trial whose loss turned NaN / Inf ends at once
  with the worst score (Hyperband only picks one when it has too few
  others).
- More than 1 % of the images failing to load during a trial (files
  changed under the sweep, mrcnn/data/feed_failures.py) stops the sweep
  (TrialUsageError, exit 2); fewer are skipped and listed in the trial run
  folder's skipped.json.

Without KERASTUNER_* variables the tuner runs alone; with them it is the
chief (KERASTUNER_TUNER_ID contains "chief": it holds the oracle and
serves it over gRPC at KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT until
the sweep is done) or a worker (any other id) asking the chief for trials.
"""

import copy
import gc
import json
import os
import shutil
import socket
import sys
import time

import keras
import keras_tuner

from cli import UsageError
from mrcnn import files
from mrcnn.data.feed_failures import TooManyFailuresError
from mrcnn.engine import run_dir
from mrcnn.engine.callbacks import CheckpointWriteError
from tuning import layout, objectives
from tuning.callbacks import read_epochs, write_epochs
from tuning.oracle import HyperbandOracle

# A worker told to wait (the oracle has no trial until others finish) asks
# again after IDLE_STEP_S, 2 x IDLE_STEP_S, ... at most IDLE_MAX_S (one small
# gRPC call; the chief ends about that long after the last worker's trial).
IDLE_STEP_S, IDLE_MAX_S = 0.25, 2.0


class TrialUsageError(keras_tuner.errors.FatalValueError):
    """A trial's options or weights cannot be used (stops the sweep; exit 2)."""


class TrialStoppedError(keras_tuner.errors.FatalError):
    """A trial's checkpoint could not be written (a full disk): the sweep
    stops at once (exit 1), the trial left to go on from its previous
    checkpoint when the command runs again."""


class TrialCallback(keras.callbacks.Callback):
    """Drives a Tuner's on_epoch_* / on_batch_* hooks during a trial's fit."""

    def __init__(self, tuner, trial):
        super().__init__()
        self.tuner, self.trial = tuner, trial

    def on_epoch_begin(self, epoch, logs=None):
        self.tuner.on_epoch_begin(self.trial, self.model, epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self.tuner.on_batch_begin(self.trial, self.model, batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.tuner.on_batch_end(self.trial, self.model, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.tuner.on_epoch_end(self.trial, self.model, epoch, logs=logs)


def role():
    """"standalone", "chief" or "worker", from the KERASTUNER_* variables.

    UsageError when they are set only in part."""
    env = os.environ
    if "KERASTUNER_ORACLE_IP" not in env:
        return "standalone"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not env.get(v)]
    if missing:
        raise UsageError(f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} "
                                 "not: a distributed sweep needs all three")
    return "chief" if "chief" in env["KERASTUNER_TUNER_ID"] else "worker"


def resume_epochs(run, first, epochs):
    """The epochs a trial can go on from in its own run folder, newest
    first: those after `first` (and at most `epochs`) with a checkpoint and
    an epochs.jsonl line. -> list of int"""
    logged = {r["epoch"] for r in read_epochs(layout.epochs_file(run))}
    return [e for e in reversed(layout.checkpoint_epochs(run))
            if first < e <= epochs and e in logged]


def prepare_run_folder(run, values):
    """Make `run` the folder of a trial with these hyperparameter `values`:
    a folder left by other values (a trial id given out again after the
    project was restarted) is emptied first; values.json records them."""
    path = layout.values_file(run)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if json.load(f) == values:
                return
    if os.path.isdir(run):
        shutil.rmtree(run)
    files.write_text(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def record_worker(project, trial_id, tuner_id):
    """worker.json of a trial: the tuner that runs it, its host and pid."""
    record = {"tuner_id": tuner_id, "host": socket.gethostname(), "pid": os.getpid(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    files.write_text(layout.worker_file(project, trial_id), json.dumps(record, indent=2) + "\n")


class SweepTuner(keras_tuner.Tuner):
    """Hyperband (Keras Tuner's oracle) over MaskRCNNHyperModel trials.

    objective: "val_loss" | "val_ap"; max_epochs, factor, iterations:
    Hyperband's; seed: the oracle's; max_trials: stop after that many
    trials (None: the whole Hyperband schedule); max_consecutive_failed_trials:
    Keras Tuner's (a crash, not a NaN, fails a trial). kwargs: directory,
    project_name, overwrite, as keras_tuner.Tuner.
    """

    def __init__(self, hypermodel, objective, max_epochs, factor, iterations=1, seed=None,
                 max_trials=None, max_consecutive_failed_trials=3, **kwargs):
        oracle = HyperbandOracle(objective=objectives.objective(objective),
                                 max_epochs=max_epochs, factor=factor,
                                 hyperband_iterations=iterations, seed=seed,
                                 max_consecutive_failed_trials=max_consecutive_failed_trials)
        oracle.max_trials = max_trials
        self._idle_polls = 0
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)

    # ------------------------------------------------------------ state
    def _populate_initial_space(self):
        # The space is declared, not discovered by building models (a Mask
        # R-CNN takes seconds to build and COCO weights to load).
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        files.write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

    def on_search_begin(self):
        # State on disk before the first trial: a kill during it resumes it.
        self.save()

    def pre_create_trial(self):
        if self._idle_polls:
            time.sleep(min(IDLE_MAX_S, IDLE_STEP_S * self._idle_polls))
        self._idle_polls += 1

    def on_trial_begin(self, trial):
        self._idle_polls = 0

    # ----------------------------------------------------------- trials
    def _diverged_epoch(self, trial_id):
        """non_finite_epoch of a finished trial, or None."""
        metrics = self.oracle.get_trial(trial_id).metrics
        if metrics.exists("non_finite_epoch"):
            return metrics.get_last_value("non_finite_epoch")
        return None

    def run_trial(self, trial, *args, **kwargs):
        values = dict(trial.hyperparameters.values)
        epochs, first = values["tuner/epochs"], values["tuner/initial_epoch"]
        parent = values.get("tuner/trial_id")
        project = self.project_dir
        run = layout.run_dir(project, trial.trial_id)
        record_worker(project, trial.trial_id, self.tuner_id)
        objective = self.oracle.objective.name
        if parent is not None:
            diverged = self._diverged_epoch(parent)
            if diverged is not None:
                print(f"trial_{trial.trial_id}: trial_{parent}, which it continues, diverged at "
                      f"epoch {diverged:g}; not trained")
                return {objective: objectives.worst(objective), "non_finite_epoch": diverged}
        prepare_run_folder(run, values)

        keras.backend.clear_session()
        gc.collect()
        try:
            model = self.hypermodel.build(trial.hyperparameters)
        except UsageError as e:
            raise TrialUsageError(str(e)) from e
        start, source = self._starting_point(model.config.NAME, run, first, epochs, parent)
        if source:
            model.load_weights(source, by_name=True)
        model.log_dir, model.epoch = run, start
        print(f"trial_{trial.trial_id} on {self.tuner_id}: epochs {start + 1}-{epochs}"
              + (f" from {source}" if source else ""))

        callbacks = _copy_callbacks(kwargs.pop("callbacks", None))
        callbacks.append(TrialCallback(self, trial))
        try:
            return self.hypermodel.fit(trial.hyperparameters, model, *args, epochs=epochs,
                                       initial_epoch=start, callbacks=callbacks, **kwargs)
        except TooManyFailuresError as e:  # the sweep's files, not this trial's values
            raise TrialUsageError(f"trial_{trial.trial_id}: {e}") from e
        except CheckpointWriteError as e:
            raise TrialStoppedError(f"trial_{trial.trial_id}: {e}") from e

    def _starting_point(self, name, run, first, epochs, parent):
        """(epoch, checkpoint to load or None) a trial starts from: its own
        newest checkpoint that reads whole, else its parent's (Hyperband's
        continuation), else epoch 0; a damaged checkpoint passed over is
        named in a warning with what is used instead."""
        starts = {layout.checkpoint(run, name, e): e for e in resume_epochs(run, first, epochs)}
        parent_run = path = None
        if parent is not None:
            parent_run = layout.run_dir(self.project_dir, parent)
            path = layout.checkpoint(parent_run, name, first)
            if os.path.exists(path):
                starts[path] = first
        source, damaged = run_dir.readable_checkpoint(list(starts))
        for _, why in damaged:
            print(run_dir.damaged_warning(why, source or "epoch 0"), file=sys.stderr)
        if source is None:
            if path and not os.path.exists(path):
                print(f"Warning: {path} (trial {parent}, epoch {first}) is missing (workers "
                      f"without a shared --directory?): training from epoch 0 instead")
            return 0, None
        if source == path:
            rows = [r for r in read_epochs(layout.epochs_file(parent_run)) if r["epoch"] <= first]
            write_epochs(layout.epochs_file(run), rows)
        return starts[source], source

    def load_model(self, trial):
        """The training MaskRCNN of a finished trial, with its last checkpoint."""
        run = layout.run_dir(self.project_dir, trial.trial_id)
        saved = layout.checkpoint_epochs(run)
        if not saved:
            raise FileNotFoundError(f"{run}: trial {trial.trial_id} left no checkpoint")
        model = self.hypermodel.build(trial.hyperparameters)
        model.load_weights(layout.checkpoint(run, model.config.NAME, saved[-1]), by_name=True)
        return model


def _copy_callbacks(callbacks):
    try:
        return copy.deepcopy(list(callbacks or []))
    except Exception as e:
        raise keras_tuner.errors.FatalValueError(
            f"the callbacks given to search() must be deep-copyable (one copy per trial): {e}")
