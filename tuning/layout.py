"""Where a sweep keeps its files, under Keras Tuner's project folder.

    {directory}/{project}/
      oracle.json, {tuner_id}.json   Keras Tuner's state (the oracle's and each tuner's)
      sweep.json                     the sweep's settings; a re-run must match them
      results.md, results.json       the best trials (tuning/results.py)
      trial_{id}/
        trial.json                   Keras Tuner's trial: hyperparameters, status, metrics
        worker.json                  which tuner (KERASTUNER_TUNER_ID) ran it, host, pid
        run/                         the trial's Mask R-CNN run folder (MaskRCNN.train):
          mask_rcnn_{name}_{epoch:04d}.h5   the last epoch's checkpoint (older ones pruned;
                                            the one before it kept while the trial trains)
          history.csv, tensorboard/, config.json
          values.json                the trial's hyperparameter values (tuner/* included)
          epochs.jsonl               every epoch's losses and objective, one JSON line each
          non_finite.json            when a loss turned NaN / Inf: where, and the message

Hyperband continues a trial in a new one: the new trial loads the last
checkpoint of `tuner/trial_id` from that trial's run folder, so in a
distributed sweep the workers share {directory} (NFS, a bucket mount);
a worker that cannot see that checkpoint trains the trial from epoch 0.
"""

import os
import re

from mrcnn.engine import run_dir as run_folders

_CHECKPOINT_RE = re.compile(r"mask_rcnn_[\w-]+_(\d{4})\.h5")


def project_dir(directory, project):
    return os.path.join(os.fspath(directory), project)


def trial_dir(project, trial_id):
    """Keras Tuner's folder of a trial (BaseTuner.get_trial_dir)."""
    return os.path.join(project, f"trial_{trial_id}")


def run_dir(project, trial_id):
    return os.path.join(trial_dir(project, trial_id), "run")


def checkpoint(run, name, epoch):
    """The checkpoint of `epoch` (1-based) in a run folder (Matterport's name)."""
    return run_folders.checkpoint_path(run, name, epoch)


def checkpoint_epochs(run):
    """Epochs with a checkpoint in a run folder, ascending. -> list of int"""
    if not os.path.isdir(run):
        return []
    return sorted(int(m.group(1)) for m in map(_CHECKPOINT_RE.fullmatch, os.listdir(run)) if m)


def values_file(run):
    return os.path.join(run, "values.json")


def epochs_file(run):
    return os.path.join(run, "epochs.jsonl")


def non_finite_file(run):
    return os.path.join(run, "non_finite.json")


def worker_file(project, trial_id):
    return os.path.join(trial_dir(project, trial_id), "worker.json")


def sweep_file(project):
    return os.path.join(project, "sweep.json")


def results_files(project):
    """(results.md, results.json) of a project folder."""
    return os.path.join(project, "results.md"), os.path.join(project, "results.json")
