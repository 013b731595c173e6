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
import mindspore as ms
from mindspore import Tensor, nn, ops

from src.layers import Dense, swap_axes_1_2
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
                "torch-infer": "samples_per_s", "tokenize": "ours_chars_per_s", "e2e": "samples_per_s"}
    for row, field in expected.items():
        assert row in rows, f"no {row} row"
        record = rows[row]
        assert "error" not in record, f"{row}: {record['error']}"
        assert field in record or "skipped" in record, record
    assert rows["ms-train"]["peak_rss_mb"] > 0
    if "max_abs_diff_vs_mindspore" in rows["ort-fp32-infer"]:
        assert rows["ort-fp32-infer"]["max_abs_diff_vs_mindspore"] < 1e-4
    assert results["machine"]["cores"] >= 1
    assert "| tiny | 32 | ms-train |" in done.stdout  # the printed table
    shown = subprocess.run([sys.executable, os.path.join(REPO, "bench", "run_benchmarks.py"), "--show", str(out)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert done.stdout.rstrip().endswith(shown.stdout.rstrip())  # the same tables, from the saved file


class _Clip(nn.Cell):
    def __init__(self, step=None, max_norm=1.0):
        super().__init__()
        self.step = step
        self.max_norm = max_norm

    def construct(self, *grads):
        if self.step is None:
            return ops.clip_by_global_norm(grads, self.max_norm)
        return self.step.clip_by_global_norm(grads)


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
