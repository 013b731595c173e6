"""MindRecord: int32 feature columns written atomically, read back as columns (a file, its shards, or a directory)."""
import os
import re
import shutil
import tempfile

import numpy as np

from ..fileio import current_umask, read_json
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
            # MindSpore writes 0600: the finished files get the mode open() would give (the umask's)
            os.chmod(os.path.join(tmp_dir, name), 0o666 & ~current_umask())
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


class MindRecordRows:
    """Random access to the rows of MindRecord data (as ``mindrecord_files`` finds it) without loading them all:
    ``read_batches(indices, ...)`` reads and decodes only the rows it is given, in that order (MindRecord's index
    locates each row, ``mindspore.dataset.MindDataset`` with a ``SubsetSampler`` fetches it). Row ``i`` is the
    ``i``-th row of ``read_mindrecord_columns``. The row count comes from the files' index, not from reading rows.

    ``dtypes``: {column: numpy dtype} for columns not read back as int32; ``check_batch(batch, path)``, where given,
    sees each batch (a {column: array} dict) and raises on bad input. ``rows_read`` counts the rows yielded so far.
    """

    def __init__(self, path, column_names, dtypes=None, check_batch=None, num_parallel_workers=2):
        import mindspore.dataset as ds

        self.path, self.files = path, mindrecord_files(path)
        self.column_names = tuple(column_names)
        self.dtypes = {name: np.dtype((dtypes or {}).get(name, np.int32)) for name in self.column_names}
        self.check_batch, self.num_parallel_workers = check_batch, num_parallel_workers
        whole = ds.MindDataset(self.files, shuffle=False)
        missing = sorted(set(self.column_names) - set(whole.get_col_names()))
        if missing:
            raise InputError(f"{path}:1: the records lack the columns {missing} (they have "
                             f"{sorted(whole.get_col_names())})")
        self.num_rows = whole.get_dataset_size()
        if self.num_rows == 0:
            raise InputError(f"{path}:1: no records")
        self.rows_read = 0

    def read_batches(self, indices, batch_size):
        """Yields tuples of ``column_names`` arrays, ``batch_size`` rows each, of the rows ``indices`` in order (its
        length a multiple of ``batch_size``)."""
        import mindspore.dataset as ds

        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) % batch_size:
            raise ValueError(f"{len(indices)} row indices are not whole batches of {batch_size}")
        if not len(indices):
            return
        if indices.min() < 0 or indices.max() >= self.num_rows:
            # MindDataset would wrap an index past the end round to the start: refuse it here
            bad = indices[(indices < 0) | (indices >= self.num_rows)][0]
            raise ValueError(f"{self.path}: row index {bad} is outside its {self.num_rows} rows")
        rows = ds.MindDataset(self.files, columns_list=list(self.column_names),
                              sampler=ds.SubsetSampler(indices.tolist()),
                              num_parallel_workers=self.num_parallel_workers)
        for batch in rows.batch(batch_size, drop_remainder=True).create_tuple_iterator(num_epochs=1,
                                                                                     output_numpy=True):
            batch = {name: array.astype(self.dtypes[name], copy=False) for name, array in zip(self.column_names,
                                                                                            batch)}
            if self.check_batch is not None:
                self.check_batch(batch, self.path)
            self.rows_read += batch_size
            yield tuple(batch[name] for name in self.column_names)

    def first_row(self):
        """Row 0 as {column: array} (shapes and dtypes of the data, without counting it as read for training)."""
        (batch,) = list(self.read_batches([0], 1))
        self.rows_read -= 1
        return {name: array[0] for name, array in zip(self.column_names, batch)}
