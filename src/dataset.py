"""Batches for training: one sampler for raw and MindRecord data, giving the same global batches on any process count.

Features live in memory as columns (``{"input_ids": int32 [N, S], ...}``), read from raw files by the task readers or
from MindRecord. An epoch's order is a permutation seeded by ``(seed, epoch)``, identical on every rank; a global batch
is ``batch_size * world_size`` consecutive examples and rank ``r`` takes the ``r``-th slice. A run on N processes
therefore sees exactly the batches of a one-process run with N times the batch size, and a resumed run can skip the
batches it has already done.

Sharded reading. Training data can instead be a row source: an object with ``num_rows`` (known without reading the
rows) and ``read_batches(indices, batch_size)`` yielding tuples of numpy column arrays for the given rows in that
order, reading only those rows (``src.data.mindrecord.MindRecordRows``). Each rank then asks the source for just the
rows of its own slices of this epoch's global batches, about 1/N of the rows, streamed instead of held in memory. The
batches are the same as from in-memory columns, so everything above still holds exactly: one-process equivalence, the
same steps per epoch on every rank (from ``num_rows``), resume. What changes is the access pattern: random reads of
single rows in a new order each epoch instead of one sequential pass.
"""
import numpy as np
import mindspore.dataset as ds
from mindspore import Tensor


def is_row_source(data):
    """Whether ``data`` is a row source (sharded reading) rather than in-memory columns."""
    return hasattr(data, "read_batches") and hasattr(data, "num_rows")


def num_examples(data):
    """Rows of in-memory columns or of a row source."""
    return data.num_rows if is_row_source(data) else len(next(iter(data.values())))


def steps_per_epoch(total_examples, batch_size, world_size=1):
    """Full global batches per epoch (the last partial batch is dropped in training and counted in the log)."""
    return total_examples // (batch_size * world_size)


def epoch_batch_indices(total_examples, batch_size, epoch, seed=0, shuffle=True, rank=0, world_size=1):
    """This rank's example indices for each full global batch of ``epoch``."""
    order = np.arange(total_examples)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(total_examples)
    global_batch = batch_size * world_size
    batches = []
    for start in range(0, steps_per_epoch(total_examples, batch_size, world_size) * global_batch, global_batch):
        batches.append(order[start + rank * batch_size:start + (rank + 1) * batch_size])
    return batches


class _ColumnBatches:
    """Random-access source for ``GeneratorDataset``: item ``i`` is the i-th batch of the selected columns."""

    def __init__(self, columns, column_names, batches):
        self.columns = [columns[name] for name in column_names]
        self.batches = batches

    def __getitem__(self, i):
        return tuple(column[self.batches[i]] for column in self.columns)

    def __len__(self):
        return len(self.batches)


def create_train_dataset(columns, column_names, batch_size, epoch, seed=0, shuffle=True, rank=0, world_size=1,
                         skip_batches=0):
    """A ``mindspore.dataset`` of one epoch of this rank's batches, starting after ``skip_batches`` batches."""
    missing = [name for name in column_names if name not in columns]
    if missing:
        raise ValueError(f"training data has no column(s) {missing}; it has {sorted(columns)}")
    batches = epoch_batch_indices(num_examples(columns), batch_size, epoch, seed, shuffle, rank, world_size)
    source = _ColumnBatches(columns, column_names, batches[skip_batches:])
    return ds.GeneratorDataset(source, column_names=list(column_names), shuffle=False)


def rank_epoch_rows(total_examples, batch_size, epoch, seed=0, shuffle=True, rank=0, world_size=1, skip_batches=0):
    """The rows this rank reads in ``epoch`` after ``skip_batches`` batches, in batch order: its share of the
    epoch's global batches (``len`` = (steps per epoch - skip_batches) x ``batch_size``)."""
    batches = epoch_batch_indices(total_examples, batch_size, epoch, seed, shuffle, rank, world_size)[skip_batches:]
    return np.concatenate(batches) if batches else np.zeros(0, np.int64)


def train_batches(data, column_names, batch_size, epoch, seed=0, shuffle=True, rank=0, world_size=1,
                  skip_batches=0):
    """This rank's training batches of ``epoch`` (tuples of Tensors in ``column_names`` order) after
    ``skip_batches``: from in-memory columns, or read from a row source (its own rows only)."""
    if not is_row_source(data):
        return create_train_dataset(data, column_names, batch_size, epoch, seed, shuffle, rank, world_size,
                                    skip_batches).create_tuple_iterator(num_epochs=1, do_copy=False)
    if tuple(column_names) != tuple(data.column_names):
        raise ValueError(f"the training step takes the columns {list(column_names)}, the row source reads "
                         f"{list(data.column_names)}")
    rows = rank_epoch_rows(data.num_rows, batch_size, epoch, seed, shuffle, rank, world_size, skip_batches)
    return (tuple(Tensor(array) for array in batch) for batch in data.read_batches(rows, batch_size))


def eval_batches(columns, column_names, batch_size):
    """Yields ``(real_rows, batch)`` in order; the last batch is padded to ``batch_size`` (one compiled shape)."""
    total = num_examples(columns)
    for start in range(0, total, batch_size):
        index = np.arange(start, min(start + batch_size, total))
        real_rows = len(index)
        if real_rows < batch_size:
            index = np.concatenate([index, np.full(batch_size - real_rows, index[0])])
        yield real_rows, tuple(columns[name][index] for name in column_names)
