"""The exported graph and the export: MINDIR / ONNX / AIR files with a JSON sidecar, and int8 ONNX.

``InferenceCell`` is the graph that ``export.py`` writes: ``(input_ids, input_mask, token_type_id)`` int32
``[batch, seq]`` (the seed's names and order; this module is the only place that knows them) -> the task's outputs.
A CRF tagger also returns its Viterbi tags, decoded in the graph (``CRF.decode`` exports to MindIR and ONNX).
Every export has a JSON sidecar ``<model file>.json``: the ``TaskInfo`` fields plus the file's format and shapes,
with ``vocab.txt`` copied beside it, so that a predictor needs nothing else.
"""
import filecmp
import os
import shutil
import tempfile

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from ..fileio import copy_atomic, read_json, replaced_atomically, write_json
from ..tasks.base import MODEL_INPUTS
from ..tasks.registry import TaskInfo, task_class

INPUT_NAMES = ("input_ids", "input_mask", "token_type_id")
FILE_SUFFIXES = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
DYNAMIC_SHAPES = ("none", "batch", "batch_seq")


def graph_inputs(columns):
    """The exported graph's inputs, in its order, from model input columns (``MODEL_INPUTS`` names)."""
    by_graph_name = dict(zip(("input_ids", "token_type_id", "input_mask"), MODEL_INPUTS))
    return [columns[by_graph_name[name]] for name in INPUT_NAMES]


def output_names(info):
    return task_class(info.kind).output_names(info)


class InferenceCell(nn.Cell):
    """``(input_ids, input_mask, token_type_id)`` -> logits | emissions (+ CRF tags) | (start_logits, end_logits)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.decode_crf = bool(getattr(model, "use_crf", False))
        self.identity = ops.Identity()

    def construct(self, input_ids, input_mask, token_type_id):
        # Every output passes through an Identity: MindSpore's ONNX exporter gives the output name to the wrong node
        # when the last op becomes several ONNX nodes (StridedSlice -> Slice + Squeeze) or is also used inside.
        outputs = self.model(input_ids, token_type_id, input_mask)
        if self.decode_crf:
            return self.identity(outputs), self.identity(self.model.crf.decode(outputs, input_mask))
        if isinstance(outputs, tuple):
            return self.identity(outputs[0]), self.identity(outputs[1])
        return self.identity(outputs)


def output_specs(info, batch, seq):
    """Name, dtype and shape of each output of the exported graph (None: a dimension left open)."""
    shapes = {"logits": [batch, len(info.labels)], "emissions": [batch, seq, len(info.labels)], "tags": [batch, seq],
              "start_logits": [batch, seq], "end_logits": [batch, seq]}
    return [{"name": name, "dtype": "int32" if name == "tags" else "float32", "shape": shapes[name]}
            for name in output_names(info)]


def sidecar_path(model_path):
    return f"{model_path}.json"


def export_model(model, info, file_name, file_format="MINDIR", batch_size=1, dynamic_shape="none"):
    """Exports a task model (in inference mode) as ``file_name`` + ``.mindir`` / ``.onnx`` / ``.air`` with its sidecar
    and ``vocab.txt`` beside it; returns the model path.

    MindSpore cannot export one Cell instance to ONNX twice in a process: give each export a fresh model.
    ``dynamic_shape`` (MINDIR only): ``batch`` leaves the batch size open, ``batch_seq`` also the sequence length
    (not for CRF taggers, whose decoder graph is built for one length).
    """
    file_format = file_format.upper()
    if file_format not in FILE_SUFFIXES:
        raise ValueError(f"file_format {file_format!r} is not one of {', '.join(FILE_SUFFIXES)}")
    if file_format == "AIR" and ms.get_context("device_target") != "Ascend":
        raise ValueError(f"AIR export needs an Ascend device with CANN installed; this process runs on "
                         f"{ms.get_context('device_target')}. Export MINDIR (for the Ascend 310 app and MindSpore "
                         f"Lite) or ONNX instead")
    if dynamic_shape not in DYNAMIC_SHAPES:
        raise ValueError(f"dynamic_shape {dynamic_shape!r} is not one of {DYNAMIC_SHAPES}")
    if dynamic_shape != "none" and file_format != "MINDIR":
        raise ValueError(f"{file_format} export is fixed-shape only (MindSpore's ONNX exporter bakes the shapes into "
                         f"its Reshape nodes); use --dynamic_shape none, or MINDIR")
    if dynamic_shape == "batch_seq" and info.use_crf:
        raise ValueError("a CRF tagger's decoder graph is built for one sequence length: use --dynamic_shape batch")
    batch = None if dynamic_shape != "none" else batch_size
    seq = None if dynamic_shape == "batch_seq" else info.max_seq_len
    if dynamic_shape == "none":
        inputs = [Tensor(np.zeros((batch, seq), np.int32)) for _ in INPUT_NAMES]
    else:
        inputs = [Tensor(shape=[batch, seq], dtype=ms.int32) for _ in INPUT_NAMES]
    cell = InferenceCell(model)
    cell.set_train(False)

    suffix = FILE_SUFFIXES[file_format]
    path = os.path.abspath(file_name if file_name.endswith(suffix) else file_name + suffix)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    vocab_copy = os.path.join(folder, "vocab.txt")
    if os.path.exists(vocab_copy) and not filecmp.cmp(vocab_copy, info.vocab_file, shallow=False):
        raise ValueError(f"{vocab_copy} exists and differs from {info.vocab_file}; export into another folder")
    copy_atomic(info.vocab_file, vocab_copy)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-export-", dir=folder)
    try:
        tmp_path = os.path.join(tmp_dir, os.path.basename(path))
        if file_format == "ONNX":
            ms.onnx.export(cell, *inputs, file_name=tmp_path, input_names=list(INPUT_NAMES),
                           output_names=list(output_names(info)))
        else:
            ms.export(cell, *inputs, file_name=tmp_path[:-len(suffix)], file_format=file_format)
        os.chmod(tmp_path, 0o644)  # ms.export writes 0400
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    sidecar = {**info.to_dict(), "vocab_file": "vocab.txt",
               "crf_decoding": "in_graph" if info.use_crf else None,
               "file_format": file_format, "batch_size": batch, "dynamic_shape": dynamic_shape, "quantization": None,
               "inputs": [{"name": name, "dtype": "int32", "shape": [batch, seq]} for name in INPUT_NAMES],
               "outputs": output_specs(info, batch, seq)}
    write_json(sidecar, sidecar_path(path))
    return path


def onnx_quantizer():
    """``(QuantType, quantize_dynamic)`` of onnxruntime; its quantizer imports the ``onnx`` package, which the
    runtime install (requirements.txt) leaves out. ``export.py`` asks before exporting, so a missing package costs
    no export."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise ValueError(f"int8 quantization needs the onnx package, which requirements.txt does not install: "
                         f"pip install onnx ({err})") from None
    return QuantType, quantize_dynamic


def quantize_onnx(onnx_path):
    """Dynamic int8 quantization of an exported ONNX model for CPU serving (weights int8, activations quantized at
    run time; MatMul/Gemm only). Writes ``<name>.int8.onnx`` and its sidecar beside it; returns its path."""
    QuantType, quantize_dynamic = onnx_quantizer()

    output_path = os.path.abspath(onnx_path[:-len(".onnx")] + ".int8.onnx")
    sidecar = read_sidecar(onnx_path)
    sidecar["vocab_file"] = "vocab.txt"
    with replaced_atomically(output_path, suffix=".onnx") as tmp:
        quantize_dynamic(onnx_path, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    sidecar["quantization"] = "dynamic int8 (onnxruntime quantize_dynamic, QInt8 weights, MatMul/Gemm)"
    write_json(sidecar, sidecar_path(output_path))
    return output_path


def read_sidecar(model_path):
    """The export sidecar of ``model_path`` (checked as a ``TaskInfo``) with ``vocab_file`` made absolute."""
    path = sidecar_path(model_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no sidecar JSON beside {model_path}; export the model with export.py")
    sidecar = read_json(path)
    TaskInfo.from_dict(sidecar, path)
    sidecar["vocab_file"] = os.path.join(os.path.dirname(os.path.abspath(model_path)), sidecar["vocab_file"])
    return sidecar


def sidecar_info(sidecar, source):
    info = TaskInfo.from_dict(sidecar, source)
    info.vocab_file = sidecar["vocab_file"]
    return info
