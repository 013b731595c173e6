"""Model config validation (issue 13 item 7): every bad value is refused before any graph is built, with a message
that names the file and the key; valid ERNIE, HF and NEZHA configs still load."""
import json
import os
import re

import pytest

from src.ernie_model import ErnieConfig, load_config

VALID = {"attention_probs_dropout_prob": 0.1, "hidden_act": "relu", "hidden_dropout_prob": 0.1, "hidden_size": 128,
         "initializer_range": 0.02, "max_position_embeddings": 513, "num_attention_heads": 2,
         "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": 18000}


def write_config(tmp_path, **changes):
    values = dict(VALID, **changes)
    path = tmp_path / "ernie_config.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    return str(path)


BAD_VALUES = [  # (key, value, words the message must contain besides the file and the key)
    ("hidden_size", "128", ["integer", "'128'"]),
    ("num_hidden_layers", 2.5, ["integer", "2.5"]),
    ("num_hidden_layers", True, ["integer"]),
    ("vocab_size", None, ["integer"]),
    ("hidden_size", 0, ["positive"]),
    ("num_attention_heads", -2, ["positive"]),
    ("intermediate_size", 0, ["positive"]),
    ("max_position_embeddings", -1, ["positive"]),
    ("type_vocab_size", 0, ["positive"]),
    ("num_attention_heads", 3, ["multiple"]),
    ("layer_norm_eps", -1e-5, ["positive"]),
    ("layer_norm_eps", 0, ["positive"]),
    ("layer_norm_eps", "1e-5", ["positive"]),
    ("hidden_dropout_prob", 1.0, ["[0, 1)"]),
    ("hidden_dropout_prob", -0.1, ["[0, 1)"]),
    ("attention_probs_dropout_prob", 1.5, ["[0, 1)"]),
    ("attention_probs_dropout_prob", "0.1", ["[0, 1)"]),
    ("initializer_range", 0, ["positive"]),
    ("hidden_act", "swish", ["'swish'", "relu"]),
    ("hidden_act", 3, ["3"]),
    ("compute_dtype", "float64", ["'float64'"]),
    ("use_relative_positions", "true", ["true or false"]),
    ("use_relative_positions", 1, ["true or false"]),
    ("max_relative_position", 0, ["positive"]),
]


@pytest.mark.parametrize("key, value, words", BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_value_names_file_and_key(tmp_path, key, value, words):
    path = write_config(tmp_path, **{key: value})
    for read in (ErnieConfig.from_json_file, load_config):
        with pytest.raises(ValueError) as error:
            read(path)
        message = str(error.value)
        assert message.startswith(f"{path}: "), message
        assert key in message, message
        for word in words:
            assert word in message, message


def test_not_an_object_and_missing_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: expected a JSON object"):
        load_config(str(path))
    path.write_text(json.dumps({"hidden_size": 128}), encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: missing required keys .*num_hidden_layers"):
        load_config(str(path))


def test_non_utf8_config_names_the_file(tmp_path):
    path = tmp_path / "ernie_config.json"
    path.write_bytes(json.dumps(VALID).encode("utf-8").replace(b'"relu"', b'"r\xe9lu"'))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}:1: not valid UTF-8"):
        load_config(str(path))


def test_overrides_are_validated_and_name_the_preset():
    with pytest.raises(ValueError, match="^tiny: num_hidden_layers must be an integer"):
        load_config("tiny", num_hidden_layers=2.5)


def test_check_sequence_length(tmp_path):
    config = load_config(write_config(tmp_path, max_position_embeddings=64))
    config.check_sequence_length(64, "--max_seq_len")
    with pytest.raises(ValueError) as error:
        config.check_sequence_length(128, "--max_seq_len")
    message = str(error.value)
    assert message.startswith("--max_seq_len: max_seq_len 128")
    assert "max_position_embeddings 64" in message and str(tmp_path / "ernie_config.json") in message


def test_check_type_vocab(tmp_path):
    config = load_config(write_config(tmp_path, type_vocab_size=1))
    config.check_type_vocab(1, "train.tsv")  # single sentences need one type
    with pytest.raises(ValueError) as error:
        config.check_type_vocab(2, "train.tsv")
    message = str(error.value)
    assert message.startswith("train.tsv needs 2 token types")
    assert "type_vocab_size is 1" in message and str(tmp_path / "ernie_config.json") in message


def test_valid_configs_still_load(tmp_path):
    config = load_config(write_config(tmp_path))
    assert (config.intermediate_size, config.layer_norm_eps, config.use_relative_positions) == (512, 1e-5, False)
    # NEZHA's own bert_config.json (key use_relative_position, BERT extras such as pooler_fc_size ignored).
    nezha = dict(VALID, hidden_act="gelu", intermediate_size=512, vocab_size=21128, use_relative_position=True,
                 directionality="bidi", pooler_fc_size=128, pooler_type="first_token_transform")
    config = load_config(write_config(tmp_path, **nezha))
    assert config.use_relative_positions and config.max_relative_position == 64 and config.hidden_act == "gelu"
    # A config we wrote reads back equal.
    path = str(tmp_path / "written.json")
    config.to_json_file(path)
    assert load_config(path) == config


def test_hf_ernie_config_loads():
    transformers = pytest.importorskip("transformers")
    values = transformers.ErnieConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128).to_dict()
    config = ErnieConfig.from_dict(values, source="config.json")
    assert (config.hidden_act, config.layer_norm_eps, config.use_relative_positions) == ("gelu", 1e-12, False)


def test_real_ernie_config_loads(shared_data):
    path = os.path.join(shared_data, "ernie_1.0", "ernie_config.json")
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent")
    config = load_config(path)
    assert (config.hidden_size, config.num_hidden_layers, config.max_position_embeddings) == (768, 12, 513)
    config.check_sequence_length(512, "--max_seq_len")
    config.check_type_vocab(2, "pairs")
