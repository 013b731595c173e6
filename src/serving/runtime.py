"""Running a fine-tuned model: finding and describing a checkpoint, and the three backends (checkpoint, MindIR,
ONNX), each mapping model input columns (``MODEL_INPUTS`` names, int32 ``[N, S]``) to a tuple of numpy outputs."""
import dataclasses
import glob
import logging
import os

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn

from ..checkpoint import load_weights
from ..ernie_model import load_config
from ..fileio import read_json
from ..layers import use_fused_cpu_kernels
from ..tasks.registry import TaskInfo, default_task_info, task_class
from ..trainer import predict
from .export import INPUT_NAMES, InferenceCell, graph_inputs

logger = logging.getLogger(__name__)


def find_checkpoint(path):
    """The ``.ckpt`` file given, or the one to use in a fine-tuning output folder: ``<task>-best.ckpt``, else the
    newest ``<task>-<epoch>_<step>.ckpt``."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file or folder")
    best = sorted(glob.glob(os.path.join(path, "*-best.ckpt")))
    if best:
        return best[0]
    epochs = sorted(glob.glob(os.path.join(path, "*-[0-9]*_[0-9]*.ckpt")), key=os.path.getmtime)
    if not epochs:
        raise FileNotFoundError(f"{path}: no <task>-best.ckpt or <task>-<epoch>_<step>.ckpt in this folder")
    return epochs[-1]

def trained_task_info(ckpt_file, task_type=None, num_class=None, use_crf=None, max_seq_len=None,
                      max_query_len=None, doc_stride=None):
    """The ``TaskInfo`` of a fine-tuned checkpoint: its ``task.json``, with the given settings overriding it (each
    override logged), or the task's defaults where there is no ``task.json``. A task type or label count that
    contradicts ``task.json`` is an error: the weights were trained for it."""
    folder = os.path.dirname(os.path.abspath(ckpt_file))
    task_json = os.path.join(folder, "task.json")
    if os.path.isfile(task_json):
        info = TaskInfo.from_dict(read_json(task_json), task_json)
        if task_type and task_type != info.task_type:
            raise ValueError(f"task {task_type!r} requested but {task_json} is for {info.task_type!r}")
        if num_class and info.labels and num_class != len(info.labels):
            raise ValueError(f"{num_class} labels requested but {task_json} lists {len(info.labels)}: {info.labels}")
        if use_crf is not None and task_class(info.kind).has_crf_option and bool(use_crf) != info.use_crf:
            raise ValueError(f"use_crf={bool(use_crf)} requested but {task_json} says use_crf={info.use_crf}: the "
                             f"weights were trained with{'' if info.use_crf else 'out'} a CRF")
        for name, value in (("max_seq_len", max_seq_len), ("max_query_len", max_query_len),
                            ("doc_stride", doc_stride)):
            if value and value != getattr(info, name):
                logger.info("%s %d instead of the trained %d (%s)", name, value, getattr(info, name), task_json)
                setattr(info, name, value)
        logger.info("task %s from %s: max_seq_len %d, labels %s%s", info.task_type, task_json, info.max_seq_len,
                    info.labels, ", CRF" if info.use_crf else "")
        task_class(info.kind).check_info(info, task_json)
        return info
    if not task_type:
        raise ValueError(f"{folder}: no task.json beside {os.path.basename(ckpt_file)}; give the task type "
                         f"(--task_type), and --config and --vocab_file unless ernie_config.json and vocab.txt "
                         f"are beside the checkpoint")
    info = default_task_info(task_type, max_seq_len, use_crf, max_query_len, doc_stride)
    if num_class and info.labels and num_class != len(info.labels):
        raise ValueError(f"{task_type} has {len(info.labels)} labels {info.labels}, not {num_class}; give a label "
                         f"map (--label2id_file_path) with {num_class} labels")
    logger.info("no task.json beside %s: %s defaults, max_seq_len %d", ckpt_file, task_type, info.max_seq_len)
    return info

def resolve_checkpoint(path, task_type=None, config=None, vocab_file=None, num_class=None, use_crf=None,
                       max_seq_len=None, max_query_len=None, doc_stride=None):
    """``(ckpt_file, TaskInfo, ErnieConfig)`` of a fine-tuned checkpoint file or output folder.

    ``task.json`` and ``ernie_config.json`` beside the checkpoint describe it (``trained_task_info``); the arguments
    fill what is missing and set the sequence shape to run or export with.
    """
    ckpt_file = find_checkpoint(path)
    folder = os.path.dirname(os.path.abspath(ckpt_file))
    info = trained_task_info(ckpt_file, task_type, num_class, use_crf, max_seq_len, max_query_len, doc_stride)
    info.vocab_file = vocab_file or os.path.join(folder, info.vocab_file or "vocab.txt")  # task.json's is relative
    if not os.path.isfile(info.vocab_file):
        raise FileNotFoundError(f"{info.vocab_file}: vocabulary not found; pass --vocab_file")
    config_source = config or os.path.join(folder, "ernie_config.json")
    if not config and not os.path.isfile(config_source):
        raise FileNotFoundError(f"{folder}: no ernie_config.json beside {os.path.basename(ckpt_file)}; pass --config")
    model_config = load_config(config_source)
    if model_config.compute_dtype == "bfloat16" and ms.get_context("device_target") == "CPU":
        # bf16 on CPU is a training speed-up through custom operators (src/kernels); served and exported graphs use
        # stock float32 ops, so they stay portable. The parameters are float32 either way.
        logger.info("%s: serving the bfloat16-trained model in float32", config_source)
        model_config = dataclasses.replace(model_config, compute_dtype="float32")
    model_config.check_sequence_length(info.max_seq_len, "max_seq_len" if max_seq_len else "task.json's max_seq_len")
    return ckpt_file, info, model_config

def load_task_model(task, ckpt_file, config):
    """A fresh model of ``task`` in inference mode with the checkpoint's weights; every parameter must be in it.
    Built with MindSpore's LayerNorm even after a training in this process switched the fused CPU kernel on: served
    and exported graphs use stock operators only."""
    use_fused_cpu_kernels(False)
    model = task.build_model(config)
    report = load_weights(model, ckpt_file)
    if report.missing:
        raise ValueError(f"{ckpt_file}: lacks {len(report.missing)} parameters of a {task.info.task_type} model "
                         f"(first: {report.missing[:3]}); is it a fine-tuned checkpoint of this task, with the same "
                         f"use_crf?")
    model.set_train(False)
    return model

def _run_in_batches(run_batch, columns, batch_size, fixed_batch):
    """Calls ``run_batch`` (the graph's inputs, int32 ``[b, S]`` each) on consecutive rows; pads the last batch with
    all-zero rows when the model's batch size is fixed."""
    inputs = graph_inputs(columns)
    num_rows = len(inputs[0])
    chunks = []
    for start in range(0, num_rows, batch_size):
        batch = [np.ascontiguousarray(array[start:start + batch_size], dtype=np.int32) for array in inputs]
        real_rows = len(batch[0])
        if fixed_batch and real_rows < batch_size:
            batch = [np.concatenate([b, np.zeros((batch_size - real_rows, b.shape[1]), np.int32)]) for b in batch]
        chunks.append([np.asarray(output)[:real_rows] for output in run_batch(batch)])
    return tuple(np.concatenate(parts) for parts in zip(*chunks))

class OnnxRuntimeBackend:
    """An exported ``.onnx`` on onnxruntime's CPU provider (fixed batch size: the last batch is padded)."""

    def __init__(self, path, num_threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUT_NAMES):
            raise ValueError(f"{path}: inputs {names}, expected {list(INPUT_NAMES)}; export it with export.py")
        self.batch_size = self.session.get_inputs()[0].shape[0]

    def run(self, columns):
        return _run_in_batches(lambda batch: self.session.run(None, dict(zip(INPUT_NAMES, batch))), columns,
                               self.batch_size, fixed_batch=True)

def as_numpy_tuple(outputs):
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    return [output.asnumpy() for output in outputs]

class MindIRBackend:
    """An exported ``.mindir`` loaded into a MindSpore ``GraphCell``."""

    def __init__(self, path, batch_size, fixed_batch):
        self.graph = nn.GraphCell(ms.load(path))
        self.batch_size, self.fixed_batch = batch_size, fixed_batch

    def run(self, columns):
        return _run_in_batches(lambda batch: as_numpy_tuple(self.graph(*(Tensor(b) for b in batch))), columns,
                               self.batch_size, self.fixed_batch)

class CheckpointBackend:
    """The task model built from a checkpoint, run in graph mode through the exported graph's ``InferenceCell``."""

    def __init__(self, model, batch_size):
        self.cell = InferenceCell(model)
        self.batch_size = batch_size

    def run(self, columns):
        by_graph_name = dict(zip(INPUT_NAMES, graph_inputs(columns)))
        return predict(self.cell, by_graph_name, INPUT_NAMES, self.batch_size)
