"""The training configuration file (src/train_config.py): YAML and JSON give the same settings, defaults equal the
values the toolkit had fixed, and every kind of mistake is an error naming the file and the key."""
import json

import pytest
from mindspore import nn

from src.optimization import build_optimizer
from src.train_config import LossScaleSettings, OptimizerSettings, TrainConfig, load_train_config

SEED_STYLE_YAML = """\
optimizer: Lamb
loss_scale_value: 4294967296   # 2^32, the seed's fine-tuning value
scale_factor: 2
scale_window: 500
dtype: mstype.float32
compute_type: mstype.float16
AdamWeightDecay:
  learning_rate: 1.0e-4
  end_learning_rate: 0.0
  power: 5.0
  weight_decay: 0.01
  eps: 1e-6          # PyYAML reads this as a string; accepted as a number
  warmup_steps: 5000
  decay_steps: 100000
Lamb:
  learning_rate: 3.0e-4
  end_learning_rate: 0.0
  power: 2.0
  warmup_steps: 10000
  decay_steps: 1000000
  weight_decay: 0.01
  eps: 1.0e-8
Momentum:
  learning_rate: 2.0e-5
  momentum: 0.9
"""

SEED_STYLE = {
    "optimizer": "Lamb", "loss_scale_value": 2 ** 32, "scale_factor": 2, "scale_window": 500,
    "dtype": "mstype.float32", "compute_type": "mstype.float16",
    "AdamWeightDecay": {"learning_rate": 1e-4, "end_learning_rate": 0.0, "power": 5.0, "weight_decay": 0.01,
                        "eps": 1e-6, "warmup_steps": 5000, "decay_steps": 100000},
    "Lamb": {"learning_rate": 3e-4, "end_learning_rate": 0.0, "power": 2.0, "warmup_steps": 10000,
             "decay_steps": 1000000, "weight_decay": 0.01, "eps": 1e-8},
    "Momentum": {"learning_rate": 2e-5, "momentum": 0.9},
}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_yaml_and_json_load_to_the_same_settings(tmp_path):
    from_yaml = load_train_config(write(tmp_path, "train.yaml", SEED_STYLE_YAML))
    from_json = load_train_config(write(tmp_path, "train.json", json.dumps(SEED_STYLE)))
    assert dataclass_without_source(from_yaml) == dataclass_without_source(from_json)
    assert from_yaml.optimizer == "Lamb" and from_yaml.compute_type == "float16"
    assert from_yaml.loss_scale == LossScaleSettings(2.0 ** 32, 2.0, 500)
    assert from_yaml.optimizer_settings("AdamWeightDecay") == OptimizerSettings(
        learning_rate=1e-4, end_learning_rate=0.0, power=5.0, warmup_steps=5000, decay_steps=100000,
        weight_decay=0.01, eps=1e-6)
    assert from_yaml.optimizer_settings("Lamb").eps == 1e-8
    assert from_yaml.optimizer_settings("Momentum") == OptimizerSettings(learning_rate=2e-5, momentum=0.9)
    assert from_yaml.source == str(tmp_path / "train.yaml")
    assert json.loads(json.dumps(from_yaml.as_dict()))["optimizers"]["Lamb"]["decay_steps"] == 1000000


def dataclass_without_source(config):
    return {k: v for k, v in config.as_dict().items() if k != "source"}


def test_defaults_are_the_values_the_code_had_fixed(tmp_path):
    config = load_train_config(write(tmp_path, "t.yaml", "optimizer: Momentum\n"))
    assert config == TrainConfig(optimizer="Momentum", source=config.source)
    assert config.loss_scale == LossScaleSettings(2.0 ** 16, 2.0, 1000)
    settings = config.optimizer_settings("AdamWeightDecay")
    assert (settings.end_learning_rate, settings.power, settings.eps, settings.momentum) == (0.0, 1.0, 1e-6, 0.9)
    assert (settings.learning_rate, settings.weight_decay, settings.warmup_steps, settings.decay_steps) == \
        (None, None, None, None)  # taken from the command line
    assert config.compute_type is None


def test_flags_override_the_file_and_settings_reach_build_optimizer(tmp_path):
    config = load_train_config(write(tmp_path, "t.yaml", SEED_STYLE_YAML))
    settings = config.optimizer_settings("AdamWeightDecay").with_overrides(learning_rate=5e-5, warmup_steps=None)
    assert settings.learning_rate == 5e-5 and settings.warmup_steps == 5000
    optimizer, schedule = build_optimizer(
        nn.Dense(2, 2).trainable_params(), "AdamWeightDecay", settings.learning_rate, total_steps=200000,
        weight_decay=settings.weight_decay, end_learning_rate=settings.end_learning_rate, power=settings.power,
        momentum=settings.momentum, eps=settings.eps, warmup_steps=settings.warmup_steps,
        decay_steps=settings.decay_steps)
    assert float(optimizer.eps.asnumpy()[0]) == pytest.approx(1e-6)
    assert schedule.value(6000) == pytest.approx(5e-5 * (1 - 6000 / 100000) ** 5.0)


@pytest.mark.parametrize("text,message", [
    ("optimiser: Lamb\n", r"t.yaml: unknown key 'optimiser' \(did you mean 'optimizer'\?\)"),
    ("loss_scale: 1024\n", r"t.yaml: unknown key 'loss_scale' \(did you mean 'loss_scale_value'\?\)"),
    ("AdamWeightDecay:\n  warmup_step: 10\n",
     r"t.yaml: unknown key AdamWeightDecay.'warmup_step' \(did you mean 'warmup_steps'\?\)"),
    ("Momentum:\n  eps: 1.0e-6\n", r"t.yaml: unknown key Momentum.'eps'.*known keys: learning_rate"),
    ("Adam:\n  eps: 1.0e-6\n", r"t.yaml: unknown key 'Adam'"),
    ("learning_rate: 1.0e-4\n", r"unknown key 'learning_rate'.*belongs in an optimizer section \(AdamWeightDecay:"),
])
def test_a_typo_in_a_key_names_the_key_and_the_file(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_train_config(write(tmp_path, "t.yaml", text))


@pytest.mark.parametrize("text,message", [
    ("optimizer: Adam\n", "t.yaml: optimizer must be one of"),
    ("loss_scale_value: 0.5\n", "t.yaml: loss_scale_value must be >= 1, got 0.5"),
    ("scale_factor: 1\n", "t.yaml: scale_factor must be > 1"),
    ("scale_window: 10.5\n", "t.yaml: scale_window must be an integer, got 10.5"),
    ("scale_window: true\n", "t.yaml: scale_window must be an integer, got True"),
    ("compute_type: float64\n", "t.yaml: compute_type must be one of"),
    ("dtype: float16\n", "t.yaml: dtype 'float16' is not supported"),
    ("Lamb:\n  learning_rate: fast\n", "t.yaml: Lamb.learning_rate must be a number, got 'fast'"),
    ("Lamb:\n  learning_rate: .nan\n", "t.yaml: Lamb.learning_rate must be a number, got nan"),
    ("Lamb:\n  power: 0\n", r"t.yaml: Lamb.power must be > 0"),
    ("Lamb:\n  warmup_steps: -1\n", r"t.yaml: Lamb.warmup_steps must be >= 0"),
    ("Momentum:\n  momentum: 1.5\n", r"t.yaml: Momentum.momentum must be in \[0, 1\)"),
    ("Lamb:\n  learning_rate: 1.0e-4\n  end_learning_rate: 1.0e-3\n", "end_learning_rate .* is above"),
    ("Lamb:\n  warmup_steps: 100\n  decay_steps: 50\n", "Lamb.decay_steps .50. must be greater than"),
    ("Lamb: 3\n", "t.yaml: Lamb must be a mapping"),
    ("- optimizer\n", "t.yaml: expected a mapping of settings at the top level"),
    ("", "t.yaml: the file is empty"),
    ("optimizer: Lamb\noptimizer: Momentum\n", "t.yaml:2: duplicated key 'optimizer'"),
    ("optimizer: [Lamb\n", r"t.yaml:2: not valid YAML"),
])
def test_wrong_values_name_the_key_and_the_file(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_train_config(write(tmp_path, "t.yaml", text))


def test_json_errors_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"t.json:2: not valid JSON"):
        load_train_config(write(tmp_path, "t.json", '{"optimizer": "Lamb",\n}'))
    with pytest.raises(ValueError, match="t.json: duplicated key 'scale_window'"):
        load_train_config(write(tmp_path, "t.json", '{"scale_window": 1, "scale_window": 2}'))
    with pytest.raises(ValueError, match=r"t.json: unknown key 'scale_windwo' \(did you mean 'scale_window'\?\)"):
        load_train_config(write(tmp_path, "t.json", '{"scale_windwo": 1}'))
    with pytest.raises(FileNotFoundError, match="nope.yaml: file not found"):
        load_train_config(str(tmp_path / "nope.yaml"))


def test_unknown_optimizer_name_for_settings():
    with pytest.raises(ValueError, match="unknown optimizer 'Adagrad'"):
        TrainConfig().optimizer_settings("Adagrad")


def test_the_documented_example_loads(tmp_path):
    import textwrap

    import src.train_config as module

    doc = module.__doc__
    example = textwrap.dedent(doc[doc.index("::\n") + 3:doc.index("Settings the file leaves out")])
    config = load_train_config(write(tmp_path, "example.yaml", example))
    assert config.optimizer == "AdamWeightDecay" and config.loss_scale == LossScaleSettings(65536.0, 2.0, 1000)
    assert config.optimizer_settings("Lamb").eps == 1e-8 and config.compute_type == "float16"
