"""skipped.json: the images a run left out, and why (nothing is lost silently).

    skipped.append(run_folder, [{"path": ..., "reason": ..., "stage": "load", "split": "train"}])
    print(skipped.summary(entries))   # "2 images skipped (1 at load time, 1 during training): ..."

A folder's skipped.json is a list of entries, appended to by every
invocation of a run (each entry stamped with the time it was written),
never rewritten without them:

    {"path", "reason", "stage", "split", "time", ["times"]}

stage "load": found bad by the load-time checks and left out with
--skip_bad (a header or a full decode, mrcnn/data/image_check.py); "feed":
failed to load during training and skipped by the input pipeline
(mrcnn/data/feed_failures.py), `times` counting how often. A folder
without skipped.json had nothing skipped.
"""

import json
import os
import time

from mrcnn import files

FILE = "skipped.json"
# Files the summary line names (then a count).
_NAMED = 3


def path_of(folder):
    return os.path.join(folder, FILE)


def read(folder):
    """The entries of a folder's skipped.json ([] when there is none)."""
    path = path_of(folder)
    return files.read_json(path) if os.path.exists(path) else []


def append(folder, entries):
    """Add entries (dicts with path, reason, stage, split) to the folder's
    skipped.json, atomically, stamped with the time. -> the file, or None
    when there was nothing to add."""
    if not entries:
        return None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    path = path_of(folder)
    records = read(folder) + [{**e, "time": e.get("time", stamp)} for e in entries]
    files.write_text(path, json.dumps(records, indent=2) + "\n")
    return path


def load_entries(split, skipped):
    """Entries of images a dataset left out when loading: `skipped` is
    [(path, reason)] (Dataset.skipped)."""
    return [{"path": p, "reason": r, "stage": "load", "split": split} for p, r in skipped]


def summary(entries):
    """One line: how many images were skipped, when, and the first files."""
    if not entries:
        return ""
    load = sum(e["stage"] == "load" for e in entries)
    when = [f"{load} at load time" if load else "",
            f"{len(entries) - load} during training" if len(entries) > load else ""]
    named = ", ".join(f"{e['path']} ({e['reason']})" for e in entries[:_NAMED])
    more = f" and {len(entries) - _NAMED} more" if len(entries) > _NAMED else ""
    return (f"{len(entries)} image{'s' if len(entries) != 1 else ''} skipped "
            f"({', '.join(w for w in when if w)}): {named}{more}")
