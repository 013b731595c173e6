"""Learning-rate schedule and optimizers against closed forms and numpy references."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn

from src.ernie_model import ErnieModel, load_config
from src.optimization import Lamb, WarmupPolynomialDecayLR, build_optimizer, no_weight_decay


@pytest.mark.parametrize("warmup,power,end", [(10, 1.0, 0.0), (0, 1.0, 1e-7), (5, 2.0, 0.0)])
def test_schedule_graph_equals_python_and_closed_form(warmup, power, end):
    schedule = WarmupPolynomialDecayLR(1e-3, 50, warmup, end, power)
    for step in (0, 1, warmup, warmup + 1, 30, 49, 50, 80):
        graph_value = float(schedule(Tensor(step, ms.int32)).asnumpy())
        if warmup and step < warmup:
            expected = 1e-3 * step / warmup
        else:
            progress = min(step - warmup, 50 - warmup) / (50 - warmup)
            expected = (1e-3 - end) * (1 - progress) ** power + end
        assert graph_value == pytest.approx(expected, rel=1e-5, abs=1e-10)
        assert schedule.value(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_no_weight_decay_on_layer_norm_and_bias():
    model = ErnieModel(load_config("tiny", num_hidden_layers=1))
    skipped = {p.name for p in model.get_parameters() if no_weight_decay(p.name)}
    assert skipped == {p.name for p in model.get_parameters() if "LayerNorm" in p.name or p.name.endswith(".bias")}
    assert "embeddings.word_embeddings.weight" not in skipped


def _numpy_lamb_step(w, g, m, v, lr, step, wd, beta1=0.9, beta2=0.999, eps=1e-6):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    update = (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + eps) + wd * w
    trust = np.linalg.norm(w) / np.linalg.norm(update)
    return w - lr * trust * update, m, v


def test_lamb_matches_numpy_reference_with_grouped_weight_decay():
    rng = np.random.default_rng(0)
    weight0 = rng.normal(size=(4, 3)).astype(np.float32)
    bias0 = rng.normal(size=(3,)).astype(np.float32)
    weight = Parameter(Tensor(weight0), name="dense.weight")
    bias = Parameter(Tensor(bias0), name="dense.bias")
    groups = [{"params": [weight], "weight_decay": 0.01}, {"params": [bias], "weight_decay": 0.0}]
    optimizer = Lamb(groups, learning_rate=0.1)
    expected_w, expected_b = weight0.astype(np.float64), bias0.astype(np.float64)
    m_w = v_w = np.zeros_like(expected_w)
    m_b = v_b = np.zeros_like(expected_b)
    for step in (1, 2, 3):
        g_w = rng.normal(size=(4, 3)).astype(np.float32)
        g_b = rng.normal(size=(3,)).astype(np.float32)
        optimizer((Tensor(g_w), Tensor(g_b)))
        expected_w, m_w, v_w = _numpy_lamb_step(expected_w, g_w, m_w, v_w, 0.1, step, 0.01)
        expected_b, m_b, v_b = _numpy_lamb_step(expected_b, g_b, m_b, v_b, 0.1, step, 0.0)
    np.testing.assert_allclose(weight.asnumpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.asnumpy(), expected_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["AdamWeightDecay", "Lamb", "Momentum"])
def test_every_optimizer_builds_with_the_schedule(name):
    net = nn.Dense(3, 2)
    optimizer, schedule = build_optimizer(net.trainable_params(), name, 1e-3, total_steps=10, warmup_proportion=0.2)
    assert schedule.warmup_steps == 2 and schedule.total_steps == 10
    grads = tuple(Tensor(np.ones(p.shape, np.float32)) for p in net.trainable_params())
    before = [p.asnumpy().copy() for p in net.trainable_params()]
    for _ in range(3):  # step 0 has learning rate 0 (warm-up starts at 0)
        optimizer(grads)
    assert all(not np.allclose(b, p.asnumpy()) for b, p in zip(before, net.trainable_params()))


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(nn.Dense(2, 2).trainable_params(), "Adagrad")
