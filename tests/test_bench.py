"""The benchmark harness runs end to end on the tiny config, and the speed/memory changes it led to keep results equal.

The model-level parity (ours vs transformers, with padding) is tests/test_heads.py; here each changed piece is checked
against the MindSpore construct it replaced.

Benchmarks are not tests: nothing here checks a speed. The harness test runs every row for one step at sequence
length 32 and checks that the JSON has each row (or says which optional package was missing).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn, ops

from src.layers import Dense, swap_axes_1_2
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import run_benchmarks  # noqa: E402
from src.optimization import build_optimizer
from src.trainer import TrainStep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")


def test_harness_runs_every_row_on_tiny(tmp_path):
    out = tmp_path / "results.json"
    command = [sys.executable, os.path.join(REPO, "bench", "run_benchmarks.py"), "--sizes", "tiny", "--seq_lens", "32",
               "--batch", "2", "--steps", "1", "--warmup", "1", "--threads", "2", "--json", str(out),
               "--work_dir", str(tmp_path / "work"), "--vocab_file", os.path.join(FIXTURES, "tiny_vocab.txt"),
               "--text_file", os.path.join(FIXTURES, "chnsenticorp.tsv")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    rows = {r["row"]: r for r in results["records"]}
    expected = {"ms-train": "samples_per_s", "torch-train": "samples_per_s", "ms-infer": "samples_per_s",
                "export": "export_s", "ort-fp32-infer": "samples_per_s", "ort-int8-infer": "samples_per_s",
                "torch-infer": "samples_per_s", "tokenize": "ours_chars_per_s", "e2e": "samples_per_s",
                "ms-train-bf16": "samples_per_s", "ms-infer-bf16": "samples_per_s",
                "ms-train-fused": "samples_per_s", "ms-infer-fused": "samples_per_s",
                "torch-train-bf16": "samples_per_s", "torch-infer-bf16": "samples_per_s"}
    for row, field in expected.items():
        assert row in rows, f"no {row} row"
        record = rows[row]
        assert "error" not in record, f"{row}: {record['error']}"
        assert field in record or "skipped" in record, record
    assert rows["ms-train"]["peak_rss_mb"] > 0
    if "max_abs_diff_vs_mindspore" in rows["ort-fp32-infer"]:
        assert rows["ort-fp32-infer"]["max_abs_diff_vs_mindspore"] < 1e-4
    assert results["machine"]["cores"] >= 1
    assert set(results["machine"]["isa"]) == {"avx512f", "avx512_bf16", "amx_bf16", "amx_int8"}
    assert results["machine"]["date"].endswith(" UTC")
    with open("/proc/cpuinfo") as f:
        if "cpu family" in f.read():  # x86 Linux: the host's family and model are recorded
            assert results["machine"]["cpu_family"] and results["machine"]["model"]
    if "samples_per_s" in rows["torch-infer-bf16"]:
        assert any(r["theirs"].startswith("torch-infer-best = ") for r in results["ratios"])
    assert "| tiny | 32 | ms-train |" in done.stdout  # the printed table
    shown = subprocess.run([sys.executable, os.path.join(REPO, "bench", "run_benchmarks.py"), "--show", str(out)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert done.stdout.rstrip().endswith(shown.stdout.rstrip())  # the same tables, from the saved file


def test_train_and_infer_start_without_data_files(monkeypatch, tmp_path):
    """Only tokenize and e2e read --vocab_file / --text_file; the other groups start without them, and asking for a
    group that needs a missing file says which file and why."""
    planned = []
    monkeypatch.setattr(run_benchmarks, "run_row",
                        lambda row, size, seq_len, *_: planned.append(row) or {"row": row, "size": size,
                                                                               "seq_len": seq_len, "skipped": "test"})
    missing = str(tmp_path / "absent.txt")
    common = ["--sizes", "tiny", "--seq_lens", "32", "--work_dir", str(tmp_path), "--vocab_file", missing,
              "--text_file", missing]
    run_benchmarks.main(common + ["--only", "train,infer"])
    assert planned == list(run_benchmarks.GROUPS["train"] + run_benchmarks.GROUPS["infer"])
    with pytest.raises(SystemExit):
        run_benchmarks.main(common + ["--only", "tokenize"])
    planned.clear()
    run_benchmarks.main(common + ["--only", "train,infer", "--rows", "ms-infer,ms-train-bf16"])
    assert planned == ["ms-train-bf16", "ms-infer"]
    with pytest.raises(SystemExit):
        run_benchmarks.main(common + ["--only", "train", "--rows", "ms-infer"])


def test_skip_reasons_say_why():
    no_bf16 = {"isa": {"avx512_bf16": False}}
    assert "avx512_bf16" in run_benchmarks.skip_reason("ms-train-bf16", "tiny", 32, [], no_bf16)
    assert run_benchmarks.skip_reason("ms-train", "tiny", 32, [], no_bf16) is None
    skipped_export = [{"row": "export", "size": "tiny", "seq_len": 32, "skipped": "onnx not installed"}]
    assert "export row was skipped" in run_benchmarks.skip_reason("ort-fp32-infer", "tiny", 32, skipped_export,
                                                                  no_bf16)


def test_ratios_against_torch_best_mode():
    def record(row, samples_per_s):
        return {"row": row, "size": "base", "seq_len": 128, "samples_per_s": samples_per_s, "peak_rss_mb": 100.0}
    records = [record("ms-train", 1.6), record("torch-train", 2.0), record("torch-train-bf16", 3.2),
               record("ms-train-bf16", 2.4), record("ms-train-fused", 2.0)]
    found = {(r["ours"], r["theirs"], r["field"]): r["ratio"] for r in run_benchmarks.ratios(records)}
    assert found[("ms-train", "torch-train", "samples_per_s")] == pytest.approx(0.8)
    assert found[("ms-train", "torch-train-best = torch-train-bf16", "samples_per_s")] == pytest.approx(0.5)
    assert found[("ms-train-bf16", "torch-train-best = torch-train-bf16", "samples_per_s")] == pytest.approx(0.75)
    assert found[("ms-train-bf16", "ms-train-fused", "samples_per_s")] == pytest.approx(1.2)


class _Clip(nn.Cell):
    def __init__(self, step=None, max_norm=1.0):
        super().__init__()
        self.step = step
        self.max_norm = max_norm

    def construct(self, *grads):
        if self.step is None:
            return ops.clip_by_global_norm(grads, self.max_norm)
        return self.step.clip_by_global_norm(grads)


def test_profile_table_per_step_and_share(tmp_path):
    """bench/profile_step.py's table from a hand-made profiler CSV: times halved for 2 steps, shares of the sum."""
    import profile_step
    path = tmp_path / "cpu_op_type_info_0.csv"
    path.write_text("op_type,type_occurrences,execution_frequency(per-step),total_compute_time,avg_time(ms),percent\n"
                    "Dropout,4,2,100.0,25.0,0.25\nCustom,6,3,300.0,50.0,0.75\n", encoding="utf-8")
    total, rows = profile_step.operator_table(str(path), steps=2, top=5)
    assert total == 200.0
    assert rows == [("Custom", 150.0, 0.75, "3"), ("Dropout", 50.0, 0.25, "2")]


def test_train_step_clipping_equals_clip_by_global_norm():
    """TrainStep clips with one scale factor instead of ops.clip_by_global_norm (1.5 GB less at ERNIE-base); the
    result must be the same within float32 rounding."""
    ms.set_context(mode=ms.GRAPH_MODE)
    net = nn.Dense(4, 3)
    optimizer, _ = build_optimizer(net.trainable_params(), "Momentum", 0.1, total_steps=10)
    rng = np.random.default_rng(0)
    grads = [Tensor(rng.normal(size=shape).astype(np.float32)) for shape in ((64, 32), (32,), (7, 5, 3))]
    for max_norm in (1.0, 1000.0):  # clipped, and left alone
        step = TrainStep(nn.WithLossCell(net, nn.MSELoss()), optimizer, max_grad_norm=max_norm)
        ours = _Clip(step)(*grads)
        reference = _Clip(max_norm=max_norm)(*grads)
        for a, b in zip(ours, reference):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6, atol=1e-7)


class _Grads(nn.Cell):
    """Gradients of sum(net(x) * weights) with respect to x and the net's parameters."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.params = ms.ParameterTuple(net.trainable_params())
        self.grad = ops.GradOperation(get_all=True, get_by_list=True)

    def construct(self, x, weights):
        return self.grad(self.net, self.params)(x, weights)


class _Weighted(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, weights):
        return ops.reduce_sum(self.net(x) * weights)


def test_dense_backward_equals_mindspore_autodiff():
    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(1)
    ours = Dense(16, 24)
    reference = nn.Dense(16, 24)
    for mine, theirs in zip(ours.get_parameters(), reference.get_parameters()):
        theirs.set_data(Tensor(rng.normal(size=mine.shape).astype(np.float32)))
        mine.set_data(theirs.data.copy())
    x = Tensor(rng.normal(size=(3, 5, 16)).astype(np.float32))
    weights = Tensor(rng.normal(size=(3, 5, 24)).astype(np.float32))
    np.testing.assert_allclose(ours(x).asnumpy(), reference(x).asnumpy(), rtol=1e-6, atol=1e-6)
    (dx_ours, _), params_ours = _Grads(_Weighted(ours))(x, weights)
    (dx_ref, _), params_ref = _Grads(_Weighted(reference))(x, weights)
    np.testing.assert_allclose(dx_ours.asnumpy(), dx_ref.asnumpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(params_ours, params_ref):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-5)


class _Swap(nn.Cell):
    def __init__(self, transpose):
        super().__init__()
        self.transpose = transpose

    def construct(self, x):
        return ops.transpose(x, (0, 2, 1, 3)) if self.transpose else swap_axes_1_2(x)


def test_swap_axes_equals_transpose_with_its_gradient():
    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(2, 5, 3, 4)).astype(np.float32))
    weights = Tensor(rng.normal(size=(2, 3, 5, 4)).astype(np.float32))
    np.testing.assert_array_equal(_Swap(False)(x).asnumpy(), x.asnumpy().transpose(0, 2, 1, 3))
    grad = ops.GradOperation()
    ours = grad(_Weighted(_Swap(False)))(x, weights)
    reference = grad(_Weighted(_Swap(True)))(x, weights)
    np.testing.assert_array_equal(ours.asnumpy(), reference.asnumpy())
