"""Atomic file writes (a file is complete under its final name, or absent),
appends of whole lines, and JSON reads that name the file when they fail
(folders replaced as a whole: `mrcnn/staging.py`).

The content goes to a temporary file in the same folder, is synced, then
moved onto the final path with `os.replace` (atomic on POSIX and Windows);
an interrupted write leaves any previous file untouched and no temporary
file behind, except when the process is killed outright (SIGKILL, a power
cut): `leftover_temp_files` finds those, for the folder's owner to remove.
`append_line` adds one line to a log (O_APPEND, one write, synced): what
was there before is never rewritten, and a line cut short by a crash is
ended so that the next one starts on a line of its own.
"""

import contextlib
import json
import os
import re
import uuid

_TEMP_RE = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


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


def leftover_temp_files(folder):
    """The temporary files `atomic_path` left in `folder` (their writer was
    killed before it could finish or clean up). -> sorted paths"""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if _TEMP_RE.fullmatch(n))


def write_text(path, text):
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def append_line(path, text):
    """Append `text` and a newline to the file at `path` (created if absent)."""
    data = (text + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":  # the end of a line cut short
                    data = b"\n" + data
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


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
