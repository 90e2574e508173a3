"""Atomic file writes (a file is complete under its final name, or absent),
folders replaced as a whole (`staged_folder`), and JSON reads that name
the file when they fail.

The content goes to a temporary file in the same folder, is synced, then
moved onto the final path with `os.replace` (atomic on POSIX and Windows);
an interrupted write leaves any previous file untouched and no temporary
file behind.
"""

import contextlib
import json
import os
import shutil
import tempfile
import uuid


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path to write; on success it becomes `path`.
    suffix: appended to the temporary name (for writers that pick the
    format by the extension, e.g. ".mp4")."""
    folder, base = os.path.split(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{base}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def staged_folder(folder):
    """A temporary folder beside `folder` that replaces it (as a whole) when
    the block ends without an exception, and is deleted otherwise."""
    folder = os.path.abspath(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(folder) + ".partial-", dir=parent)
    try:
        yield tmp
        old = None
        if os.path.exists(folder):
            old = tempfile.mkdtemp(prefix=os.path.basename(folder) + ".old-", dir=parent)
            os.rmdir(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path, text):
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def read_json(path):
    """The JSON value stored in `path`; ValueError naming the file when it
    cannot be read or is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid JSON (nested too deeply)") from None
