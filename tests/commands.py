"""Helpers for tests that run the project's command lines, in-process
(`exit_code`) or in subprocesses (`train_cmd`, `run_train`, `ENV`)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# As a user's shell has it: train.py's own TF_CPP_MIN_LOG_LEVEL default applies.
ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def exit_code(main, argv):
    """A command's exit code: returned, or raised by its one-line usage error."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def train_cmd(*args):
    """The command line of `python train.py ARGS`."""
    return [sys.executable, os.path.join(ROOT, "train.py"), *args]


def run_train(*args, timeout=300, env=None):
    """train.py ARGS in a subprocess (ENV plus `env`). -> CompletedProcess"""
    return subprocess.run(train_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**ENV, **(env or {})}, check=False)
