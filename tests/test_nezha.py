"""NEZHA's functional relative positions (``use_relative_positions``) against an independent numpy implementation of
the paper's equations (Wei et al. 2019, section 3.2), with the index convention of NEZHA's released code; plus
gradients, MINDIR/ONNX export, the config keys that switch it on, and the default path left alone."""
import math

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn

from src.ernie_model import ErnieConfig, ErnieModel, load_config, relative_position_table
from src.heads import ErnieForSequenceClassification

TOLERANCE = 1e-5  # float32 against float64, absolute, on outputs of magnitude ~1
SEQ_LEN = 12
MAX_RELATIVE = 3  # < SEQ_LEN - 1, so clipping is exercised


def nezha_config(**overrides):
    values = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  hidden_act="relu", max_position_embeddings=20, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, use_relative_positions=True, max_relative_position=MAX_RELATIVE)
    values.update(overrides)
    return ErnieConfig(**values)


def randomize(cell, seed=0):
    """Weights large enough that the relative terms change the outputs clearly; LayerNorm gains near 1. The pooler's
    are smaller: MindSpore's CPU Tanh kernel is accurate to 2e-7 for |x| <= 2 but only to 1e-4 near |x| = 5 (measured
    against numpy on a grid), and onnxruntime's differs, so a saturated pooler would hide the encoder's agreement."""
    rng = np.random.default_rng(seed)
    for parameter in cell.get_parameters():
        values = rng.normal(0.0, 0.3, parameter.shape).astype(np.float32)
        if "LayerNorm.weight" in parameter.name:
            values = 1.0 + 0.1 * values
        elif "pooler.dense.weight" in parameter.name:
            values *= 0.2
        parameter.set_data(Tensor(values))
    return cell


def random_inputs(batch=3, seq_len=SEQ_LEN, vocab_size=60, seed=1):
    """int32 ids, token types and a padding mask whose rows have different lengths."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(seq_len, 4, batch).astype(int)
    mask = (np.arange(seq_len)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1, vocab_size, (batch, seq_len)).astype(np.int32) * mask
    types = ((np.arange(seq_len)[None] >= lengths[:, None] // 2) * mask).astype(np.int32)
    return ids, types, mask


# ---------------------------------------------------------------------------------------------------------------------
# The independent reference: the paper's equations, element by element where they define a_ij, in float64.

def paper_relative_embedding(i, j, depth, max_relative):
    """a_ij: a_ij[2k] = sin(r / 10000^(2k/d)), a_ij[2k+1] = cos(r / 10000^(2k/d)) with r the clipped distance j - i
    shifted by K (NEZHA's code indexes its table by it)."""
    r = min(max(j - i, -max_relative), max_relative) + max_relative
    vector = np.empty(depth)
    for m in range(depth):
        angle = r / 10000.0 ** (2 * (m // 2) / depth)
        vector[m] = math.sin(angle) if m % 2 == 0 else math.cos(angle)
    return vector


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def numpy_nezha(weights, config, ids, types, mask):
    """(sequence_output, pooled_output) of the encoder: embeddings without absolute positions, then per layer
    e_ij = q_i (k_j + a_ij)^T / sqrt(d) - 10000 [j is padding], alpha = softmax_j(e), z_i = sum_j alpha_ij (v_j + a_ij),
    post-LayerNorm residual blocks and a tanh pooler over position 0."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    batch, seq_len = ids.shape
    heads, depth = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    relative = np.array([[paper_relative_embedding(i, j, depth, config.max_relative_position)
                          for j in range(seq_len)] for i in range(seq_len)])  # [S, S, d]
    eps = config.layer_norm_eps

    def dense(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    padding = (1.0 - mask[:, None, None, :]) * -10000.0  # [B, 1, 1, S]
    for layer in range(config.num_hidden_layers):
        prefix = f"encoder.layer.{layer}."
        q, k, v = (dense(x, prefix + "attention.self." + part).reshape(batch, seq_len, heads, depth)
                   for part in ("query", "key", "value"))
        keys = k[:, None, :, :, :] + relative[None, :, :, None, :]      # [B, i, j, h, d]: k_j + a_ij
        scores = np.einsum("bihd,bijhd->bhij", q, keys) / math.sqrt(depth) + padding
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        values = v[:, None, :, :, :] + relative[None, :, :, None, :]    # v_j + a_ij
        context = np.einsum("bhij,bijhd->bihd", probs, values).reshape(batch, seq_len, -1)
        attention = layer_norm(dense(context, prefix + "attention.output.dense") + x,
                               w[prefix + "attention.output.LayerNorm.weight"],
                               w[prefix + "attention.output.LayerNorm.bias"], eps)
        hidden = np.maximum(dense(attention, prefix + "intermediate.dense"), 0.0)
        x = layer_norm(dense(hidden, prefix + "output.dense") + attention, w[prefix + "output.LayerNorm.weight"],
                       w[prefix + "output.LayerNorm.bias"], eps)
    return x, np.tanh(dense(x[:, 0], "pooler.dense"))


# ---------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [8, 9])
def test_relative_table_is_the_sinusoid_of_the_paper(depth):
    table = relative_position_table(MAX_RELATIVE, depth)
    assert table.shape == (2 * MAX_RELATIVE + 1, depth) and table.dtype == np.float32
    for i, j in [(0, 0), (0, 1), (5, 2), (0, 11), (11, 0), (4, 7)]:
        row = min(max(j - i, -MAX_RELATIVE), MAX_RELATIVE) + MAX_RELATIVE
        np.testing.assert_allclose(table[row], paper_relative_embedding(i, j, depth, MAX_RELATIVE), atol=1e-7)


@pytest.mark.usefixtures("graph_mode")
def test_encoder_equals_numpy_paper_equations():
    config = nezha_config()
    model = randomize(ErnieModel(config))
    model.set_train(False)
    ids, types, mask = random_inputs()
    sequence, pooled = model(Tensor(ids), Tensor(types), Tensor(mask))
    weights = {p.name: p.asnumpy() for p in model.get_parameters()}
    want_sequence, want_pooled = numpy_nezha(weights, config, ids, types, mask)
    assert np.abs(np.arctanh(want_pooled)).max() < 2.0  # where the Tanh kernel is accurate (see randomize)
    np.testing.assert_allclose(sequence.asnumpy(), want_sequence, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(pooled.asnumpy(), want_pooled, rtol=0, atol=TOLERANCE)
    # The relative terms matter at this scale: without them (a_ij = 0) the reference moves far beyond the tolerance.
    flat = dict(config.to_dict(), max_relative_position=1)
    moved, _ = numpy_nezha(weights, ErnieConfig(**flat), ids, types, mask)
    assert np.abs(moved - want_sequence).max() > 100 * TOLERANCE


def test_relative_model_has_no_absolute_positions_and_default_keeps_them():
    relative = {p.name for p in ErnieModel(nezha_config()).get_parameters()}
    absolute = {p.name for p in ErnieModel(nezha_config(use_relative_positions=False)).get_parameters()}
    assert absolute - relative == {"embeddings.position_embeddings.weight"}
    assert not relative - absolute  # the relative table is fixed: not a parameter, not in checkpoints


@pytest.mark.usefixtures("graph_mode")
def test_gradients_flow_and_match_finite_differences():
    """The directional derivative of a classification loss along a random direction in all parameters equals the
    central finite difference (step 1e-3; measured agreement 2e-4 relative), and the attention weights get gradients.
    GELU, not ReLU: a step of every parameter crosses ReLU kinks, which alone moves the difference quotient by 2%."""
    config = nezha_config(hidden_act="gelu")
    model = randomize(ErnieForSequenceClassification(config, 3), seed=2)
    model.set_train(False)  # dropout is 0 anyway; eval mode keeps the forward pass deterministic
    ids, types, mask = (Tensor(x) for x in random_inputs())
    labels = Tensor(np.array([0, 2, 1], np.int32))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    parameters = model.trainable_params()

    def loss():
        return loss_fn(model(ids, types, mask), labels)

    gradients = ms.grad(loss, grad_position=None, weights=parameters)()
    by_name = {p.name: g.asnumpy() for p, g in zip(parameters, gradients)}
    for name in ("ernie.encoder.layer.0.attention.self.query.weight", "ernie.encoder.layer.0.attention.self.key.weight",
                 "ernie.encoder.layer.1.attention.self.value.weight"):
        assert np.isfinite(by_name[name]).all() and np.abs(by_name[name]).max() > 1e-6, name

    rng = np.random.default_rng(3)
    originals = [p.asnumpy().copy() for p in parameters]
    directions = [rng.normal(0.0, 1.0, p.shape).astype(np.float32) for p in parameters]
    analytic = sum(float((g.asnumpy() * d).sum()) for g, d in zip(gradients, directions))
    step = 1e-3

    def shifted_loss(sign):
        for p, value, d in zip(parameters, originals, directions):
            p.set_data(Tensor(value + sign * step * d))
        return float(loss().asnumpy())

    numeric = (shifted_loss(1) - shifted_loss(-1)) / (2 * step)
    assert abs(analytic - numeric) <= 2e-3 * abs(analytic), (analytic, numeric)


@pytest.mark.usefixtures("graph_mode")
def test_exported_mindir_and_onnx_equal_the_model(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from src.serving.export import export_model
    from src.tasks.registry import TaskInfo, build_task
    vocab = tmp_path / "vocab.txt"
    specials = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
    vocab.write_text("".join(f"{token}\n" for token in specials + [f"t{i}" for i in range(5, 60)]), encoding="utf-8")
    info = TaskInfo("chnsenticorp", "classification", ["0", "1"], SEQ_LEN, str(vocab))
    config = nezha_config()
    ids, types, mask = random_inputs()
    batch = ids.shape[0]

    def fresh_model():  # MindSpore cannot export one Cell instance to ONNX twice
        model = randomize(build_task(info).build_model(config), seed=4)
        model.set_train(False)
        return model

    expected = fresh_model()(Tensor(ids), Tensor(types), Tensor(mask)).asnumpy()
    mindir = export_model(fresh_model(), info, str(tmp_path / "out" / "model"), "MINDIR", batch)
    onnx_path = export_model(fresh_model(), info, str(tmp_path / "out" / "model"), "ONNX", batch)
    # The exported graphs take (input_ids, input_mask, token_type_id), the seed's order.
    got_mindir = nn.GraphCell(ms.load(mindir))(Tensor(ids), Tensor(mask), Tensor(types))
    got_mindir = (got_mindir[0] if isinstance(got_mindir, (tuple, list)) else got_mindir).asnumpy()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got_onnx = session.run(None, {"input_ids": ids, "input_mask": mask, "token_type_id": types})[0]
    assert np.abs(expected[:, 0] - expected[:, 1]).max() > 1e-2  # outputs differ clearly between inputs
    np.testing.assert_allclose(got_mindir, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(got_onnx, expected, rtol=0, atol=TOLERANCE)


# ---------------------------------------------------------------------------------------------------------------------
# Config keys

BASE_KEYS = {"vocab_size": 60, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}


@pytest.mark.parametrize("extra, relative", [
    ({}, False),
    ({"use_relative_positions": True}, True),             # the seed's key
    ({"use_relative_position": True}, True),              # NEZHA's own bert_config.json
    ({"bert_network": "nezha"}, True),                    # the seed's network choice
    ({"bert_network": "base"}, False),
    ({"model_type": "nezha", "max_relative_position": 64}, True),  # HF NezhaConfig
    ({"bert_network": "nezha", "use_relative_positions": True, "max_relative_position": 16}, True),
])
def test_config_keys_that_switch_relative_positions(extra, relative):
    config = ErnieConfig.from_dict(dict(BASE_KEYS, **extra), source="cfg.json")
    assert config.use_relative_positions is relative
    assert config.max_relative_position == extra.get("max_relative_position", 64)
    again = ErnieConfig.from_dict(config.to_dict(), source="again.json")  # written configs read back the same
    assert again == config


@pytest.mark.parametrize("extra, words", [
    ({"bert_network": "nezha", "use_relative_positions": False}, ["conflicting", "bert_network", "use_relative"]),
    ({"bert_network": "large"}, ["bert_network", "'large'"]),
    ({"use_relative_positions": "yes"}, ["use_relative_positions", "true or false"]),
    ({"use_relative_position": 1}, ["use_relative_position", "true or false"]),
    ({"use_relative_positions": True, "max_relative_position": 0}, ["max_relative_position", "positive"]),
    ({"use_relative_positions": True, "max_relative_position": 2.5}, ["max_relative_position", "integer"]),
])
def test_bad_relative_position_settings_name_the_file_and_key(extra, words):
    with pytest.raises(ValueError) as error:
        ErnieConfig.from_dict(dict(BASE_KEYS, **extra), source="cfg.json")
    message = str(error.value)
    assert message.startswith("cfg.json: ")
    for word in words:
        assert word in message


def test_load_config_overrides_switch_it_on():
    config = load_config("tiny", use_relative_positions=True, max_relative_position=8)
    assert config.use_relative_positions and config.max_relative_position == 8


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoint conversion

def test_conversion_tables_know_there_is_no_absolute_table():
    from src.convert_checkpoint import expected_parameters
    from src.heads import ErnieForPretraining
    config = nezha_config()
    model_shapes = {p.name: tuple(p.shape) for p in ErnieForPretraining(config).get_parameters()}
    assert expected_parameters(config) == model_shapes


def test_hf_export_of_a_relative_model_is_refused(tmp_path):
    from src.checkpoint import save_checkpoint
    from src.convert_checkpoint import export_hf
    config = nezha_config()
    model = randomize(ErnieForSequenceClassification(config, 2))
    save_checkpoint(model, str(tmp_path / "model.ckpt"))
    config.to_json_file(str(tmp_path / "ernie_config.json"))
    with pytest.raises(ValueError, match="use_relative_positions is set; HF's ERNIE has no relative positions"):
        export_hf(str(tmp_path / "model.ckpt"), str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()
