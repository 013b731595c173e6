"""The Ascend 310 file layout (what ``preprocess.py`` writes and ``postprocess.py`` reads) and a Python stand-in for
the C++ app in ``ascend310_infer/`` that runs a MindIR on those files on any MindSpore device
(``python -m src.inference``, the same flags as the app).

Input file ``<task>_<k>.bin`` holds rows ``k*B .. k*B+B-1`` as raw little-endian int32 in ``00_data`` (input_ids),
``01_data`` (input_mask), ``02_data`` (token_type_id) and ``03_data`` (each row's reference: the task's
``reference_column``); result file ``<task>_<k>_<j>.bin`` holds output j of input file k.
"""
import os
import time

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn

from .export import graph_inputs, read_sidecar
from .runtime import as_numpy_tuple

META_FILE = "preprocess_meta.json"

BIN_INPUT_DIRS = ("00_data", "01_data", "02_data")  # input_ids, input_mask, token_type_id
BIN_LABEL_DIR = "03_data"


def write_bin_inputs(columns, labels, out_dir, prefix, batch_size):
    """``columns``: model input columns. Writes ``<prefix>_<k>.bin`` into 00_data (input_ids), 01_data (input_mask), 02_data (token_type_id) and
    03_data (``labels``): raw little-endian int32 rows ``k*B .. k*B+B-1``; the last file is padded with all-zero rows.
    Returns the file names in order."""
    arrays = graph_inputs(columns) + [np.asarray(labels)]
    num_rows = len(arrays[0])
    for name in BIN_INPUT_DIRS + (BIN_LABEL_DIR,):
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    names = []
    for k, start in enumerate(range(0, num_rows, batch_size)):
        name = f"{prefix}_{k}.bin"
        for folder, array in zip(BIN_INPUT_DIRS + (BIN_LABEL_DIR,), arrays):
            rows = array[start:start + batch_size]
            if len(rows) < batch_size:
                rows = np.concatenate([rows, np.zeros((batch_size - len(rows),) + rows.shape[1:], rows.dtype)])
            rows.astype("<i4").tofile(os.path.join(out_dir, folder, name))
        names.append(name)
    return names


def read_bin_outputs(result_dir, names, output_specs, num_rows):
    """The outputs the 310 app (or its stand-in) wrote for ``names``: ``<stem>_<k>.bin`` holds output k as raw
    little-endian bytes of its dtype. ``output_specs``: ``output_specs(info, None, max_seq_len)``. Returns one array
    per output with the first ``num_rows`` rows."""
    outputs = [[] for _ in output_specs]
    for name in names:
        stem = name[:-len(".bin")]
        for k, spec in enumerate(output_specs):
            path = os.path.join(result_dir, f"{stem}_{k}.bin")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: result file missing (did inference run on every input file?)")
            values = np.fromfile(path, dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
            trailing = list(spec["shape"][1:])
            if values.size % int(np.prod(trailing)):
                raise ValueError(f"{path}: {values.size} values do not fit output {spec['name']} of shape "
                                 f"{spec['shape']}")
            outputs[k].append(values.reshape([-1] + trailing))
    return tuple(np.concatenate(parts)[:num_rows] for parts in outputs)


def _input_shape(declared, num_values, path):
    """The shape of an input file's rows: the model's declared shape, with an open batch taken from the file size."""
    batch, seq = declared
    if seq is None:
        return [1, num_values]
    if num_values % seq or (batch is not None and num_values != batch * seq):
        raise ValueError(f"{path}: {num_values} int32 values do not fit the model input shape {declared}")
    return [num_values // seq, seq]


def run_mindir_on_bins(mindir_path, input_dirs, result_path):
    """What ``ascend310_infer/out/main`` does, on CPU: runs the MindIR on every file of ``input_dirs`` (sorted by
    name; the same name in each) and writes ``result_path/<stem>_<k>.bin``. Returns the mean latency in ms."""
    sidecar = read_sidecar(mindir_path)
    graph = nn.GraphCell(ms.load(mindir_path))
    names = sorted(os.listdir(input_dirs[0]))
    if not names:
        raise ValueError(f"{input_dirs[0]}: no input files")
    os.makedirs(result_path, exist_ok=True)
    latencies = []
    for name in names:
        arrays = []
        for folder, spec in zip(input_dirs, sidecar["inputs"]):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: missing (every input folder needs a file named like {input_dirs[0]})")
            values = np.fromfile(path, dtype="<i4")
            arrays.append(values.reshape(_input_shape(spec["shape"], values.size, path)))
        started = time.perf_counter()
        outputs = as_numpy_tuple(graph(*(Tensor(a) for a in arrays)))
        latencies.append((time.perf_counter() - started) * 1000)
        for k, output in enumerate(outputs):
            target = os.path.join(result_path, f"{name[:-len('.bin')]}_{k}.bin")
            output.astype(output.dtype.newbyteorder("<"), copy=False).tofile(f"{target}.tmp")
            os.replace(f"{target}.tmp", target)
    return float(np.mean(latencies))
