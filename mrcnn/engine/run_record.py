"""A run folder's journal, runs.jsonl: every invocation that trained in it,
and which one wrote each checkpoint. Lines are only ever appended.

    n = start(log_dir, config, epoch, extra)     # MaskRCNN.train: once per model and folder
    checkpoint_written(log_dir, n, path)         # after each checkpoint (callbacks.RecordCheckpoint)
    entry = writer(checkpoint)                   # the line of the invocation that wrote it, or None

Two kinds of lines, oldest first:

    {"invocation": 2, "started": "2026-01-02T03:04:05", "start_epoch": 3, ...extra,
     "config": {Config fields}}
    {"checkpoint": "mask_rcnn_demo_0004.h5", "epoch": 4, "invocation": 2}

`extra` is what the caller adds (train.py: the options, and for a
continued run the checkpoint it continues and the options that changed).
A continued run appends to its folder's journal and rewrites nothing, so
the options of the invocation that created the folder, and of each one
since (also one that stopped before writing a checkpoint, e.g. on a NaN
loss), stay on record, and each checkpoint's Config can be found
(mrcnn/engine/inference.py). config.json is written once, by the first
invocation, and never overwritten.

A checkpoint without its line (a crash between the file and its line) is
attributed to the last invocation that started before its epoch.
"""

import datetime
import json
import os
import sys

from mrcnn import files
from mrcnn.engine import run_dir

RUNS = "runs.jsonl"
CONFIG = "config.json"


def read(log_dir):
    """The journal's lines as dicts, oldest first ([] when there is none). A
    line that is not a JSON object (cut short by a crash) is skipped with a
    warning naming the file and line."""
    path = os.path.join(log_dir, RUNS)
    if not os.path.exists(path):
        return []
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict):
                entries.append(entry)
            elif line.strip():
                print(f"Warning: {path}:{number}: not a JSON object (a line cut short?), "
                      "skipped", file=sys.stderr)
    return entries


def invocations(entries):
    """The invocation lines of a journal, by number."""
    return {e["invocation"]: e for e in entries if "checkpoint" not in e and "invocation" in e}


def start(log_dir, config, epoch, extra=None):
    """Append the line of a new invocation training in `log_dir` from
    `epoch` (its Config and `extra` fields); write config.json if the folder
    has none. -> the invocation's number (1, 2, ...)"""
    os.makedirs(log_dir, exist_ok=True)
    number = 1 + max(invocations(read(log_dir)), default=0)
    entry = {"invocation": number,
             "started": datetime.datetime.now().isoformat(timespec="seconds"),
             "start_epoch": epoch, **(extra or {}), "config": config.to_dict()}
    files.append_line(os.path.join(log_dir, RUNS), json.dumps(entry))
    first = os.path.join(log_dir, CONFIG)
    if not os.path.exists(first):
        files.write_text(first, json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return number


def checkpoint_written(log_dir, invocation, path):
    """Append the line saying that `invocation` wrote the checkpoint `path`."""
    parsed = run_dir.parse_checkpoint_path(path)
    entry = {"checkpoint": os.path.basename(path), "epoch": parsed[1] if parsed else None,
             "invocation": invocation}
    files.append_line(os.path.join(log_dir, RUNS), json.dumps(entry))


def writer(checkpoint):
    """The invocation line of the invocation that wrote `checkpoint` (the
    latest to write that file), or None when its folder has no journal or
    the journal does not know it."""
    folder, name = os.path.split(os.path.abspath(checkpoint))
    entries = read(folder)
    runs = invocations(entries)
    written = [e["invocation"] for e in entries if e.get("checkpoint") == name]
    if written:
        return runs.get(written[-1])
    parsed = run_dir.parse_checkpoint_path(checkpoint)
    before = [e for e in runs.values() if parsed and e.get("start_epoch", 0) < parsed[1]]
    return before[-1] if before else None
