"""ERNIE 1.0 encoder in MindSpore, optionally with NEZHA's functional relative positions.

A post-LayerNorm Transformer (word + position + token-type embeddings, embedding LayerNorm, N encoder layers,
tanh pooler over [CLS]). Cell attributes are named so that parameter names equal the Hugging Face ERNIE state-dict
keys (``embeddings.word_embeddings.weight``, ``encoder.layer.0.attention.self.query.weight`` ...): reading the module
tree tells the checkpoint layout, and HF checkpoints load without a name table.

With ``use_relative_positions`` (the seed's ``bert_network nezha``) attention follows NEZHA (Wei et al. 2019, section
3.2): fixed sinusoidal embeddings of the clipped relative distance j - i are added to the keys and the values, and,
as in NEZHA's released code and HF's ``NezhaModel``, the embeddings have no absolute position table.
"""
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Optional

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from .fileio import read_json, write_text
from .layers import AttentionContext, AttentionScores, Dense, Embedding, LayerNorm, Softmax, dropout

_DTYPES = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}
_ACTIVATIONS = ("relu", "gelu", "gelu_new", "tanh")
_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
          "max_position_embeddings", "type_vocab_size", "max_relative_position")
_PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob")
_POSITIVE_REALS = ("initializer_range", "layer_norm_eps")
_BOOLEANS = ("use_relative_positions",)
_BERT_NETWORKS = ("base", "nezha")  # the seed's bert_network: nezha is BERT-base with relative positions


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class ErnieConfig:
    """Hyper-parameters of an ERNIE encoder; reads ERNIE's own ``ernie_config.json``, HF ``config.json`` (ERNIE or
    NEZHA) and the seed's ``bert_network`` / ``use_relative_positions`` keys. ``source`` (not a field) names the file
    the values came from, for error messages."""
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
    use_relative_positions: bool = False
    max_relative_position: int = 64  # NEZHA's clipping distance (its released code and HF's NezhaConfig)

    source = "config"

    def __post_init__(self):
        if self.intermediate_size is None and isinstance(self.hidden_size, int):
            self.intermediate_size = 4 * self.hidden_size
        self.validate()

    def validate(self):
        """Types and ranges of every field; raises ValueError naming the key (``from_dict`` adds the file)."""
        for name in _SIZES:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        for name in _POSITIVE_REALS:
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in _BOOLEANS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r} ({type(value).__name__})")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {_ACTIVATIONS}")
        if self.compute_dtype not in _DTYPES:
            raise ValueError(f"compute_dtype {self.compute_dtype!r} is not one of {tuple(_DTYPES)}")

    def check_sequence_length(self, max_seq_len, source):
        """Raises unless sequences of ``max_seq_len`` tokens (set in ``source``, e.g. ``--max_seq_len``) fit the
        position table (absolute embeddings, or the relative-distance table with relative positions)."""
        if max_seq_len > self.max_position_embeddings:
            raise ValueError(f"{source}: max_seq_len {max_seq_len} is longer than max_position_embeddings "
                             f"{self.max_position_embeddings} in {self.source}")

    def check_type_vocab(self, needed, source):
        """Raises unless the model has ``needed`` token types (2 for the sentence pairs of ``source``)."""
        if needed > self.type_vocab_size:
            raise ValueError(f"{source} needs {needed} token types (sentence pairs) but type_vocab_size is "
                             f"{self.type_vocab_size} in {self.source}")

    @classmethod
    def from_dict(cls, values, source="config"):
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a JSON object of model settings, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known}
        missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
                   if k not in kwargs]
        if missing:
            raise ValueError(f"{source}: missing required keys {missing}")
        try:
            relative = _relative_positions_setting(values)
            if relative is not None:
                kwargs["use_relative_positions"] = relative
            config = cls(**kwargs)
        except ValueError as err:  # __post_init__ validates without knowing the source
            raise ValueError(f"{source}: {err}") from None
        config.source = source
        return config

    @classmethod
    def from_json_file(cls, path):
        return cls.from_dict(read_json(path), source=path)  # read_json names the file in its errors

    def to_dict(self):
        return asdict(self)

    def to_json_file(self, path):
        write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _relative_positions_setting(values):
    """``use_relative_positions`` from the keys that set it: ours (the seed's), NEZHA's own ``use_relative_position``,
    the seed's ``bert_network`` and HF's ``model_type: nezha``; None when none does. Disagreeing keys are an error."""
    said = {}
    for key in ("use_relative_positions", "use_relative_position"):
        if key in values:
            if not isinstance(values[key], bool):
                raise ValueError(f"{key} must be true or false, got {values[key]!r} ({type(values[key]).__name__})")
            said[key] = values[key]
    if "bert_network" in values:
        if values["bert_network"] not in _BERT_NETWORKS:
            raise ValueError(f"bert_network {values['bert_network']!r} is not one of {_BERT_NETWORKS}")
        said["bert_network"] = values["bert_network"] == "nezha"
    if values.get("model_type") == "nezha":  # HF's NezhaModel always uses relative positions
        said["model_type"] = True
    if len(set(said.values())) > 1:
        raise ValueError("conflicting relative-position settings: "
                         + ", ".join(f"{key}={values[key]!r}" for key in said))
    return next(iter(said.values())) if said else None


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
        # NEZHA has no absolute positions: its relative distances are the only position signal.
        self.absolute_positions = not config.use_relative_positions
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size, sigma)
        if self.absolute_positions:
            self.position_embeddings = Embedding(config.max_position_embeddings, config.hidden_size, sigma)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.hidden_size, sigma)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = dropout(config.hidden_dropout_prob)

    def construct(self, input_ids, token_type_ids):
        embeddings = self.word_embeddings(input_ids)
        if self.absolute_positions:
            # Positions are always 0..S-1 (ERNIE's position_ids are never anything else), so slice the table.
            embeddings = embeddings + self.position_embeddings.weight[:input_ids.shape[1]]
        embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


def relative_position_table(max_relative_position, depth):
    """NEZHA's functional relative position encoding: ``[2K + 1, depth]`` float32 with K = ``max_relative_position``.

    Row r encodes the clipped distance j - i = r - K: column 2k holds sin(r / 10000^(2k / depth)), column 2k + 1
    cos(r / 10000^(2k / depth)). The sinusoid takes the row number r, not j - i itself: NEZHA's released code and
    HF's port do so, and their pre-trained weights were fitted to it (the paper writes the formula with j - i).
    """
    rows = np.arange(2 * max_relative_position + 1, dtype=np.float64)[:, None]
    angles = rows / np.power(10000.0, np.arange(0, depth, 2, dtype=np.float64) / depth)
    table = np.zeros((rows.shape[0], depth))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)[:, :depth // 2]
    return table.astype(np.float32)


class RelativePositionEmbeddings(nn.Cell):
    """``(seq_len) -> [S, S, head_size]``: a_ij, the fixed embedding of the clipped distance j - i, shared by all heads
    and layers (NEZHA's a^K_ij = a^V_ij). Nothing here is trained, so checkpoints hold none of it."""

    def __init__(self, config):
        super().__init__()
        max_distance = config.max_relative_position
        positions = np.arange(config.max_position_embeddings)
        distance = np.clip(positions[None, :] - positions[:, None], -max_distance, max_distance)
        self.rows = Tensor((distance + max_distance).astype(np.int32))
        head_size = config.hidden_size // config.num_attention_heads
        self.table = Tensor(relative_position_table(max_distance, head_size))

    def construct(self, seq_len):
        return ops.gather(self.table, self.rows[:seq_len, :seq_len], 0)


class ErnieSelfAttention(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.scale = 1.0 / math.sqrt(self.head_size)
        self.use_relative_positions = config.use_relative_positions
        sigma = config.initializer_range
        self.query = Dense(config.hidden_size, config.hidden_size, sigma, dtype)
        self.key = Dense(config.hidden_size, config.hidden_size, sigma, dtype)
        self.value = Dense(config.hidden_size, config.hidden_size, sigma, dtype)
        self.softmax = Softmax()
        self.dropout = dropout(config.attention_probs_dropout_prob)
        self.scores = AttentionScores(dtype)
        self.context = AttentionContext(dtype)
        self.relative_scores = ops.BatchMatMul(transpose_b=True)
        self.relative_context = ops.BatchMatMul()

    def split_heads(self, x):
        """``[B, S, H * d] -> [B, S, H, d]``: the heads stay where the projection wrote them (a reshape, no copy)."""
        batch, seq_len, _ = x.shape
        return ops.reshape(x, (batch, seq_len, self.num_heads, self.head_size))

    def relative_scores_term(self, query, relative_embeddings):
        """``query [B, S, N, d]``, ``relative [S, S, d] -> [B, N, S, S]`` with entry (i, j) q_i . a_ij: for each query
        i, one batched matmul over i, as NEZHA's code does (no [B, N, S, S, d] product is formed)."""
        batch, seq_len, heads, width = query.shape
        rows = ops.reshape(ops.transpose(query, (1, 0, 2, 3)), (seq_len, batch * heads, width))
        out = self.relative_scores(rows, relative_embeddings)
        return ops.transpose(ops.reshape(out, (seq_len, batch, heads, seq_len)), (1, 2, 0, 3))

    def relative_context_term(self, probs, relative_embeddings):
        """``probs [B, N, S, S]``, ``relative [S, S, d] -> [B, S, N, d]`` with row i sum_j p_ij a_ij, batched as
        above."""
        batch, heads, seq_len, _ = probs.shape
        rows = ops.reshape(ops.transpose(probs, (2, 0, 1, 3)), (seq_len, batch * heads, seq_len))
        out = self.relative_context(rows, relative_embeddings)
        return ops.transpose(ops.reshape(out, (seq_len, batch, heads, -1)), (1, 0, 2, 3))

    def construct(self, hidden_states, attention_bias, relative_embeddings=None):
        batch, seq_len, hidden = hidden_states.shape
        query = self.split_heads(self.query(hidden_states) * self.scale)
        key = self.split_heads(self.key(hidden_states))
        value = self.split_heads(self.value(hidden_states))
        scores = self.scores(query, key)
        if self.use_relative_positions:  # e_ij += q_i . a^K_ij (q is already scaled by 1/sqrt(d))
            scores = scores + self.relative_scores_term(query, relative_embeddings)
        scores = scores + attention_bias
        probs = self.dropout(self.softmax(scores))
        context = self.context(probs, value)
        if self.use_relative_positions:  # z_i += sum_j p_ij a^V_ij
            context = context + self.relative_context_term(probs, relative_embeddings)
        return ops.reshape(context, (batch, seq_len, hidden))


class ErnieSelfOutput(nn.Cell):
    """Projection, dropout, residual and post-LayerNorm after attention."""

    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.hidden_size, config.initializer_range, dtype)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = dropout(config.hidden_dropout_prob)

    def construct(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class ErnieAttention(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.self = ErnieSelfAttention(config, dtype)
        self.output = ErnieSelfOutput(config, dtype)

    def construct(self, hidden_states, attention_bias, relative_embeddings=None):
        return self.output(self.self(hidden_states, attention_bias, relative_embeddings), hidden_states)


class ErnieIntermediate(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.intermediate_size, config.initializer_range, dtype,
                           activation_name=config.hidden_act)

    def construct(self, hidden_states):
        return self.dense(hidden_states)


class ErnieOutput(nn.Cell):
    """FFN down-projection, dropout, residual and post-LayerNorm."""

    def __init__(self, config, dtype):
        super().__init__()
        self.dense = Dense(config.intermediate_size, config.hidden_size, config.initializer_range, dtype)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = dropout(config.hidden_dropout_prob)

    def construct(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class ErnieLayer(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.attention = ErnieAttention(config, dtype)
        self.intermediate = ErnieIntermediate(config, dtype)
        self.output = ErnieOutput(config, dtype)

    def construct(self, hidden_states, attention_bias, relative_embeddings=None):
        attention_output = self.attention(hidden_states, attention_bias, relative_embeddings)
        return self.output(self.intermediate(attention_output), attention_output)


class ErnieEncoder(nn.Cell):
    def __init__(self, config, dtype):
        super().__init__()
        self.layer = nn.CellList([ErnieLayer(config, dtype) for _ in range(config.num_hidden_layers)])

    def construct(self, hidden_states, attention_bias, relative_embeddings=None):
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_bias, relative_embeddings)
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

    Inputs are int32 ``[batch, seq]``; ``attention_mask`` is 1 for real tokens and 0 for padding. Without the pooling
    layer (``add_pooling_layer=False``, the token and span heads, as in Hugging Face) ``pooled_output`` is None.
    """

    def __init__(self, config, add_pooling_layer=True):
        super().__init__()
        self.config = config
        dtype = _DTYPES[config.compute_dtype]
        self.embeddings = ErnieEmbeddings(config)
        self.use_relative_positions = config.use_relative_positions
        if self.use_relative_positions:
            self.relative_positions = RelativePositionEmbeddings(config)
        self.encoder = ErnieEncoder(config, dtype)
        self.pooler = ErniePooler(config, dtype) if add_pooling_layer else None

    def construct(self, input_ids, token_type_ids, attention_mask):
        # Padding keys get -10000 before the softmax, as in ERNIE's Paddle implementation.
        mask = ops.cast(attention_mask, ms.float32)
        batch, seq_len = mask.shape
        attention_bias = ops.reshape((1.0 - mask) * -10000.0, (batch, 1, 1, seq_len))
        # Broadcast to the scores' shape once here rather than in every layer's add: MindSpore's CPU runtime keeps
        # the expanded copy of a broadcast operand for the whole step (ERNIE-base, 8 x 128: 0.3 GB less).
        attention_bias = ops.broadcast_to(attention_bias, (batch, self.config.num_attention_heads, seq_len, seq_len))
        embeddings = self.embeddings(input_ids, token_type_ids)
        if self.use_relative_positions:
            sequence_output = self.encoder(embeddings, attention_bias, self.relative_positions(seq_len))
        else:
            sequence_output = self.encoder(embeddings, attention_bias)
        if self.pooler is None:
            return sequence_output, None
        return sequence_output, self.pooler(sequence_output)


def check_compute_dtype(device_target, compute_dtype):
    """float16 is a GPU/Ascend feature (MindSpore's CPU float16 MatMul is slower than float32). bfloat16 on CPU runs
    the bf16 GEMM operators of ``src.kernels`` (MindSpore's CPU MatMul has no bf16 kernel), where the CPU has
    AVX512_BF16 and g++ can build them."""
    if device_target == "CPU" and compute_dtype == "float16":
        raise ValueError("compute_dtype float16 is not supported on CPU (MindSpore's CPU float16 MatMul is slower than "
                         "float32); use float32, or bfloat16 where the CPU has AVX512_BF16")
    if device_target == "CPU" and compute_dtype == "bfloat16":
        from .kernels.build import KernelUnavailable, check_bf16_cpu, kernel_library
        try:
            check_bf16_cpu()
            kernel_library()
        except KernelUnavailable as err:
            raise ValueError(f"compute_dtype bfloat16 on CPU: {err}") from None


def numpy_parameters(cell):
    """``{name: numpy array}`` of a cell's parameters (a convenience for conversion and tests)."""
    return {p.name: p.asnumpy() for p in cell.get_parameters()}


