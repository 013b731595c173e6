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


# ---------------------------------------------------------------------------------------------------------------
# The config table's settings: end learning rate, power, warm-up and decay steps, eps, momentum

@pytest.mark.parametrize("warmup,decay,power,end", [(10, 40, 1.0, 0.0), (0, 30, 2.0, 1e-5), (5, 60, 5.0, 1e-4)])
def test_seed_decay_steps_equal_the_model_zoo_schedule_and_the_formula(warmup, decay, power, end):
    """With decay_steps, the schedule is the seed's ErnieLearningRate: MindSpore's WarmUpLR during warm-up, else
    PolynomialDecayLR over the global step: (lr0 - end) * (1 - min(step, decay) / decay)^power + end."""
    lr0 = 1e-3
    schedule = WarmupPolynomialDecayLR(lr0, 100, warmup, end, power, decay_steps=decay)
    polynomial = nn.PolynomialDecayLR(lr0, end, decay, power)
    warmup_lr = nn.WarmUpLR(lr0, warmup) if warmup else None
    for step in (0, 1, 4, warmup, warmup + 1, 25, decay - 1, decay, decay + 7, 100):
        if warmup and step < warmup:
            expected = lr0 * step / warmup
            reference = float(warmup_lr(Tensor(step, ms.int32)).asnumpy())
        else:
            expected = (lr0 - end) * (1 - min(step, decay) / decay) ** power + end
            reference = float(polynomial(Tensor(step, ms.int32)).asnumpy())
        assert schedule.value(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert float(schedule(Tensor(step, ms.int32)).asnumpy()) == pytest.approx(expected, rel=1e-5, abs=1e-10)
        assert reference == pytest.approx(expected, rel=1e-5, abs=1e-10)


def test_build_optimizer_warmup_steps_override_the_proportion_and_decay_steps_reach_the_end():
    _, schedule = build_optimizer(nn.Dense(2, 2).trainable_params(), "AdamWeightDecay", 2e-3, total_steps=100,
                                  warmup_proportion=0.5, warmup_steps=3, decay_steps=20, end_learning_rate=1e-4,
                                  power=2.0)
    assert (schedule.warmup_steps, schedule.decay_start, schedule.decay_steps) == (3, 0, 20)
    assert schedule.value(3) == pytest.approx((2e-3 - 1e-4) * (1 - 3 / 20) ** 2 + 1e-4)
    assert schedule.value(20) == schedule.value(99) == pytest.approx(1e-4)
    _, default = build_optimizer(nn.Dense(2, 2).trainable_params(), "Lamb", 2e-3, total_steps=100)
    assert (default.warmup_steps, default.decay_start, default.decay_steps) == (10, 10, 90)


@pytest.mark.parametrize("kwargs,message", [
    (dict(warmup_steps=10, decay_steps=10), "decay_steps .10. must be greater than warmup_steps .10."),
    (dict(end_learning_rate=1.0), "end_learning_rate must be in"),
    (dict(power=0.0), "power must be positive"),
    (dict(eps=0.0), "eps must be positive"),
    (dict(momentum=1.0), "momentum must be in"),
])
def test_bad_schedule_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(nn.Dense(2, 2).trainable_params(), "AdamWeightDecay", 1e-3, total_steps=50, **kwargs)


def _constant_lr_optimizer(name, **kwargs):
    """One Dense layer and its optimizer at a constant learning rate 0.1 (end_learning_rate = learning_rate)."""
    net = nn.Dense(3, 2)
    optimizer, _ = build_optimizer(net.trainable_params(), name, 0.1, total_steps=10, warmup_proportion=0.0,
                                   end_learning_rate=0.1, weight_decay=0.0, **kwargs)
    return net, optimizer


def test_adam_weight_decay_uses_its_eps():
    net, optimizer = _constant_lr_optimizer("AdamWeightDecay", eps=0.5)
    assert float(optimizer.eps.asnumpy()[0]) == 0.5
    weight0 = net.weight.asnumpy().copy()
    grad = np.full(weight0.shape, 0.2, np.float32)
    optimizer((Tensor(grad), Tensor(np.zeros(2, np.float32))))
    m, v = 0.1 * grad, 0.001 * grad ** 2  # AdamWeightDecay has no bias correction
    np.testing.assert_allclose(net.weight.asnumpy(), weight0 - 0.1 * m / (np.sqrt(v) + 0.5), rtol=1e-6, atol=1e-7)


def test_lamb_gets_its_eps():
    _, optimizer = _constant_lr_optimizer("Lamb", eps=1e-8)
    assert float(optimizer.eps.asnumpy()) == pytest.approx(1e-8)


def test_momentum_uses_its_momentum():
    net, optimizer = _constant_lr_optimizer("Momentum", momentum=0.5)
    assert float(optimizer.momentum.asnumpy()) == 0.5
    weight0 = net.weight.asnumpy().copy()
    grad1, grad2 = np.full(weight0.shape, 1.0, np.float32), np.full(weight0.shape, 2.0, np.float32)
    zeros = Tensor(np.zeros(2, np.float32))
    optimizer((Tensor(grad1), zeros))
    optimizer((Tensor(grad2), zeros))
    velocity2 = 0.5 * grad1 + grad2
    np.testing.assert_allclose(net.weight.asnumpy(), weight0 - 0.1 * grad1 - 0.1 * velocity2, rtol=1e-6)
