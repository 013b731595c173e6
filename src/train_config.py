"""The optional training configuration file (``--train_config FILE``): the model zoo ERNIE seed's table of
optimizer, learning-rate and loss-scale settings, in YAML or JSON, validated and normalised.

Layout (every key optional; the optimizer sections follow the seed's ``src/config.py``)::

    optimizer: AdamWeightDecay        # AdamWeightDecay | Lamb | Momentum (the section used)
    loss_scale_value: 65536           # dynamic loss scale (float16 compute): the initial value, divided by
    scale_factor: 2                   #   scale_factor on overflow and multiplied by it after
    scale_window: 1000                #   scale_window steps without overflow
    dtype: float32                    # parameters and inputs: only float32 is supported
    compute_type: float16             # float32 | float16 | bfloat16 (mstype.float16 etc. also accepted)
    AdamWeightDecay: {learning_rate: 5.0e-5, end_learning_rate: 0.0, power: 1.0, warmup_steps: 100,
                      decay_steps: 1000, weight_decay: 0.01, eps: 1.0e-6}
    Lamb: {learning_rate: 3.0e-4, end_learning_rate: 0.0, power: 2.0, warmup_steps: 100, decay_steps: 1000,
           weight_decay: 0.01, eps: 1.0e-8}
    Momentum: {learning_rate: 2.0e-5, end_learning_rate: 0.0, power: 1.0, warmup_steps: 0, decay_steps: 1000,
               momentum: 0.9}

Settings the file leaves out keep the values the toolkit used before the file existed (end learning rate 0, power 1,
eps 1e-6, momentum 0.9, loss scale 2^16 x2 every 1000 steps); ``learning_rate``, ``weight_decay``, ``warmup_steps``,
``decay_steps`` and ``compute_type`` left out (None) fall back to the command line. An unknown key, a duplicated key,
a wrong type or a value out of range is a ValueError naming the file and the key (and the closest known key).
"""
import dataclasses
import difflib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional

from .optimization import OPTIMIZERS

SCHEDULE_KEYS = ("learning_rate", "end_learning_rate", "power", "warmup_steps", "decay_steps")
SECTION_KEYS = {
    "AdamWeightDecay": SCHEDULE_KEYS + ("weight_decay", "eps"),
    "Lamb": SCHEDULE_KEYS + ("weight_decay", "eps"),
    "Momentum": SCHEDULE_KEYS + ("momentum",),
}
TOP_LEVEL_KEYS = ("optimizer", "loss_scale_value", "scale_factor", "scale_window", "dtype", "compute_type") \
    + OPTIMIZERS
COMPUTE_TYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class OptimizerSettings:
    """One optimizer's settings; None means: take the command line's value."""
    learning_rate: Optional[float] = None
    end_learning_rate: float = 0.0
    power: float = 1.0
    warmup_steps: Optional[int] = None   # None: --warmup_proportion of the total steps
    decay_steps: Optional[int] = None    # None: decay from the end of warm-up to the last step
    weight_decay: Optional[float] = None
    eps: float = 1e-6
    momentum: float = 0.9

    def with_overrides(self, **values):
        """A copy with the values that are not None replaced (command-line flags the user gave win)."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class LossScaleSettings:
    """``nn.DynamicLossScaleUpdateCell(loss_scale_value, scale_factor, scale_window)``, used with float16 compute."""
    loss_scale_value: float = 2.0 ** 16
    scale_factor: float = 2.0
    scale_window: int = 1000


@dataclass(frozen=True)
class TrainConfig:
    optimizer: Optional[str] = None       # None: the command line's --optimizer
    optimizers: dict = field(default_factory=lambda: {name: OptimizerSettings() for name in OPTIMIZERS})
    loss_scale: LossScaleSettings = LossScaleSettings()
    compute_type: Optional[str] = None    # None: the command line's / the model config's
    source: str = ""                      # the file it was read from ("" for the defaults)

    def optimizer_settings(self, name):
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}: choose one of {OPTIMIZERS}")
        return self.optimizers[name]

    def as_dict(self):
        """Plain values for task.json and the log."""
        return dataclasses.asdict(self)


def _suggestion(key, known):
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key_error(path, where, key, known):
    message = f"{path}: unknown key {where}{key!r}{_suggestion(key, known)}"
    if not where and any(key in keys for keys in SECTION_KEYS.values()):
        sections = [name for name, keys in SECTION_KEYS.items() if key in keys]
        message += f"; {key!r} belongs in an optimizer section ({', '.join(s + ':' for s in sections)})"
    return ValueError(message + f"; known keys: {', '.join(known)}")


# key -> (integer?, accepted?, what is accepted)
_VALUE_RULES = {
    "learning_rate": (False, lambda v: v > 0, "> 0"),
    "end_learning_rate": (False, lambda v: v >= 0, ">= 0"),
    "power": (False, lambda v: v > 0, "> 0"),
    "warmup_steps": (True, lambda v: v >= 0, ">= 0"),
    "decay_steps": (True, lambda v: v >= 1, ">= 1"),
    "weight_decay": (False, lambda v: v >= 0, ">= 0"),
    "eps": (False, lambda v: v > 0, "> 0"),
    "momentum": (False, lambda v: 0 <= v < 1, "in [0, 1)"),
    "loss_scale_value": (False, lambda v: v >= 1, ">= 1"),
    "scale_factor": (False, lambda v: v > 1, "> 1"),
    "scale_window": (True, lambda v: v >= 1, ">= 1"),
}


def _checked(path, key, value, rule):
    """``value`` as a float (or int) within its rule. Numeric strings are accepted because YAML 1.1 (PyYAML)
    reads ``1e-6``, written without a dot, as a string."""
    integer, accepted, accepted_text = _VALUE_RULES[rule]
    kind = "an integer" if integer else "a number"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{path}: {key} must be {kind}, got {value!r}")
    if integer:
        if value != int(value):
            raise ValueError(f"{path}: {key} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if not accepted(value):
        raise ValueError(f"{path}: {key} must be {accepted_text}, got {value!r}")
    return value


def _optimizer_section(path, name, section):
    if not isinstance(section, dict):
        raise ValueError(f"{path}: {name} must be a mapping of its settings, got {section!r}")
    values = {}
    for key, value in section.items():
        if key not in SECTION_KEYS[name]:
            raise _unknown_key_error(path, f"{name}.", key, SECTION_KEYS[name])
        values[key] = _checked(path, f"{name}.{key}", value, key)
    settings = OptimizerSettings(**values)
    if settings.learning_rate is not None and settings.end_learning_rate > settings.learning_rate:
        raise ValueError(f"{path}: {name}.end_learning_rate ({settings.end_learning_rate}) is above "
                         f"{name}.learning_rate ({settings.learning_rate})")
    if settings.decay_steps is not None and settings.warmup_steps is not None \
            and settings.decay_steps <= settings.warmup_steps:
        raise ValueError(f"{path}: {name}.decay_steps ({settings.decay_steps}) must be greater than "
                         f"{name}.warmup_steps ({settings.warmup_steps}): the decay counts from step 0")
    return settings


def _float_type(path, key, value):
    """'float16', 'mstype.float16', 'mindspore.float16' or 'ms.float16' -> 'float16'."""
    text = str(value)
    for prefix in ("mstype.", "mindspore.", "ms."):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text not in COMPUTE_TYPES:
        raise ValueError(f"{path}: {key} must be one of {COMPUTE_TYPES}, got {value!r}")
    return text


def _unique_keys_json(path):
    def hook(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"{path}: duplicated key {key!r}")
            seen.add(key)
        return dict(pairs)
    return hook


def _read_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if path.lower().endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_unique_keys_json(path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice (PyYAML would keep the last silently)."""

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ValueError(f"{path}:{key_node.start_mark.line + 1}: duplicated key {key!r}")
                seen.add(key)
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ValueError(f"{path}{line}: not valid YAML ({problem})") from None


def load_train_config(path):
    """Reads and validates the training configuration file ``path`` (``.json``: JSON; otherwise YAML) into a
    ``TrainConfig``."""
    data = _read_file(path)
    if data is None:
        raise ValueError(f"{path}: the file is empty (expected a mapping of settings)")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown_key_error(path, "", key, TOP_LEVEL_KEYS)
    optimizer = data.get("optimizer")
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise ValueError(f"{path}: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}"
                         f"{_suggestion(str(optimizer), OPTIMIZERS)}")
    loss_scale = LossScaleSettings(**{key: _checked(path, key, data[key], key)
                                      for key in ("loss_scale_value", "scale_factor", "scale_window") if key in data})
    if "dtype" in data and _float_type(path, "dtype", data["dtype"]) != "float32":
        raise ValueError(f"{path}: dtype {data['dtype']!r} is not supported: parameters and inputs stay float32; "
                         f"set compute_type for float16 or bfloat16 compute")
    compute_type = _float_type(path, "compute_type", data["compute_type"]) if "compute_type" in data else None
    optimizers = {name: _optimizer_section(path, name, data[name]) if name in data else OptimizerSettings()
                  for name in OPTIMIZERS}
    return TrainConfig(optimizer=optimizer, optimizers=optimizers, loss_scale=loss_scale, compute_type=compute_type,
                       source=os.path.abspath(path))
