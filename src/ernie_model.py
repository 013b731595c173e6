"""ERNIE 1.0 encoder in MindSpore.

A post-LayerNorm Transformer (word + position + token-type embeddings, embedding LayerNorm, N encoder layers,
tanh pooler over [CLS]). Cell attributes are named so that parameter names equal the Hugging Face ERNIE state-dict
keys (``embeddings.word_embeddings.weight``, ``encoder.layer.0.attention.self.query.weight`` ...): reading the module
tree tells the checkpoint layout, and HF checkpoints load without a name table.
"""
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Optional

import mindspore as ms
from mindspore import nn, ops

from .fileio import read_json, write_text
from .layers import Dense, Embedding, LayerNorm, activation, swap_axes_1_2

_DTYPES = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}
_ACTIVATIONS = ("relu", "gelu", "gelu_new", "tanh")


@dataclass
class ErnieConfig:
    """Hyper-parameters of an ERNIE encoder; reads ERNIE's own ``ernie_config.json`` and HF ``config.json``."""
    vocab_size: int = 18000
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: Optional[int] = None  # ERNIE's config omits it: the FFN is then 4 x hidden
    hidden_act: str = "relu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 513
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5  # Paddle's layer_norm default, which ERNIE 1.0 was trained with
    compute_dtype: str = "float32"

    def __post_init__(self):
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        self.validate()

    def validate(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {_ACTIVATIONS}")
        if self.compute_dtype not in _DTYPES:
            raise ValueError(f"compute_dtype {self.compute_dtype!r} is not one of {tuple(_DTYPES)}")
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values, source="config"):
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known}
        missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
                   if k not in kwargs]
        if missing:
            raise ValueError(f"{source}: missing required keys {missing}")
        try:
            return cls(**kwargs)
        except ValueError as err:  # __post_init__ validates without knowing the source
            raise ValueError(f"{source}: {err}") from None

    @classmethod
    def from_json_file(cls, path):
        return cls.from_dict(read_json(path), source=path)

    def to_dict(self):
        return asdict(self)

    def to_json_file(self, path):
        write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


PRESETS = {
    "base": dict(vocab_size=18000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
    # Small enough for tests and CPU demos, same vocabulary so ERNIE's real vocab.txt works with it.
    "tiny": dict(vocab_size=18000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=512, max_position_embeddings=513),
}


def load_config(name_or_path, **overrides):
    """A preset name (``base``, ``tiny``) or a path to ``ernie_config.json`` / HF ``config.json``."""
    if name_or_path in PRESETS:
        values = dict(PRESETS[name_or_path])
    elif os.path.isdir(name_or_path):
        for candidate in ("ernie_config.json", "config.json"):
            path = os.path.join(name_or_path, candidate)
            if os.path.isfile(path):
                return load_config(path, **overrides)
        raise FileNotFoundError(f"{name_or_path}: no ernie_config.json or config.json in this directory")
    elif os.path.isfile(name_or_path) or name_or_path.endswith(".json"):
        config = ErnieConfig.from_json_file(name_or_path)
        values = config.to_dict()
    else:
        raise ValueError(f"unknown model config {name_or_path!r}: give a preset ({', '.join(PRESETS)}) "
                         f"or a path to ernie_config.json")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ErnieConfig.from_dict(values, source=str(name_or_path))


class ErnieEmbeddings(nn.Cell):
    def __init__(self, config):
        super().__init__()
        sigma = config.initializer_range
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size, sigma)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.hidden_size, sigma)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.hidden_size, sigma)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)

    def construct(self, input_ids, token_type_ids):
        seq_len = input_ids.shape[1]
        # Positions are always 0..S-1 (ERNIE's position_ids are never anything else), so slice the table.
        positions = self.position_embeddings.weight[:seq_len]
        embeddings = self.word_embeddings(input_ids) + positions + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


class ErnieSelfAttention(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.scale = 1.0 / math.sqrt(self.head_size)
        sigma = config.initializer_range
        self.query = Dense(config.hidden_size, config.hidden_size, sigma, dtype)
        self.key = Dense(config.hidden_size, config.hidden_size, sigma, dtype)
        self.value = Dense(config.hidden_size, config.hidden_size, sigma, dtype)
        self.dropout = nn.Dropout(p=config.attention_probs_dropout_prob)
        self.scores = ops.BatchMatMul(transpose_b=True)
        self.context = ops.BatchMatMul()

    def split_heads(self, x):
        batch, seq_len, _ = x.shape
        return swap_axes_1_2(ops.reshape(x, (batch, seq_len, self.num_heads, self.head_size)))

    def construct(self, hidden_states, attention_bias):
        batch, seq_len, hidden = hidden_states.shape
        query = self.split_heads(self.query(hidden_states) * self.scale)
        key = self.split_heads(self.key(hidden_states))
        value = self.split_heads(self.value(hidden_states))
        scores = self.scores(query, key) + attention_bias
        if self.training:
            # exp(log_softmax) is the softmax within float32 rounding, but in training MindSpore's CPU Softmax holds
            # about five score-sized tensors per layer until the backward pass and these ops two (ERNIE-base,
            # batch 8 x 512: 3.5 GB less). Inference keeps the single, faster Softmax kernel.
            probs = self.dropout(ops.exp(ops.log_softmax(scores, -1)))
        else:
            probs = ops.softmax(scores, -1)
        context = swap_axes_1_2(self.context(probs, value))
        return ops.reshape(context, (batch, seq_len, hidden))


class ErnieSelfOutput(nn.Cell):
    """Projection, dropout, residual and post-LayerNorm after attention."""

    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.hidden_size, config.initializer_range, dtype)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)

    def construct(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class ErnieAttention(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.self = ErnieSelfAttention(config, dtype)
        self.output = ErnieSelfOutput(config, dtype)

    def construct(self, hidden_states, attention_bias):
        return self.output(self.self(hidden_states, attention_bias), hidden_states)


class ErnieIntermediate(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.intermediate_size, config.initializer_range, dtype)
        self.intermediate_act_fn = activation(config.hidden_act)

    def construct(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class ErnieOutput(nn.Cell):
    """FFN down-projection, dropout, residual and post-LayerNorm."""

    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.intermediate_size, config.hidden_size, config.initializer_range, dtype)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)

    def construct(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class ErnieLayer(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.attention = ErnieAttention(config, dtype)
        self.intermediate = ErnieIntermediate(config, dtype)
        self.output = ErnieOutput(config, dtype)

    def construct(self, hidden_states, attention_bias):
        attention_output = self.attention(hidden_states, attention_bias)
        return self.output(self.intermediate(attention_output), attention_output)


class ErnieEncoder(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.layer = nn.CellList([ErnieLayer(config, dtype) for _ in range(config.num_hidden_layers)])

    def construct(self, hidden_states, attention_bias):
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_bias)
        return hidden_states


class ErniePooler(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.hidden_size, config.initializer_range, dtype)
        self.activation = nn.Tanh()

    def construct(self, sequence_output):
        return self.activation(self.dense(sequence_output[:, 0]))


class ErnieModel(nn.Cell):
    """``model(input_ids, token_type_ids, attention_mask) -> (sequence_output, pooled_output)``.

    Inputs are int32 ``[batch, seq]``; ``attention_mask`` is 1 for real tokens and 0 for padding.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        dtype = _DTYPES[config.compute_dtype]
        self.embeddings = ErnieEmbeddings(config)
        self.encoder = ErnieEncoder(config, dtype)
        self.pooler = ErniePooler(config, dtype)

    def construct(self, input_ids, token_type_ids, attention_mask):
        # Padding keys get -10000 before the softmax, as in ERNIE's Paddle implementation.
        mask = ops.cast(attention_mask, ms.float32)
        batch, seq_len = mask.shape
        attention_bias = ops.reshape((1.0 - mask) * -10000.0, (batch, 1, 1, seq_len))
        # Broadcast to the scores' shape once here rather than in every layer's add: MindSpore's CPU runtime keeps
        # the expanded copy of a broadcast operand for the whole step (ERNIE-base, 8 x 128: 0.3 GB less).
        attention_bias = ops.broadcast_to(attention_bias, (batch, self.config.num_attention_heads, seq_len, seq_len))
        sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids), attention_bias)
        return sequence_output, self.pooler(sequence_output)


def check_compute_dtype(device_target, compute_dtype):
    """Reduced precision is a GPU/Ascend feature: MindSpore's CPU MatMul has no bf16 kernel and fp16 is slower."""
    if device_target == "CPU" and compute_dtype != "float32":
        raise ValueError(f"compute_dtype {compute_dtype} is not supported on CPU (MindSpore's CPU MatMul kernels "
                         f"are float32 only); use float32")


def numpy_parameters(cell):
    """``{name: numpy array}`` of a cell's parameters (a convenience for conversion and tests)."""
    return {p.name: p.asnumpy() for p in cell.get_parameters()}


