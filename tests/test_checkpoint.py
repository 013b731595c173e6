"""save_checkpoint / read_checkpoint / load_weights / from_pretrained on tiny models."""
import logging
import os
import stat

import numpy as np
import pytest
from mindspore import Tensor, nn

from src.checkpoint import from_pretrained, load_weights, read_checkpoint, save_checkpoint
from src.ernie_model import ErnieConfig, ErnieModel, numpy_parameters

CONFIG = ErnieConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     max_position_embeddings=12)


class TinyClassifier(nn.Cell):
    """A task model as src/heads.py builds them: the encoder as ``ernie`` plus a head."""

    def __init__(self, config, num_labels=3):
        super().__init__()
        self.ernie = ErnieModel(config)
        self.classifier = nn.Dense(config.hidden_size, num_labels)

    def construct(self, input_ids, token_type_ids, attention_mask):
        return self.classifier(self.ernie(input_ids, token_type_ids, attention_mask)[1])


def randomize(cell, seed):
    rng = np.random.default_rng(seed)
    for param in cell.get_parameters():
        param.set_data(Tensor(rng.standard_normal(param.shape).astype(np.float32)))
    return cell


def test_save_and_read_round_trip(tmp_path):
    model = randomize(TinyClassifier(CONFIG), 0)
    path = tmp_path / "sub" / "model.ckpt"
    save_checkpoint(model, str(path), append_dict={"global_step": 5})
    values = read_checkpoint(str(path))
    expected = numpy_parameters(model)
    assert set(values) == set(expected) | {"global_step"}
    for name, value in expected.items():
        np.testing.assert_array_equal(values[name], value)
    assert values["global_step"] == 5
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # not MindSpore's read-only 0400
    assert os.listdir(path.parent) == ["model.ckpt"]  # the temporary file was renamed


def test_save_list_overwrites_atomically(tmp_path):
    path = str(tmp_path / "w.ckpt")
    save_checkpoint([{"name": "a", "data": np.arange(3, dtype=np.float32)}], path)
    save_checkpoint([{"name": "b", "data": Tensor(np.ones((2, 2), np.float32))}], path)
    assert list(read_checkpoint(path)) == ["b"]
    with pytest.raises(ValueError, match="must end in .ckpt"):
        save_checkpoint([{"name": "a", "data": np.zeros(1, np.float32)}], str(tmp_path / "w.bin"))


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt: checkpoint file not found"):
        read_checkpoint(str(tmp_path / "nope.ckpt"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.ckpt: not a MindSpore checkpoint, or truncated"):
        read_checkpoint(str(junk))
    good = tmp_path / "good.ckpt"
    save_checkpoint(ErnieModel(CONFIG), str(good))
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(ValueError, match="cut.ckpt: not a MindSpore checkpoint, or truncated"):
        read_checkpoint(str(cut))


def test_task_checkpoint_into_bare_encoder(tmp_path):
    task = randomize(TinyClassifier(CONFIG), 1)
    path = str(tmp_path / "task.ckpt")
    save_checkpoint(task, path)
    encoder = ErnieModel(CONFIG)
    report = load_weights(encoder, path)
    assert report.missing == []
    assert sorted(report.unexpected) == ["classifier.bias", "classifier.weight"]
    assert report.loaded == len(numpy_parameters(encoder))
    source = numpy_parameters(task)
    for name, value in numpy_parameters(encoder).items():
        np.testing.assert_array_equal(value, source["ernie." + name])


def test_bare_encoder_into_task_model_skips_training_state(tmp_path):
    encoder = randomize(ErnieModel(CONFIG), 2)
    optimizer = nn.AdamWeightDecay(encoder.trainable_params())  # adam_m.*, adam_v.*, global_step
    path = str(tmp_path / "encoder.ckpt")
    entries = [{"name": p.name, "data": p} for p in optimizer.get_parameters()]
    assert any(e["name"].startswith("adam_m.") for e in entries) and any(e["name"] == "global_step" for e in entries)
    save_checkpoint(entries, path, append_dict={"epoch_num": 1, "learning_rate": 1e-4, "accuracy": 0.9})
    task = TinyClassifier(CONFIG)
    report = load_weights(task, path)
    assert sorted(report.missing) == ["classifier.bias", "classifier.weight"]
    assert report.unexpected == []
    assert report.loaded == len(numpy_parameters(encoder))
    loaded = numpy_parameters(task)
    for name, value in numpy_parameters(encoder).items():
        np.testing.assert_array_equal(loaded["ernie." + name], value)


def test_shape_mismatch_changes_nothing(tmp_path):
    other = randomize(ErnieModel(ErnieConfig(**dict(CONFIG.to_dict(), max_position_embeddings=20))), 3)
    path = str(tmp_path / "other.ckpt")
    save_checkpoint(other, path)
    model = ErnieModel(CONFIG)
    before = numpy_parameters(model)
    with pytest.raises(ValueError) as info:
        load_weights(model, path)
    message = str(info.value)
    assert "other.ckpt" in message and "embeddings.position_embeddings.weight" in message
    assert "(20, 16)" in message and "(12, 16)" in message
    after = numpy_parameters(model)
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_strict_and_dict_source():
    encoder = randomize(ErnieModel(CONFIG), 4)
    weights = {name: Tensor(value) for name, value in numpy_parameters(encoder).items()}
    with pytest.raises(ValueError, match="strict loading failed: 2 missing"):
        load_weights(TinyClassifier(CONFIG), weights, strict=True)
    weights["extra.weight"] = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="1 unexpected"):
        load_weights(ErnieModel(CONFIG), weights, strict=True)


def test_from_pretrained(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    encoder = randomize(ErnieModel(CONFIG), 5)
    path = str(tmp_path / "ernie.ckpt")
    save_checkpoint(encoder, path)
    with pytest.raises(FileNotFoundError, match="no ernie_config.json beside the checkpoint"):
        from_pretrained(path)
    CONFIG.to_json_file(str(tmp_path / "ernie_config.json"))
    model, report = from_pretrained(path, model_cls=TinyClassifier, num_labels=4)
    assert model.classifier.weight.shape == (4, CONFIG.hidden_size)
    assert sorted(report.missing) == ["classifier.bias", "classifier.weight"]
    assert "expected when starting a fine-tune" in caplog.text
    ids = Tensor(np.array([[1, 5, 7, 2, 0]], np.int32))
    types = Tensor(np.zeros((1, 5), np.int32))
    mask = Tensor(np.array([[1, 1, 1, 1, 0]], np.int32))
    model.set_train(False)
    encoder.set_train(False)
    np.testing.assert_array_equal(model.ernie(ids, types, mask)[1].asnumpy(), encoder(ids, types, mask)[1].asnumpy())
    bare, report = from_pretrained(path, config=str(tmp_path / "ernie_config.json"))
    assert isinstance(bare, ErnieModel) and report.missing == [] and report.unexpected == []
    _, report = from_pretrained(path, config=CONFIG, model_cls=ErnieModel)
    assert report.loaded == len(numpy_parameters(encoder))
