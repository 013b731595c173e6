"""Reading JSON with errors that name the file, and writing files atomically (a temporary name, then a rename), so
that an interrupted run never leaves a half-written output behind.

A temporary file is hidden (``.NAME.XXXXXXXX.partial[SUFFIX]`` beside NAME) and removed on any failure; a kill can
still leave one, so ``remove_stale_temporaries`` deletes those of an earlier run at the start of the next. A finished
file gets the permissions a plain ``open(path, "w")`` would give: those of the file it replaces, else 0666 less the
umask.
"""
import codecs
import contextlib
import errno
import json
import logging
import os
import re
import shutil
import stat
import tempfile

import numpy as np

logger = logging.getLogger(__name__)

TEMP_MARK = ".partial"

# Names of the temporaries this project (and MindSpore inside save_checkpoint) create, and only those:
# replaced_atomically's ``.NAME.XXXXXXXX.partial[.EXT]`` (MindSpore writes ``.partial.tmp`` beside a ``.partial.ckpt``),
# the same without ``.partial`` from before it had the mark (NAME always has an extension there), and the temporary
# folders in which MindRecord files and exported models are written before they are moved into place.
_STALE_FILE = re.compile(r"\.[^/]+\.[a-z0-9_]{8}\.partial(\.[A-Za-z0-9]+)?"
                         r"|\.[^/]+\.[A-Za-z0-9]+\.[a-z0-9_]{8}(\.ckpt|\.tmp|\.onnx)?")
_STALE_FOLDER = re.compile(r"\.tmp-mindrecord-[a-z0-9_]{8}|\.?tmp-export-[a-z0-9_]{8}|\.tmp-preprocess-[a-z0-9_]{8}")


def read_json(path):
    """The parsed JSON of ``path``; a UTF-8 byte order mark is allowed. Errors are ValueErrors naming file and line."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = skip + err.start
        line = raw.count(b"\n", 0, offset) + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {offset})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None


def current_umask():
    """The process umask, read without changing it where Linux shows it (os.umask alone must set it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(path):
    """The permission bits ``path`` should end with: those it has now, else what open() would create."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


class NoSpaceError(OSError):
    """A write that ran out of disk space or quota (errno ENOSPC or EDQUOT); ``str()`` is the one-line message."""

    def __str__(self):
        return self.strerror


def no_space_error(path, err):
    """The NoSpaceError for a write of ``path`` that failed with ``err``: says so and how much is free."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        free = f"{shutil.disk_usage(directory).free / 2 ** 20:.1f} MiB free in {directory}"
    except OSError:
        free = f"{directory} unreadable"
    what = "no space left on the device" if err.errno == errno.ENOSPC else "disk quota exceeded"
    return NoSpaceError(err.errno, f"{path}: {what} while writing it ({free}); the previous version, if any, "
                                   f"is unchanged and no partial file is left: free some space and run again")


def remove_quietly(path):
    """Removes ``path`` if it exists; a failure is logged, not raised, so that it cannot hide the error in hand."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.warning("%s: could not remove this temporary file: %s", path, err)


@contextlib.contextmanager
def replaced_atomically(path, suffix=""):
    """Yields a temporary path beside ``path``; it becomes ``path`` when the block completes, else is removed.

    The file is flushed to disk before the rename, so that the rename never exposes data still in the page cache.
    Running out of space raises a ``NoSpaceError`` naming ``path``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_MARK + suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, _final_mode(path))  # mkstemp creates 0600 (MindSpore's save leaves 0400)
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(err, NoSpaceError):
            raise no_space_error(path, err) from None
        raise
    finally:
        remove_quietly(tmp)


def remove_stale_temporaries(folder):
    """Deletes the temporary files and folders that a killed run left in ``folder`` (not its subfolders).

    Only names that ``replaced_atomically``, MindSpore's checkpoint writer and the MindRecord and export writers
    create are touched; each removal is logged. Call it before a run writes into ``folder``, never while another run
    writes there. Returns the removed paths.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file(follow_symlinks=False) and _STALE_FILE.fullmatch(entry.name):
            size = entry.stat(follow_symlinks=False).st_size
            os.remove(entry.path)
        elif entry.is_dir(follow_symlinks=False) and _STALE_FOLDER.fullmatch(entry.name):
            size = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(entry.path)
                       for name in names)
            shutil.rmtree(entry.path)
        else:
            continue
        logger.warning("%s: removed this leftover temporary of an interrupted run (%d bytes)", entry.path, size)
        removed.append(entry.path)
    return removed


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
