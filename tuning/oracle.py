"""Keras Tuner's Hyperband oracle with its state written atomically.

The oracle saves oracle.json and each trial's trial.json whenever a trial
starts or ends; Keras Tuner truncates and rewrites them in place, so a
kill -9 at that moment leaves a half-written file and a project that no
longer reloads. Here each file goes to a temporary name and is moved into
place (mrcnn.files.write_text): a re-run finds the previous state or the
new one, whole. The algorithm is keras_tuner.oracles.HyperbandOracle's.
"""

import json
import os

import keras_tuner

from mrcnn import files


class HyperbandOracle(keras_tuner.oracles.HyperbandOracle):
    """keras_tuner.oracles.HyperbandOracle, state files written atomically."""

    def save(self):
        files.write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        files.write_text(path, json.dumps(trial.get_state()))
