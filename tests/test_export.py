"""Export proofs: for every task kind, a tiny fine-tuned checkpoint exported to MINDIR (reloaded with
``mindspore.load`` + ``nn.GraphCell``) and ONNX (run with onnxruntime) gives the checkpoint model's outputs within
1e-5 (float32, absolute, on outputs of magnitude ~1-10); CRF tags are exact and equal an independent host Viterbi.
Also: the sidecar, dynamic-shape MINDIR, int8 quantization, and the errors for impossible requests."""
import json
import os

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn

import export
from src.checkpoint import save_checkpoint
from src.crf import viterbi_decode_numpy
from src.ernie_model import load_config
from src.serving.runtime import load_task_model, resolve_checkpoint
from src.tasks.registry import TaskInfo, build_task

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TINY_VOCAB = os.path.join(FIXTURES, "tiny_vocab.txt")
MSRA_LABELS = ["B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "O"]
TOLERANCE = 1e-5
SEQ_LEN = 24

# name -> (task_type, use_crf)
KINDS = {"classification": ("chnsenticorp", False), "ner": ("msra_ner", False), "ner_crf": ("msra_ner", True),
         "mrc": ("cmrc", False)}

def make_finetuned(folder, task_type, use_crf=False, max_seq_len=SEQ_LEN, seed=0, vocab_file=TINY_VOCAB):
    """A fine-tuning output folder as src/finetune.py leaves it (``<task>-best.ckpt``, ``ernie_config.json``,
    ``task.json``) for a tiny random model whose weights are large enough that outputs differ clearly between
    inputs (and argmax / Viterbi decisions are not ties)."""
    os.makedirs(folder, exist_ok=True)
    with open(vocab_file, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    config = load_config("tiny", vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=64)
    kind = {"chnsenticorp": "classification", "msra_ner": "ner", "cmrc": "mrc"}[task_type]
    labels = {"classification": ["0", "1"], "ner": MSRA_LABELS, "mrc": []}[kind]
    task = {"task_type": task_type, "kind": kind, "labels": labels, "max_seq_len": max_seq_len,
            "max_query_len": 8 if kind == "mrc" else None, "doc_stride": 6 if kind == "mrc" else None,
            "use_crf": use_crf if kind == "ner" else None, "vocab_file": os.path.abspath(vocab_file)}
    model = build_task(TaskInfo.from_dict(task, "test")).build_model(config)
    rng = np.random.default_rng(seed)
    for parameter in model.get_parameters():
        scale = 0.15 if parameter.name.endswith("weight") and "LayerNorm" not in parameter.name else 0.1
        values = rng.normal(0.0, scale, parameter.shape).astype(np.float32)
        if "LayerNorm.weight" in parameter.name:
            values += 1.0
        parameter.set_data(Tensor(values))
    save_checkpoint(model, os.path.join(folder, f"{task_type}-best.ckpt"))
    config.to_json_file(os.path.join(folder, "ernie_config.json"))
    with open(os.path.join(folder, "task.json"), "w", encoding="utf-8") as f:
        json.dump(task, f)
    return folder

def random_inputs(batch, seq_len, vocab_size=133, seed=0):
    """(input_ids, input_mask, token_type_id) int32 [batch, seq_len] with padded rows of different lengths."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, (batch, seq_len)).astype(np.int32)
    lengths = np.linspace(seq_len, 3, batch).astype(int)
    mask = (np.arange(seq_len)[None] < lengths[:, None]).astype(np.int32)
    ids[:, 0] = 1
    ids *= mask
    types = ((np.arange(seq_len)[None] >= lengths[:, None] // 2) * mask).astype(np.int32)
    return ids, mask, types

def reference_outputs(folder, inputs):
    """The checkpoint model's own outputs (the task model called directly, graph mode)."""
    ckpt, info, config = resolve_checkpoint(folder)
    model = load_task_model(build_task(info), ckpt, config)
    ids, mask, types = (Tensor(x) for x in inputs)
    outputs = model(ids, types, mask)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return model, [o.asnumpy() for o in outputs]

pytestmark = pytest.mark.usefixtures("graph_mode")

@pytest.mark.parametrize("name", list(KINDS))
def test_mindir_and_onnx_equal_the_checkpoint(tmp_path, name):
    ort = pytest.importorskip("onnxruntime")
    task_type, use_crf = KINDS[name]
    folder = make_finetuned(str(tmp_path / "run"), task_type, use_crf)
    batch = 3
    inputs = random_inputs(batch, SEQ_LEN)
    model, expected = reference_outputs(folder, inputs)
    if use_crf:  # the graph also returns Viterbi tags; reference: the host decoder on the reference emissions
        lengths = inputs[1].sum(-1)
        paths = viterbi_decode_numpy(expected[0], model.crf.transitions.asnumpy(),
                                     model.crf.start_transitions.asnumpy(), model.crf.end_transitions.asnumpy(), lengths)
        expected.append(np.array([p + [0] * (SEQ_LEN - len(p)) for p in paths], np.int32))

    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "model"),
                          "--batch_size", str(batch)])
    onnx_path = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "model"),
                             "--file_format", "ONNX", "--batch_size", str(batch)])

    graph = nn.GraphCell(ms.load(mindir))
    got_mindir = graph(*(Tensor(x) for x in inputs))
    got_mindir = [o.asnumpy() for o in (got_mindir if isinstance(got_mindir, (tuple, list)) else (got_mindir,))]
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got_onnx = session.run(None, dict(zip(("input_ids", "input_mask", "token_type_id"), inputs)))

    sidecar = json.load(open(onnx_path + ".json", encoding="utf-8"))
    assert [o.name for o in session.get_outputs()] == [o["name"] for o in sidecar["outputs"]]
    assert [i.name for i in session.get_inputs()] == ["input_ids", "input_mask", "token_type_id"]
    assert len(got_mindir) == len(got_onnx) == len(expected) == len(sidecar["outputs"])
    for spec, want, a, b in zip(sidecar["outputs"], expected, got_mindir, got_onnx):
        assert list(a.shape) == list(b.shape) == list(want.shape) == spec["shape"], spec["name"]
        assert a.dtype == b.dtype == np.dtype(spec["dtype"]), spec["name"]
        if spec["name"] == "tags":
            real = inputs[1].astype(bool)
            np.testing.assert_array_equal(a[real], want[real])
            np.testing.assert_array_equal(b[real], want[real])
        else:
            assert np.abs(want).max() > 0.5  # outputs that vary, not all ~0
            np.testing.assert_allclose(a, want, rtol=0, atol=TOLERANCE)
            np.testing.assert_allclose(b, want, rtol=0, atol=TOLERANCE)

def test_sidecar_and_vocab_copy(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "msra_ner", use_crf=True)
    path = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "ner")])
    assert path.endswith("ner.mindir") and oct(os.stat(path).st_mode & 0o777) == "0o644"
    sidecar = json.load(open(path + ".json", encoding="utf-8"))
    assert sidecar["task_type"] == "msra_ner" and sidecar["kind"] == "ner" and sidecar["labels"] == MSRA_LABELS
    assert sidecar["use_crf"] is True and sidecar["crf_decoding"] == "in_graph"
    assert sidecar["max_seq_len"] == SEQ_LEN and sidecar["batch_size"] == 1 and sidecar["file_format"] == "MINDIR"
    assert [i["name"] for i in sidecar["inputs"]] == ["input_ids", "input_mask", "token_type_id"]
    assert all(i["shape"] == [1, SEQ_LEN] and i["dtype"] == "int32" for i in sidecar["inputs"])
    assert [(o["name"], o["dtype"], o["shape"]) for o in sidecar["outputs"]] == [
        ("emissions", "float32", [1, SEQ_LEN, 7]), ("tags", "int32", [1, SEQ_LEN])]
    assert sidecar["vocab_file"] == "vocab.txt"
    assert open(tmp_path / "out" / "vocab.txt", "rb").read() == open(TINY_VOCAB, "rb").read()
    assert not [n for n in os.listdir(tmp_path / "out") if "tmp" in n]

def test_export_options_override_task_json(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "chnsenticorp", max_seq_len=16)
    path = export.main(["--ckpt_file", os.path.join(folder, "chnsenticorp-best.ckpt"), "--file_name",
                        str(tmp_path / "out" / "cls"), "--max_seq_len", "32", "--batch_size", "4",
                        "--number_labels", "2", "--task_type", "chnsenticorp", "--device_target", "CPU",
                        "--device_id", "0"])
    sidecar = json.load(open(path + ".json", encoding="utf-8"))
    assert sidecar["max_seq_len"] == 32 and sidecar["inputs"][0]["shape"] == [4, 32]

def test_checkpoint_without_task_json_needs_the_task_type(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "chnsenticorp")
    os.remove(os.path.join(folder, "task.json"))
    target = str(tmp_path / "out" / "cls")
    with pytest.raises(SystemExit, match="no task.json.*--task_type"):
        export.main(["--ckpt_file", folder, "--file_name", target])
    with pytest.raises(SystemExit, match="vocab"):
        export.main(["--ckpt_file", folder, "--file_name", target, "--task_type", "chnsenticorp"])
    path = export.main(["--ckpt_file", folder, "--file_name", target, "--task_type", "chnsenticorp",
                        "--vocab_file", TINY_VOCAB, "--max_seq_len", "16"])
    sidecar = json.load(open(path + ".json", encoding="utf-8"))
    assert sidecar["labels"] == ["0", "1"] and sidecar["max_seq_len"] == 16

@pytest.mark.parametrize("argv, message", [
    (["--task_type", "xnli"], "is for 'chnsenticorp'"),
    (["--number_labels", "3"], "3 labels requested"),
    (["--file_format", "AIR"], "AIR export needs an Ascend device"),
    (["--file_format", "ONNX", "--dynamic_shape", "batch"], "fixed-shape only"),
    (["--quantize", "int8"], "applies to ONNX"),
    (["--max_seq_len", "100"], "longer than max_position_embeddings 64"),
])
def test_impossible_exports_fail_clearly(tmp_path, argv, message):
    folder = make_finetuned(str(tmp_path / "run"), "chnsenticorp")
    with pytest.raises(SystemExit, match=message):
        export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "m"), *argv])
    assert not os.path.exists(tmp_path / "out" / "m.mindir")

@pytest.mark.skipif(ms.hal.is_available("Ascend"), reason="an Ascend device is present")
def test_air_without_an_ascend_device(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "chnsenticorp")
    with pytest.raises(SystemExit, match="device target Ascend is not available"):
        export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "m"), "--file_format", "AIR",
                     "--device_target", "Ascend"])

def test_wrong_head_is_refused(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "msra_ner", use_crf=False)
    task = json.load(open(os.path.join(folder, "task.json"), encoding="utf-8"))
    task["use_crf"] = True  # a task.json that does not match its checkpoint
    json.dump(task, open(os.path.join(folder, "task.json"), "w", encoding="utf-8"))
    with pytest.raises(SystemExit, match="lacks 3 parameters.*use_crf"):
        export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "m")])

def test_dynamic_shape_mindir(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "msra_ner")
    path = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "dyn"),
                        "--dynamic_shape", "batch_seq"])
    assert json.load(open(path + ".json", encoding="utf-8"))["inputs"][0]["shape"] == [None, None]
    graph = nn.GraphCell(ms.load(path))
    for batch, seq_len in ((1, SEQ_LEN), (3, 10)):
        inputs = random_inputs(batch, seq_len, seed=batch)
        _, (expected,) = reference_outputs(folder, inputs)
        got = graph(*(Tensor(x) for x in inputs)).asnumpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)

    crf_folder = make_finetuned(str(tmp_path / "crf"), "msra_ner", use_crf=True)
    with pytest.raises(SystemExit, match="built for one sequence length"):
        export.main(["--ckpt_file", crf_folder, "--file_name", str(tmp_path / "out" / "crf"),
                     "--dynamic_shape", "batch_seq"])

def test_int8_quantized_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    folder = make_finetuned(str(tmp_path / "run"), "chnsenticorp")
    path = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "out" / "cls"), "--file_format", "ONNX",
                        "--batch_size", "4", "--quantize", "int8"])
    quantized = str(tmp_path / "out" / "cls.int8.onnx")
    sidecar = json.load(open(quantized + ".json", encoding="utf-8"))
    assert sidecar["quantization"].startswith("dynamic int8") and sidecar["vocab_file"] == "vocab.txt"
    op_types = {node.op_type for node in onnx.load(quantized).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= op_types  # weights really are int8
    assert os.path.getsize(quantized) < os.path.getsize(path)
    inputs = dict(zip(("input_ids", "input_mask", "token_type_id"), random_inputs(4, SEQ_LEN)))
    fp32 = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    int8 = ort.InferenceSession(quantized, providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    assert not np.array_equal(fp32, int8)
    # int8 rounding error: a few percent of the logit range on this tiny model
    assert np.abs(fp32 - int8).max() < 0.1 * np.abs(fp32).max()
