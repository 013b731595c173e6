"""MindRecord: int32 feature columns written atomically, read back as columns (a file, its shards, or a directory)."""
import os
import re
import shutil
import tempfile

import numpy as np

from ..fileio import read_json
from .common import InputError


def write_mindrecord(columns, path, shard_num=1):
    """Writes int32 columns ([N, S] -> fields of shape [-1], [N] -> scalar fields) to MindRecord.

    A MindRecord file stores its own name, so the files are written under their final names in a temporary folder
    beside ``path`` and moved into place when complete. ``shard_num`` > 1 writes ``path0``, ``path1``, ...
    """
    from mindspore.mindrecord import FileWriter  # importing mindspore takes seconds; the readers do not need it

    arrays = {name: np.asarray(column) for name, column in columns.items()}
    num_rows = {len(a) for a in arrays.values()}
    if len(num_rows) != 1 or 0 in num_rows:
        shapes = {name: array.shape for name, array in arrays.items()}
        raise ValueError(f"columns must be non-empty and of equal length, got {shapes}")
    schema = {}
    for name, array in arrays.items():
        if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"column {name!r}: expected a 1-D or 2-D integer array, got {array.dtype} {array.shape}")
        arrays[name] = array.astype(np.int32)
        schema[name] = {"type": "int32", "shape": [-1]} if array.ndim == 2 else {"type": "int32"}
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-mindrecord-", dir=out_dir)
    try:
        writer = FileWriter(os.path.join(tmp_dir, os.path.basename(path)), shard_num=shard_num, overwrite=True)
        writer.add_schema(schema, "ernie_finetune")
        total = num_rows.pop()
        for start in range(0, total, 1000):
            writer.write_raw_data([{name: array[i] for name, array in arrays.items()}
                                   for i in range(start, min(start + 1000, total))])
        writer.commit()
        for name in sorted(os.listdir(tmp_dir), key=lambda n: n.endswith(".db")):  # data files first, then indexes
            os.replace(os.path.join(tmp_dir, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def check_schema(schema_path, columns, source):
    """Raises InputError when ``columns`` lack one that the schema JSON (``{"columns": [...]}`` or names) lists."""
    schema = read_json(schema_path)
    missing = sorted(set(schema.get("columns", schema)) - set(columns))
    if missing:
        raise InputError(f"{source}: lacks the columns {missing} named in {schema_path}")


def mindrecord_files(path):
    """The data files of a MindRecord file, its shards (``path0``, ``path1``...) or a directory of them."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path)
                       if ".mindrecord" in n and not n.endswith(".db") and not n.startswith("."))
    elif os.path.isfile(path):
        return [path]
    else:
        pattern = re.compile(re.escape(os.path.basename(path)) + r"[0-9]+")
        folder = os.path.dirname(path) or "."
        files = sorted((os.path.join(folder, n) for n in os.listdir(folder) if pattern.fullmatch(n)),
                       key=lambda f: int(f[len(path):])) if os.path.isdir(folder) else []
    if not files:
        raise FileNotFoundError(f"{path}: no MindRecord file (or shards {path}0, {path}1 ...) found")
    return files


def read_mindrecord_columns(path):
    """All rows, in file order, of MindRecord data (a file, the shards ``path0``, ``path1``... that
    ``write_mindrecord`` writes, or a directory of them) as int32 columns."""
    from mindspore.mindrecord import FileReader

    files = mindrecord_files(path)
    try:
        reader = FileReader(files, num_consumer=1)
    except (RuntimeError, ValueError) as err:  # MindSpore's message names its index file, not what is wrong
        missing_index = [f"{file}.db" for file in files if not os.path.isfile(f"{file}.db")]
        reason = f"its index file {missing_index[0]} is missing" if missing_index else \
            f"not a MindRecord file, or damaged ({str(err).splitlines()[0][:120]})"
        raise InputError(f"{files[0]}: cannot be read as MindRecord: {reason}") from None
    try:
        rows = list(reader.get_next())
    finally:
        reader.close()
    if not rows:
        raise InputError(f"{path}:1: no records")
    # MindRecord hands scalar int32 fields back as int64; every column was written as int32
    return {name: np.stack([np.asarray(row[name]) for row in rows]).astype(np.int32) for name in rows[0]}
