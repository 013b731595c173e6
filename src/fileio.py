"""Reading JSON with errors that name the file, and writing files atomically (a temporary name, then a rename), so
that an interrupted run never leaves a half-written output behind."""
import contextlib
import json
import os
import shutil
import tempfile

import numpy as np


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None


@contextlib.contextmanager
def replaced_atomically(path, suffix=""):
    """Yields a temporary path beside ``path``; it becomes ``path`` when the block completes, else is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _plain(value):
    """numpy scalars (metrics) -> Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_text(path, text):
    with replaced_atomically(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(obj, path):
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=1, default=_plain) + "\n")


def write_jsonl(records, path):
    with replaced_atomically(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, default=_plain) + "\n" for r in records)


def copy_atomic(source, target):
    """Copies ``source`` to ``target`` (nothing to do when they are the same file)."""
    if os.path.abspath(source) != os.path.abspath(target):
        with replaced_atomically(target) as tmp:
            shutil.copyfile(source, tmp)
