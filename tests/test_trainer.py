"""The shared training loop: it learns, logs, keeps checkpoints, and a killed run resumes to the same weights."""
import json
import os

import numpy as np
import pytest

from conftest import custom_kernels_unavailable
from src.checkpoint import read_checkpoint
from src.ernie_model import load_config
from src.heads import ErnieForSequenceClassification
from src.losses import SequenceClassificationLoss
from src.trainer import TrainingConfig, predict, train

COLUMNS = ("input_ids", "segment_ids", "input_mask", "label_ids")  # the loss cell's argument order


def toy_data(n=48, seq_len=8, seed=0):
    """Label = whether token 7 occurs: learnable in a few dozen steps by a tiny encoder."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(8, 40, (n, seq_len)).astype(np.int32)
    labels = rng.integers(0, 2, n).astype(np.int32)
    ids[labels == 1, rng.integers(1, seq_len, int(labels.sum()))] = 7
    return {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids), "label_ids": labels}


def build(seed=0, dropout=0.0, fused=False):
    """A tiny classifier; ``fused``: with the fused CPU kernels (LayerNorm, dropout)."""
    import mindspore as ms
    from src.layers import use_fused_cpu_kernels
    ms.set_seed(seed)
    config = load_config("tiny", vocab_size=40, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    use_fused_cpu_kernels(fused)
    try:
        model = ErnieForSequenceClassification(config, 2)
    finally:
        use_fused_cpu_kernels(False)
    return model, SequenceClassificationLoss(model)


def accuracy(model, data):
    (logits,) = predict(model, data, ("input_ids", "segment_ids", "input_mask"), batch_size=16)
    return float((logits.argmax(-1) == data["label_ids"]).mean())


def config_for(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path), epochs=10, batch_size=8, learning_rate=1e-3, warmup_proportion=0.1,
                  log_every=2, progress_bar=False, seed=3)
    values.update(overrides)
    return TrainingConfig(**values)


def test_training_learns_logs_and_keeps_best_and_last_checkpoints(tmp_path):
    data = toy_data()
    model, loss_net = build()
    metrics = train(loss_net, model, data, COLUMNS, config_for(tmp_path, keep_checkpoint_max=2,
                                                               metric_for_best="accuracy", checkpoint_prefix="toy"),
                    evaluate=lambda m: {"accuracy": accuracy(m, data)})
    assert metrics["accuracy"] >= 0.9
    records = [json.loads(line) for line in open(tmp_path / "train_log.jsonl", encoding="utf-8")]
    train_records = [r for r in records if r["event"] == "train"]
    assert [r["step"] for r in train_records] == list(range(2, 61, 2))
    assert train_records[-1]["loss"] < train_records[0]["loss"]
    assert all(r["samples_per_s"] > 0 and r["learning_rate"] >= 0 for r in train_records)
    assert [r["epoch"] for r in records if r["event"] == "eval"] == list(range(1, 11))
    epoch_checkpoints = sorted(f for f in os.listdir(tmp_path) if f.startswith("toy-") and f != "toy-best.ckpt")
    assert epoch_checkpoints == ["toy-10_60.ckpt", "toy-9_54.ckpt"]  # keep_checkpoint_max=2
    assert "toy-best.ckpt" in os.listdir(tmp_path)
    state = read_checkpoint(str(tmp_path / "checkpoint_last.ckpt"))
    assert int(state["trainer_global_step"]) == 60 and int(state["trainer_epoch"]) == 10
    assert any(name.startswith("adam_m.") for name in state)
    assert not any(name.endswith(".tmp") or name.startswith(".") for name in os.listdir(tmp_path))


class Killed(Exception):
    pass


@pytest.mark.parametrize("fused", [False, True], ids=["stock, dropout 0", "fused CPU kernels, dropout 0.1"])
def test_killed_run_resumes_to_the_same_weights(tmp_path, fused):
    """Resumed from the step-10 checkpoint, a run ends with the uninterrupted run's weights, bit for bit: with
    MindSpore's operators without dropout (its CPU Dropout draws other masks in every run), and with the fused CPU
    kernels with dropout, whose masks follow the seed and the step."""
    if fused and custom_kernels_unavailable():
        pytest.skip(custom_kernels_unavailable())
    dropout = 0.1 if fused else 0.0
    data = toy_data()
    model, loss_net = build(dropout=dropout, fused=fused)
    train(loss_net, model, data, COLUMNS, config_for(tmp_path / "straight", epochs=4, fused_optimizer=fused))
    expected = {p.name: p.asnumpy() for p in model.get_parameters()}

    def kill_at_step_10(_):
        raise Killed  # evaluation runs right after the step-10 checkpoint is written, like a kill at that moment

    model, loss_net = build(dropout=dropout, fused=fused)
    with pytest.raises(Killed):
        train(loss_net, model, data, COLUMNS, config_for(tmp_path / "killed", epochs=4, save_every=5, eval_every=10,
                                                         fused_optimizer=fused), evaluate=kill_at_step_10)
    assert int(read_checkpoint(str(tmp_path / "killed" / "checkpoint_last.ckpt"))["trainer_global_step"]) == 10

    # fresh, differently initialised weights: all state must come from the checkpoint
    model, loss_net = build(seed=99, dropout=dropout, fused=fused)
    train(loss_net, model, data, COLUMNS, config_for(tmp_path / "killed", epochs=4, fused_optimizer=fused))
    for parameter in model.get_parameters():
        np.testing.assert_array_equal(parameter.asnumpy(), expected[parameter.name], err_msg=parameter.name)
    steps = [json.loads(line)["step"] for line in open(tmp_path / "killed" / "train_log.jsonl", encoding="utf-8")
             if '"train"' in line]
    assert steps == list(range(2, 25, 2))


def test_too_little_data_for_one_batch_is_a_clear_error(tmp_path):
    model, loss_net = build()
    with pytest.raises(ValueError, match="fewer than one global batch"):
        train(loss_net, model, toy_data(n=4), COLUMNS, config_for(tmp_path))


def test_max_steps_runs_past_the_epoch_count(tmp_path):
    model, loss_net = build()
    train(loss_net, model, toy_data(), COLUMNS, config_for(tmp_path, epochs=1, max_steps=15))  # 6 steps an epoch
    state = read_checkpoint(str(tmp_path / "checkpoint_last.ckpt"))
    assert int(state["trainer_global_step"]) == 15 and int(state["trainer_epoch"]) == 2


def test_best_checkpoint_metric_missing_from_the_evaluation_is_a_clear_error(tmp_path):
    model, loss_net = build()
    with pytest.raises(ValueError, match="'mcc', but the evaluation reports only \\['accuracy'\\]"):
        train(loss_net, model, toy_data(), COLUMNS, config_for(tmp_path, epochs=1, metric_for_best="mcc"),
              evaluate=lambda m: {"accuracy": 0.5})
