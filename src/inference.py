"""Inference with fine-tuned ERNIE models: the exported graph, export, runtimes, and raw text in / answers out.

* ``InferenceCell`` is the graph that ``export.py`` writes: ``(input_ids, input_mask, token_type_id)`` int32
  ``[batch, seq]`` (the seed's input order) -> the task's outputs (``output_names``). A CRF tagger also returns its
  Viterbi tags, decoded in the graph (``CRF.decode`` exports to MindIR and ONNX).
* Every export has a JSON sidecar ``<model file>.json`` (task, labels, shapes, vocabulary copied beside it), so that
  a predictor needs nothing else; a fine-tuned checkpoint is described by ``task.json`` and ``ernie_config.json``,
  which ``src/finetune.py`` writes beside it.
* ``Predictor.from_path`` runs a ``.mindir`` (MindSpore ``GraphCell``), an ``.onnx`` (onnxruntime) or a checkpoint
  (MindSpore) on raw text. Texts longer than the model's sequence length are cut into overlapping windows, never
  truncated: classification averages the windows' probabilities, NER takes each token's tag from the window where
  it has the most context, MRC uses the reader's own windows. Entity and answer offsets index the original text.
* The Ascend-310 file layout (``write_bin_inputs`` / ``read_bin_outputs``) and a Python stand-in for the C++ app
  (``python -m src.inference --mindir_path ... --input0_path ...``, same flags) that runs a MindIR on those files.
"""
import argparse
import filecmp
import glob
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from .checkpoint import load_weights
from .ernie_model import load_config
from .fileio import copy_atomic, read_json, replaced_atomically, write_json
from .assessment_method import softmax
from .finetune_task_reader import entities_from_tags, pad_rows
from .heads import ErnieForQuestionAnswering, ErnieForSequenceClassification, ErnieForTokenClassification
from .mrc import MrcExample, max_context_windows, sliding_windows, convert_mrc_examples, extract_answers
from .tasks import TASKS, label_names
from .tokenizer import ErnieTokenizer
from .runtime import init_runtime
from .trainer import predict

logger = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "input_mask", "token_type_id")
FILE_SUFFIXES = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
DYNAMIC_SHAPES = ("none", "batch", "batch_seq")
REQUIRED_FIELDS = {"classification": ("text",), "ner": ("text",), "mrc": ("context", "question")}


def output_names(kind, use_crf=False):
    if kind == "classification":
        return ("logits",)
    if kind == "ner":
        return ("emissions", "tags") if use_crf else ("emissions",)
    return ("start_logits", "end_logits")


@dataclass
class TaskInfo:
    """What running a model needs besides its weights (the fields of ``task.json``)."""
    task_type: str
    kind: str
    labels: list
    max_seq_len: int
    vocab_file: str
    use_crf: bool = False
    max_query_len: int = None
    doc_stride: int = None

    @property
    def output_names(self):
        return output_names(self.kind, self.use_crf)

    @classmethod
    def from_dict(cls, values, source):
        missing = [k for k in ("task_type", "kind", "max_seq_len") if values.get(k) is None]
        if missing:
            raise ValueError(f"{source}: missing {missing}")
        if values["task_type"] not in TASKS:
            raise ValueError(f"{source}: unknown task_type {values['task_type']!r} (known: {', '.join(TASKS)})")
        kind = values["kind"]
        if kind != TASKS[values["task_type"]].kind:
            raise ValueError(f"{source}: kind {kind!r} does not match task {values['task_type']!r}")
        labels = list(values.get("labels") or [])
        if kind != "mrc" and not labels:
            raise ValueError(f"{source}: a {kind} task needs its label list ('labels')")
        if kind == "mrc" and not (values.get("max_query_len") and values.get("doc_stride")):
            raise ValueError(f"{source}: an MRC task needs max_query_len and doc_stride")
        return cls(values["task_type"], kind, labels, int(values["max_seq_len"]), values.get("vocab_file") or "",
                   bool(values.get("use_crf")), values.get("max_query_len"), values.get("doc_stride"))


# ---------------------------------------------------------------------------------------------------------------
# Fine-tuned checkpoints


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


def resolve_checkpoint(path, task_type=None, config=None, vocab_file=None, num_class=None, use_crf=None,
                       max_seq_len=None, max_query_len=None, doc_stride=None):
    """``(ckpt_file, TaskInfo, ErnieConfig)`` of a fine-tuned checkpoint file or output folder.

    ``task.json`` and ``ernie_config.json`` beside the checkpoint describe it; the arguments fill what is missing
    (a checkpoint without ``task.json`` needs ``task_type``, and the task's default labels are used) and set the
    sequence shape to run or export with. An argument contradicting ``task.json`` is an error.
    """
    ckpt_file = find_checkpoint(path)
    folder = os.path.dirname(os.path.abspath(ckpt_file))
    task_json = os.path.join(folder, "task.json")
    if os.path.isfile(task_json):
        info = TaskInfo.from_dict(read_json(task_json), task_json)
        if task_type and task_type != info.task_type:
            raise ValueError(f"task {task_type!r} requested but {task_json} is for {info.task_type!r}")
        if use_crf is not None and info.kind == "ner" and bool(use_crf) != info.use_crf:
            raise ValueError(f"use_crf={bool(use_crf)} requested but {task_json} says use_crf={info.use_crf}")
        if num_class and info.kind != "mrc" and num_class != len(info.labels):
            raise ValueError(f"{num_class} labels requested but {task_json} lists {len(info.labels)}: {info.labels}")
    else:
        if not task_type:
            raise ValueError(f"{folder}: no task.json beside {os.path.basename(ckpt_file)}; give the task type "
                             f"(--task_type), and --config and --vocab_file unless ernie_config.json and vocab.txt "
                             f"are beside the checkpoint")
        spec = TASKS[task_type]
        labels = label_names(spec.label_map)
        if num_class and spec.kind != "mrc" and num_class != len(labels):
            if spec.kind != "classification":
                raise ValueError(f"{task_type} has {len(labels)} labels {labels}, not {num_class}")
            logger.warning("%d labels instead of %s's %d: naming them 0..%d", num_class, task_type, len(labels),
                           num_class - 1)
            labels = [str(i) for i in range(num_class)]
        info = TaskInfo(task_type, spec.kind, labels, spec.max_seq_len, "", bool(use_crf) and spec.kind == "ner",
                        spec.max_query_len or None, spec.doc_stride or None)
    info.max_seq_len = max_seq_len or info.max_seq_len
    if info.kind == "mrc":
        info.max_query_len = max_query_len or info.max_query_len
        info.doc_stride = doc_stride or info.doc_stride
    info.vocab_file = vocab_file or os.path.join(folder, info.vocab_file or "vocab.txt")  # task.json's is relative
    if not os.path.isfile(info.vocab_file):
        raise FileNotFoundError(f"{info.vocab_file}: vocabulary not found; pass --vocab_file")
    config_source = config or os.path.join(folder, "ernie_config.json")
    if not config and not os.path.isfile(config_source):
        raise FileNotFoundError(f"{folder}: no ernie_config.json beside {os.path.basename(ckpt_file)}; pass --config")
    model_config = load_config(config_source)
    if info.max_seq_len > model_config.max_position_embeddings:
        raise ValueError(f"max_seq_len {info.max_seq_len} exceeds the model's {model_config.max_position_embeddings} "
                         f"position embeddings")
    return ckpt_file, info, model_config


def build_task_model(info, config):
    if info.kind == "classification":
        return ErnieForSequenceClassification(config, len(info.labels))
    if info.kind == "ner":
        return ErnieForTokenClassification(config, len(info.labels), use_crf=info.use_crf)
    return ErnieForQuestionAnswering(config)


def load_task_model(ckpt_file, info, config):
    """A fresh task model in inference mode with the checkpoint's weights; every parameter must be in it."""
    model = build_task_model(info, config)
    report = load_weights(model, ckpt_file)
    if report.missing:
        raise ValueError(f"{ckpt_file}: lacks {len(report.missing)} parameters of a {info.task_type} model "
                         f"(first: {report.missing[:3]}); is it a fine-tuned checkpoint of this task, with the same "
                         f"use_crf?")
    model.set_train(False)
    return model


# ---------------------------------------------------------------------------------------------------------------
# The exported graph and the export


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
            for name in info.output_names]


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
    tmp_dir = tempfile.mkdtemp(prefix="tmp-export-", dir=folder)
    try:
        tmp_path = os.path.join(tmp_dir, os.path.basename(path))
        if file_format == "ONNX":
            ms.onnx.export(cell, *inputs, file_name=tmp_path, input_names=list(INPUT_NAMES),
                           output_names=list(info.output_names))
        else:
            ms.export(cell, *inputs, file_name=tmp_path[:-len(suffix)], file_format=file_format)
        os.chmod(tmp_path, 0o644)  # ms.export writes 0400
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    sidecar = {
        "task_type": info.task_type, "kind": info.kind, "labels": info.labels, "max_seq_len": info.max_seq_len,
        "max_query_len": info.max_query_len, "doc_stride": info.doc_stride, "use_crf": info.use_crf,
        "crf_decoding": "in_graph" if info.use_crf else None, "vocab_file": "vocab.txt",
        "file_format": file_format, "batch_size": batch, "dynamic_shape": dynamic_shape, "quantization": None,
        "inputs": [{"name": name, "dtype": "int32", "shape": [batch, seq]} for name in INPUT_NAMES],
        "outputs": output_specs(info, batch, seq),
    }
    write_json(sidecar, sidecar_path(path))
    return path


def quantize_onnx(onnx_path):
    """Dynamic int8 quantization of an exported ONNX model for CPU serving (weights int8, activations quantized at
    run time; MatMul/Gemm only). Writes ``<name>.int8.onnx`` and its sidecar beside it; returns its path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    output_path = os.path.abspath(onnx_path[:-len(".onnx")] + ".int8.onnx")
    sidecar = read_json(sidecar_path(onnx_path))
    TaskInfo.from_dict(sidecar, sidecar_path(onnx_path))
    with replaced_atomically(output_path, suffix=".onnx") as tmp:
        quantize_dynamic(onnx_path, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    sidecar["quantization"] = "dynamic int8 (onnxruntime quantize_dynamic, QInt8 weights, MatMul/Gemm)"
    write_json(sidecar, sidecar_path(output_path))
    return output_path


def read_sidecar(model_path):
    """The export sidecar of ``model_path`` with ``vocab_file`` made absolute."""
    path = sidecar_path(model_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no sidecar JSON beside {model_path}; export the model with export.py")
    sidecar = read_json(path)
    TaskInfo.from_dict(sidecar, path)
    sidecar["vocab_file"] = os.path.join(os.path.dirname(os.path.abspath(model_path)), sidecar["vocab_file"])
    return sidecar


# ---------------------------------------------------------------------------------------------------------------
# Runtimes: each maps columns {input name: int32 [N, S]} to a tuple of numpy outputs with N rows.


def _run_in_batches(run_batch, columns, batch_size, fixed_batch):
    """Calls ``run_batch(list of 3 int32 [b, S])`` on consecutive rows; pads the last batch with all-zero rows
    when the model's batch size is fixed."""
    num_rows = len(columns[INPUT_NAMES[0]])
    chunks = []
    for start in range(0, num_rows, batch_size):
        batch = [np.ascontiguousarray(columns[name][start:start + batch_size], dtype=np.int32) for name in INPUT_NAMES]
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


def _as_numpy_tuple(outputs):
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    return [output.asnumpy() for output in outputs]


class MindIRBackend:
    """An exported ``.mindir`` loaded into a MindSpore ``GraphCell``."""

    def __init__(self, path, batch_size, fixed_batch):
        self.graph = nn.GraphCell(ms.load(path))
        self.batch_size, self.fixed_batch = batch_size, fixed_batch

    def run(self, columns):
        return _run_in_batches(lambda batch: _as_numpy_tuple(self.graph(*(Tensor(b) for b in batch))), columns,
                               self.batch_size, self.fixed_batch)


class CheckpointBackend:
    """The task model built from a checkpoint, run in graph mode through the exported graph's ``InferenceCell``."""

    def __init__(self, model, batch_size):
        self.cell = InferenceCell(model)
        self.batch_size = batch_size

    def run(self, columns):
        return predict(self.cell, columns, INPUT_NAMES, self.batch_size)


# ---------------------------------------------------------------------------------------------------------------
# Raw text -> windows -> outputs -> answers


class Predictor:
    """Raw text in, task answers out (``predict(records)``); see ``from_path``.

    Records are dicts: ``{"text", "text_b" (optional)}`` for classification, ``{"text"}`` for NER, ``{"context",
    "question"}`` for MRC. ``stride`` is how far consecutive windows of a long text move (tokens; default half a
    window for classification and NER, the export's ``doc_stride`` for MRC).
    """

    def __init__(self, info, backend, stride=None, n_best_size=20, max_answer_len=100):
        self.info, self.backend = info, backend
        self.tokenizer = ErnieTokenizer(info.vocab_file)
        self.stride = stride
        self.n_best_size, self.max_answer_len = n_best_size, max_answer_len
        self._char_ids = {}

    @classmethod
    def from_path(cls, path, batch_size=8, num_threads=None, device_target="auto", stride=None, n_best_size=20,
                  max_answer_len=100, **checkpoint_options):
        """``path``: an exported ``.onnx`` or ``.mindir`` (with its sidecar), or a fine-tuned ``.ckpt`` / output folder
        (``checkpoint_options``: ``resolve_checkpoint``'s arguments). ``batch_size`` applies where the model's
        batch is not fixed; ``num_threads`` sets onnxruntime's intra-op threads."""
        options = dict(stride=stride, n_best_size=n_best_size, max_answer_len=max_answer_len)
        if path.endswith((".onnx", ".mindir")):
            given = sorted(k for k, v in checkpoint_options.items() if v is not None and k != "task_type")
            if given:
                raise ValueError(f"{given} describe a checkpoint; an exported model is described by its sidecar")
        if path.endswith(".onnx"):
            sidecar = read_sidecar(path)
            return cls(TaskInfo.from_dict(sidecar, sidecar_path(path)), OnnxRuntimeBackend(path, num_threads),
                       **options)
        if path.endswith(".mindir"):
            sidecar = read_sidecar(path)
            init_runtime(device_target)
            fixed = sidecar["batch_size"] is not None
            backend = MindIRBackend(path, sidecar["batch_size"] if fixed else batch_size, fixed)
            return cls(TaskInfo.from_dict(sidecar, sidecar_path(path)), backend, **options)
        ckpt_file, info, config = resolve_checkpoint(path, **checkpoint_options)
        init_runtime(device_target)
        return cls(info, CheckpointBackend(load_task_model(ckpt_file, info, config), batch_size), **options)

    def predict(self, records):
        """One result dict per record, in order."""
        for i, record in enumerate(records):
            missing = [k for k in REQUIRED_FIELDS[self.info.kind] if not isinstance(record.get(k), str)]
            if missing:
                raise ValueError(f"record {i}: a {self.info.task_type} input needs the text field(s) {missing}")
        if not records:
            return []
        if self.info.kind == "classification":
            return self._classify(records)
        if self.info.kind == "ner":
            return self._tag(records)
        return self._answer(records)

    def _window_stride(self, window_len):
        return self.stride or max(window_len // 2, 1)

    def _classify(self, records):
        tok, max_seq_len = self.tokenizer, self.info.max_seq_len
        rows, segments, owners, notes = [], [], [], []
        for index, record in enumerate(records):
            ids_a = tok.convert_tokens_to_ids(tok.tokenize(record["text"]))
            ids_b = tok.convert_tokens_to_ids(tok.tokenize(record["text_b"])) if record.get("text_b") is not None \
                else None
            note = {}
            if ids_b is None:
                window_len, tail, tail_segments = max_seq_len - 2, [tok.sep_token_id], [0]
            else:
                # the first text is windowed; the second rides along whole, or cut to half the sequence if it is long
                if len(ids_a) + len(ids_b) > max_seq_len - 3 and len(ids_b) > (max_seq_len - 3) // 2:
                    ids_b = ids_b[:(max_seq_len - 3) // 2]
                    note["text_b_truncated"] = True
                window_len = max_seq_len - 3 - len(ids_b)
                tail, tail_segments = [tok.sep_token_id, *ids_b, tok.sep_token_id], [0] + [1] * (len(ids_b) + 1)
            for start, length in sliding_windows(len(ids_a), window_len, self._window_stride(window_len)):
                rows.append([tok.cls_token_id, *ids_a[start:start + length], *tail])
                segments.append([0] * (length + 1) + tail_segments)
                owners.append(index)
            notes.append(note)
        (logits,) = self.backend.run(self._columns(rows, segments))
        probabilities = softmax(logits.astype(np.float64))
        owners = np.asarray(owners)
        results = []
        for index, note in enumerate(notes):
            mean = probabilities[owners == index].mean(axis=0)
            results.append({"label": self.info.labels[int(mean.argmax())],
                            "probabilities": dict(zip(self.info.labels, map(float, mean))),
                            "windows": int((owners == index).sum()), **note})
        return results

    def _char_token_ids(self, char):
        """Token ids of one character tokenized alone, as the NER training data is (``convert_ner_examples``)."""
        if char not in self._char_ids:
            self._char_ids[char] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(char))
        return self._char_ids[char]

    def _tag(self, records):
        tok = self.tokenizer
        window_len = self.info.max_seq_len - 2
        stride = self._window_stride(window_len)
        rows, texts = [], []
        for record in records:
            chars = list(record["text"])
            token_ids, token_chars = [], []
            for char_index, char in enumerate(chars):
                ids = self._char_token_ids(char)
                token_ids += ids
                token_chars += [char_index] * len(ids)
            windows = sliding_windows(len(token_ids), window_len, stride)
            first_row = len(rows)
            for start, length in windows:
                rows.append([tok.cls_token_id, *token_ids[start:start + length], tok.sep_token_id])
            texts.append((chars, token_chars, windows, first_row))
        outputs = self.backend.run(self._columns(rows, [[0] * len(row) for row in rows]))
        token_tags = outputs[1] if self.info.use_crf else outputs[0].argmax(-1)
        results = []
        for chars, token_chars, windows, first_row in texts:
            best = max_context_windows(windows, len(token_chars))
            tags = ["O"] * len(chars)
            for i, char_index in enumerate(token_chars):
                if i == 0 or token_chars[i - 1] != char_index:  # a char takes the tag of its first token
                    start = windows[best[i]][0]
                    tags[char_index] = self.info.labels[int(token_tags[first_row + best[i], i - start + 1])]
            text = "".join(chars)
            entities = [{"type": kind, "start": start, "end": end, "text": text[start:end]}
                        for kind, start, end in entities_from_tags(chars, tags)]
            results.append({"entities": entities, "windows": len(windows)})
        return results

    def _answer(self, records):
        info = self.info
        examples = [MrcExample(str(i), r["question"], r["context"], []) for i, r in enumerate(records)]
        columns, features = convert_mrc_examples(examples, self.tokenizer, info.max_seq_len, info.max_query_len,
                                                 self.stride or info.doc_stride, is_training=False)
        start_logits, end_logits = self.backend.run(model_columns(columns))
        _, nbest = extract_answers(examples, features, start_logits, end_logits, self.n_best_size,
                                   self.max_answer_len)
        windows = np.bincount([f.example_index for f in features], minlength=len(examples))
        results = []
        for example in examples:
            best = nbest[example.qas_id][0]
            results.append({"answer": best["text"], "start": best["start"], "end": best["end"],
                            "probability": best["probability"], "windows": int(windows[int(example.qas_id)])})
        return results

    def _columns(self, rows, segments):
        max_seq_len = self.info.max_seq_len
        return {"input_ids": pad_rows(rows, max_seq_len),
                "input_mask": pad_rows([[1] * len(r) for r in rows], max_seq_len),
                "token_type_id": pad_rows(segments, max_seq_len)}


# ---------------------------------------------------------------------------------------------------------------
# Scoring a labelled data file (the 310 chain's postprocess, the int8 accuracy check)


def load_eval_data(info, data_file, dataset_format="raw", eval_json_path="", n_best_size=20, max_answer_len=100):
    """``(task, data)``: the fine-tuning task object of ``src/finetune.py`` and the features it evaluates, built for
    this model's labels and shapes."""
    from .finetune import TASK_KINDS, build_parser  # the training driver; not needed to serve predictions

    argv = ["--task_type", info.task_type, "--max_seq_len", str(info.max_seq_len), "--dataset_format", dataset_format,
            "--use_crf", str(info.use_crf).lower(), "--eval_json_path", eval_json_path]
    if info.kind == "mrc":
        argv += ["--max_query_len", str(info.max_query_len), "--doc_stride", str(info.doc_stride),
                 "--n_best_size", str(n_best_size), "--max_answer_len", str(max_answer_len)]
    else:
        argv += ["--num_class", str(len(info.labels))]
    args = build_parser(info.kind).parse_args(argv)
    task = TASK_KINDS[info.kind](args, ErnieTokenizer(info.vocab_file), {label: i for i, label in enumerate(info.labels)})
    return task, task.load(data_file, is_training=False)


def model_columns(columns):
    """The exported graph's input columns of fine-tuning features (``segment_ids`` is its ``token_type_id``)."""
    return {"input_ids": columns["input_ids"], "input_mask": columns["input_mask"],
            "token_type_id": columns["segment_ids"]}


def evaluate_outputs(task, data, outputs):
    """The metrics ``src/finetune.py`` reports, from the exported graph's outputs on ``data`` (``task`` and ``data``
    from ``load_eval_data``)."""
    if task.kind == "ner":
        lengths = data.columns["input_mask"].sum(-1)
        token_tags = outputs[1] if task.args.use_crf else outputs[0].argmax(-1)
        return task.score(data, [row[:n] for row, n in zip(token_tags, lengths)])
    return task.score(data, *outputs)


# ---------------------------------------------------------------------------------------------------------------
# Ascend-310 file layout, and a Python stand-in for ascend310_infer/ (same flags, same files)

BIN_INPUT_DIRS = ("00_data", "01_data", "02_data")  # input_ids, input_mask, token_type_id
BIN_LABEL_DIR = "03_data"


def write_bin_inputs(columns, labels, out_dir, prefix, batch_size):
    """Writes ``<prefix>_<k>.bin`` into 00_data (input_ids), 01_data (input_mask), 02_data (token_type_id) and
    03_data (``labels``): raw little-endian int32 rows ``k*B .. k*B+B-1``; the last file is padded with all-zero rows.
    Returns the file names in order."""
    num_rows = len(columns[INPUT_NAMES[0]])
    arrays = [columns[name] for name in INPUT_NAMES] + [np.asarray(labels)]
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
        outputs = _as_numpy_tuple(graph(*(Tensor(a) for a in arrays)))
        latencies.append((time.perf_counter() - started) * 1000)
        for k, output in enumerate(outputs):
            target = os.path.join(result_path, f"{name[:-len('.bin')]}_{k}.bin")
            output.astype(output.dtype.newbyteorder("<"), copy=False).tofile(f"{target}.tmp")
            os.replace(f"{target}.tmp", target)
    return float(np.mean(latencies))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m src.inference",
        description="CPU stand-in for ascend310_infer/out/main: run a MindIR on preprocess.py's .bin files")
    parser.add_argument("--mindir_path", required=True)
    parser.add_argument("--input0_path", required=True, help="input_ids folder (00_data)")
    parser.add_argument("--input1_path", required=True, help="input_mask folder (01_data)")
    parser.add_argument("--input2_path", required=True, help="token_type_id folder (02_data)")
    parser.add_argument("--result_path", default="./result_files")
    parser.add_argument("--device_target", default="CPU")
    parser.add_argument("--device_id", type=int, default=0)
    args = parser.parse_args(argv)
    init_runtime(args.device_target, args.device_id if args.device_target != "CPU" else None)
    latency = run_mindir_on_bins(args.mindir_path, [args.input0_path, args.input1_path, args.input2_path],
                                 args.result_path)
    print(f"NN inference cost average time: {latency:.3f} ms (MindSpore {args.device_target} stand-in)")


if __name__ == "__main__":
    main()
