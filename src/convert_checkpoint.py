"""Migrate ERNIE 1.0 weights from Paddle or Hugging Face into a MindSpore checkpoint, and ours out to Hugging Face.

    python -m src.convert_checkpoint --format {paddle_static,pdparams,hf} --input PATH --output FILE.ckpt [--config F]
    python -m src.convert_checkpoint --to_hf --input FILE.ckpt --output DIR

Sources (read with numpy only; neither PaddlePaddle nor torch is needed):
  paddle_static  ERNIE 1.0's release: a ``params/`` directory (or its parent, holding ``ernie_config.json`` and
                 ``vocab.txt`` too) with one Paddle LoDTensor file per variable.
  pdparams       PaddleNLP's ``model_state.pdparams`` (a pickle of numpy arrays) with ``model_config.json`` or
                 ``config.json`` beside it.
  hf             a Hugging Face directory: ``config.json`` + ``model.safetensors``.
The checkpoint uses our task-model names (``ernie.*``, ``cls.*`` pre-training heads, fine-tune heads when present);
``ernie_config.json`` (and ``vocab.txt`` when the source has one) is written beside it. Every source tensor left
unused and every model parameter left unfilled is reported; a shape or layer-count mismatch writes nothing.
"""
import argparse
import json
import logging
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from .checkpoint import is_training_state, read_checkpoint, save_checkpoint
from .ernie_model import ErnieConfig
from .fileio import copy_atomic, read_json, replaced_atomically, write_text
from .paddle_format import paddle_static_dirs, read_paddle_static, read_pdparams

logger = logging.getLogger(__name__)

FORMATS = ("paddle_static", "pdparams", "hf")

# Our parameters ({i}: encoder layer) and their shapes in config terms: H hidden, F intermediate (FFN), V vocab,
# P positions, T token types, n any size (a fine-tune head's number of labels).
MODEL_PARAMETERS = {
    "ernie.embeddings.word_embeddings.weight": ("V", "H"),
    "ernie.embeddings.position_embeddings.weight": ("P", "H"),
    "ernie.embeddings.token_type_embeddings.weight": ("T", "H"),
    "ernie.embeddings.LayerNorm.weight": ("H",),
    "ernie.embeddings.LayerNorm.bias": ("H",),
    "ernie.encoder.layer.{i}.attention.self.query.weight": ("H", "H"),
    "ernie.encoder.layer.{i}.attention.self.query.bias": ("H",),
    "ernie.encoder.layer.{i}.attention.self.key.weight": ("H", "H"),
    "ernie.encoder.layer.{i}.attention.self.key.bias": ("H",),
    "ernie.encoder.layer.{i}.attention.self.value.weight": ("H", "H"),
    "ernie.encoder.layer.{i}.attention.self.value.bias": ("H",),
    "ernie.encoder.layer.{i}.attention.output.dense.weight": ("H", "H"),
    "ernie.encoder.layer.{i}.attention.output.dense.bias": ("H",),
    "ernie.encoder.layer.{i}.attention.output.LayerNorm.weight": ("H",),
    "ernie.encoder.layer.{i}.attention.output.LayerNorm.bias": ("H",),
    "ernie.encoder.layer.{i}.intermediate.dense.weight": ("F", "H"),
    "ernie.encoder.layer.{i}.intermediate.dense.bias": ("F",),
    "ernie.encoder.layer.{i}.output.dense.weight": ("H", "F"),
    "ernie.encoder.layer.{i}.output.dense.bias": ("H",),
    "ernie.encoder.layer.{i}.output.LayerNorm.weight": ("H",),
    "ernie.encoder.layer.{i}.output.LayerNorm.bias": ("H",),
    "ernie.pooler.dense.weight": ("H", "H"),
    "ernie.pooler.dense.bias": ("H",),
    "cls.predictions.transform.dense.weight": ("H", "H"),
    "cls.predictions.transform.dense.bias": ("H",),
    "cls.predictions.transform.LayerNorm.weight": ("H",),
    "cls.predictions.transform.LayerNorm.bias": ("H",),
    "cls.predictions.bias": ("V",),
    "cls.seq_relationship.weight": (2, "H"),
    "cls.seq_relationship.bias": (2,),
}
FINE_TUNE_PARAMETERS = {  # present only in fine-tuned checkpoints, so never reported as unfilled
    "classifier.weight": ("n", "H"),
    "classifier.bias": ("n",),
    "qa_outputs.weight": (2, "H"),
    "qa_outputs.bias": (2,),
}

# Name tables: (source name, our name, stored [in, out] so transposed). Tied tables list source copies of a weight
# that our model shares (checked equal to it, not stored twice).
PADDLE_STATIC = (
    ("word_embedding", "ernie.embeddings.word_embeddings.weight", False),
    ("pos_embedding", "ernie.embeddings.position_embeddings.weight", False),
    ("sent_embedding", "ernie.embeddings.token_type_embeddings.weight", False),
    ("pre_encoder_layer_norm_scale", "ernie.embeddings.LayerNorm.weight", False),
    ("pre_encoder_layer_norm_bias", "ernie.embeddings.LayerNorm.bias", False),
    ("encoder_layer_{i}_multi_head_att_query_fc.w_0", "ernie.encoder.layer.{i}.attention.self.query.weight", True),
    ("encoder_layer_{i}_multi_head_att_query_fc.b_0", "ernie.encoder.layer.{i}.attention.self.query.bias", False),
    ("encoder_layer_{i}_multi_head_att_key_fc.w_0", "ernie.encoder.layer.{i}.attention.self.key.weight", True),
    ("encoder_layer_{i}_multi_head_att_key_fc.b_0", "ernie.encoder.layer.{i}.attention.self.key.bias", False),
    ("encoder_layer_{i}_multi_head_att_value_fc.w_0", "ernie.encoder.layer.{i}.attention.self.value.weight", True),
    ("encoder_layer_{i}_multi_head_att_value_fc.b_0", "ernie.encoder.layer.{i}.attention.self.value.bias", False),
    ("encoder_layer_{i}_multi_head_att_output_fc.w_0", "ernie.encoder.layer.{i}.attention.output.dense.weight", True),
    ("encoder_layer_{i}_multi_head_att_output_fc.b_0", "ernie.encoder.layer.{i}.attention.output.dense.bias", False),
    ("encoder_layer_{i}_post_att_layer_norm_scale", "ernie.encoder.layer.{i}.attention.output.LayerNorm.weight", False),
    ("encoder_layer_{i}_post_att_layer_norm_bias", "ernie.encoder.layer.{i}.attention.output.LayerNorm.bias", False),
    ("encoder_layer_{i}_ffn_fc_0.w_0", "ernie.encoder.layer.{i}.intermediate.dense.weight", True),
    ("encoder_layer_{i}_ffn_fc_0.b_0", "ernie.encoder.layer.{i}.intermediate.dense.bias", False),
    ("encoder_layer_{i}_ffn_fc_1.w_0", "ernie.encoder.layer.{i}.output.dense.weight", True),
    ("encoder_layer_{i}_ffn_fc_1.b_0", "ernie.encoder.layer.{i}.output.dense.bias", False),
    ("encoder_layer_{i}_post_ffn_layer_norm_scale", "ernie.encoder.layer.{i}.output.LayerNorm.weight", False),
    ("encoder_layer_{i}_post_ffn_layer_norm_bias", "ernie.encoder.layer.{i}.output.LayerNorm.bias", False),
    ("pooled_fc.w_0", "ernie.pooler.dense.weight", True),
    ("pooled_fc.b_0", "ernie.pooler.dense.bias", False),
    ("mask_lm_trans_fc.w_0", "cls.predictions.transform.dense.weight", True),
    ("mask_lm_trans_fc.b_0", "cls.predictions.transform.dense.bias", False),
    ("mask_lm_trans_layer_norm_scale", "cls.predictions.transform.LayerNorm.weight", False),
    ("mask_lm_trans_layer_norm_bias", "cls.predictions.transform.LayerNorm.bias", False),
    ("mask_lm_out_fc.b_0", "cls.predictions.bias", False),
    ("next_sent_fc.w_0", "cls.seq_relationship.weight", True),
    ("next_sent_fc.b_0", "cls.seq_relationship.bias", False),
    ("cls_out_w", "classifier.weight", True),
    ("cls_out_b", "classifier.bias", False),
    ("cls_seq_label_out_w", "classifier.weight", True),
    ("cls_seq_label_out_b", "classifier.bias", False),
    ("cls_squad_out_w", "qa_outputs.weight", True),
    ("cls_squad_out_b", "qa_outputs.bias", False),
)
PADDLE_STATIC_TIED = (
    ("mask_lm_out_fc.w_0", "ernie.embeddings.word_embeddings.weight", True),  # only when weight sharing was off
)

PDPARAMS = (
    ("ernie.embeddings.word_embeddings.weight", "ernie.embeddings.word_embeddings.weight", False),
    ("ernie.embeddings.position_embeddings.weight", "ernie.embeddings.position_embeddings.weight", False),
    ("ernie.embeddings.token_type_embeddings.weight", "ernie.embeddings.token_type_embeddings.weight", False),
    ("ernie.embeddings.layer_norm.weight", "ernie.embeddings.LayerNorm.weight", False),
    ("ernie.embeddings.layer_norm.bias", "ernie.embeddings.LayerNorm.bias", False),
    ("ernie.encoder.layers.{i}.self_attn.q_proj.weight", "ernie.encoder.layer.{i}.attention.self.query.weight", True),
    ("ernie.encoder.layers.{i}.self_attn.q_proj.bias", "ernie.encoder.layer.{i}.attention.self.query.bias", False),
    ("ernie.encoder.layers.{i}.self_attn.k_proj.weight", "ernie.encoder.layer.{i}.attention.self.key.weight", True),
    ("ernie.encoder.layers.{i}.self_attn.k_proj.bias", "ernie.encoder.layer.{i}.attention.self.key.bias", False),
    ("ernie.encoder.layers.{i}.self_attn.v_proj.weight", "ernie.encoder.layer.{i}.attention.self.value.weight", True),
    ("ernie.encoder.layers.{i}.self_attn.v_proj.bias", "ernie.encoder.layer.{i}.attention.self.value.bias", False),
    ("ernie.encoder.layers.{i}.self_attn.out_proj.weight", "ernie.encoder.layer.{i}.attention.output.dense.weight",
     True),
    ("ernie.encoder.layers.{i}.self_attn.out_proj.bias", "ernie.encoder.layer.{i}.attention.output.dense.bias", False),
    ("ernie.encoder.layers.{i}.norm1.weight", "ernie.encoder.layer.{i}.attention.output.LayerNorm.weight", False),
    ("ernie.encoder.layers.{i}.norm1.bias", "ernie.encoder.layer.{i}.attention.output.LayerNorm.bias", False),
    ("ernie.encoder.layers.{i}.linear1.weight", "ernie.encoder.layer.{i}.intermediate.dense.weight", True),
    ("ernie.encoder.layers.{i}.linear1.bias", "ernie.encoder.layer.{i}.intermediate.dense.bias", False),
    ("ernie.encoder.layers.{i}.linear2.weight", "ernie.encoder.layer.{i}.output.dense.weight", True),
    ("ernie.encoder.layers.{i}.linear2.bias", "ernie.encoder.layer.{i}.output.dense.bias", False),
    ("ernie.encoder.layers.{i}.norm2.weight", "ernie.encoder.layer.{i}.output.LayerNorm.weight", False),
    ("ernie.encoder.layers.{i}.norm2.bias", "ernie.encoder.layer.{i}.output.LayerNorm.bias", False),
    ("ernie.pooler.dense.weight", "ernie.pooler.dense.weight", True),
    ("ernie.pooler.dense.bias", "ernie.pooler.dense.bias", False),
    ("cls.predictions.transform.weight", "cls.predictions.transform.dense.weight", True),
    ("cls.predictions.transform.bias", "cls.predictions.transform.dense.bias", False),
    ("cls.predictions.layer_norm.weight", "cls.predictions.transform.LayerNorm.weight", False),
    ("cls.predictions.layer_norm.bias", "cls.predictions.transform.LayerNorm.bias", False),
    ("cls.predictions.decoder_bias", "cls.predictions.bias", False),
    ("cls.seq_relationship.weight", "cls.seq_relationship.weight", True),
    ("cls.seq_relationship.bias", "cls.seq_relationship.bias", False),
    ("classifier.weight", "classifier.weight", True),
    ("classifier.bias", "classifier.bias", False),
)
PDPARAMS_TIED = (
    ("cls.predictions.decoder_weight", "ernie.embeddings.word_embeddings.weight", False),
)

# Hugging Face names are ours.
HF = tuple((name, name, False) for name in (*MODEL_PARAMETERS, *FINE_TUNE_PARAMETERS))
HF_TIED = (
    ("cls.predictions.decoder.weight", "ernie.embeddings.word_embeddings.weight", False),
    ("cls.predictions.decoder.bias", "cls.predictions.bias", False),
)

TABLES = {"paddle_static": (PADDLE_STATIC, PADDLE_STATIC_TIED), "pdparams": (PDPARAMS, PDPARAMS_TIED),
          "hf": (HF, HF_TIED)}
# Paddle optimizer accumulators and counters saved beside the parameters of a training checkpoint.
PADDLE_OPTIMIZER_STATE = re.compile(r"_(moment\d|beta\d_pow_acc|velocity)_\d+$|^learning_rate_\d+$|@LR_DECAY_COUNTER@")
ENCODER_SUBMODULES = ("embeddings.", "encoder.", "pooler.")  # keys of a bare encoder, without the "ernie." prefix


def _with_encoder_prefix(weights):
    """Bare-encoder keys (``encoder.layer.0...``) under our ``ernie.`` prefix; other keys unchanged."""
    return {("ernie." + name if name.startswith(ENCODER_SUBMODULES) else name): value
            for name, value in weights.items()}


# ---------------------------------------------------------------------------------------------------------------------
# Readers: {source name: numpy array}

def read_safetensors(paths):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    weights = {}
    for path in paths:
        try:
            weights.update(load_file(path))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a safetensors file, or truncated ({err})") from None
    return weights


def _hf_weight_files(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.isfile(index):
        shards = sorted(set(read_json(index)["weight_map"].values()))
        return [os.path.join(directory, shard) for shard in shards]
    if os.path.isfile(os.path.join(directory, "model.safetensors")):
        return [os.path.join(directory, "model.safetensors")]
    if os.path.isfile(os.path.join(directory, "pytorch_model.bin")):
        raise ValueError(f"{directory}: only pytorch_model.bin here; reading it needs torch, so only model.safetensors "
                         f"is supported (re-save it with save_pretrained(..., safe_serialization=True))")
    raise FileNotFoundError(f"{directory}: no model.safetensors in this directory")


# ---------------------------------------------------------------------------------------------------------------------
# Config

def _unwrap_paddlenlp(values):
    """PaddleNLP's older model_config.json nests the encoder's arguments in {"init_args": [...]}."""
    if "hidden_size" in values:
        return values
    for arg in values.get("init_args", []):
        if isinstance(arg, dict) and (found := _unwrap_paddlenlp(arg)) is not None:
            return found
    return None


def read_source_config(path):
    """An ErnieConfig from ERNIE's ernie_config.json, a PaddleNLP model_config.json/config.json or an HF config.json."""
    values = read_json(path)
    found = _unwrap_paddlenlp(values) if isinstance(values, dict) else None
    if found is None:
        raise ValueError(f"{path}: no model config (hidden_size) found in this file")
    if found.get("use_task_id"):
        raise ValueError(f"{path}: use_task_id is set: this is an ERNIE 2.0/3.0 config, not ERNIE 1.0")
    # ErnieConfig's defaults fill what the source omits: layer_norm_eps 1e-5, intermediate_size 4 x hidden.
    return ErnieConfig.from_dict(found, source=path)


def _find_config(explicit, directory, candidates, source):
    if explicit:
        return explicit
    for name in candidates:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{source}: no {' or '.join(candidates)} in {directory}; pass --config")


# ---------------------------------------------------------------------------------------------------------------------
# The generic mapper

def _compile(table):
    """Name patterns as regular expressions; ``{i}`` becomes a captured layer index."""
    return [(re.compile(re.escape(source).replace(r"\{i\}", r"(?P<i>\d+)")), target, transposed)
            for source, target, transposed in table]


def _match(name, rules):
    for pattern, target, transposed in rules:
        found = pattern.fullmatch(name)
        if found:
            layer = found.groupdict().get("i")
            return target.format(i=int(layer)) if layer is not None else target, transposed, layer
    return None


def _expected_shape(template, config):
    sizes = {"H": config.hidden_size, "F": config.intermediate_size, "V": config.vocab_size,
             "P": config.max_position_embeddings, "T": config.type_vocab_size, "n": None}
    return tuple(sizes[dim] if isinstance(dim, str) else dim for dim in template)


def _shape_fits(shape, expected):
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def expected_parameters(config):
    """{name: shape} of every parameter of ErnieForPretraining with ``config``."""
    shapes = {}
    for pattern, template in MODEL_PARAMETERS.items():
        if config.use_relative_positions and "position_embeddings" in pattern:
            continue  # NEZHA's relative positions replace the absolute table
        layers = range(config.num_hidden_layers) if "{i}" in pattern else [None]
        for i in layers:
            shapes[pattern.format(i=i)] = _expected_shape(template, config)
    return shapes


@dataclass
class ConversionResult:
    weights: dict   # {our name: float32 array}
    unused: list    # source names not converted
    unfilled: list  # parameters of ErnieForPretraining the source did not provide
    tied: list      # source names that are copies of a weight our model shares (checked equal)


def map_weights(source_weights, fmt, config, source, config_source="config"):
    """Renames, transposes and checks ``source_weights`` with the name table of ``fmt``; raises on any mismatch."""
    table, tied_table = TABLES[fmt]
    rules, tied_rules = _compile(table), _compile(tied_table)
    task_type = [name for name in source_weights if "task_type_embeddings" in name]
    if task_type:
        raise ValueError(f"{source}: has {task_type[0]}: this is an ERNIE 2.0/3.0 checkpoint, not ERNIE 1.0")
    weights, origin, unused, tied, layers = {}, {}, [], {}, set()
    for name in sorted(source_weights):
        array = source_weights[name]
        match = _match(name, rules)
        tied_match = None if match else _match(name, tied_rules)
        if match is None and tied_match is None:
            unused.append(name)
            continue
        target, transposed, layer = match or tied_match
        if layer is not None:
            layers.add(int(layer))
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{source}: {name} has dtype {array.dtype}, expected floating-point weights")
        if transposed:
            if array.ndim != 2:
                raise ValueError(f"{source}: {name} has shape {array.shape}, expected a 2-D [in, out] weight")
            array = array.T
        array = np.ascontiguousarray(array, dtype=np.float32)
        if tied_match:
            tied[name] = (target, array)
            continue
        if target in weights:
            raise ValueError(f"{source}: {origin[target]} and {name} both map to {target}")
        weights[target], origin[target] = array, name

    if not weights:
        raise ValueError(f"{source}: none of its {len(source_weights)} tensors is an ERNIE weight in the {fmt} "
                         f"layout; is --format right?")
    if layers != set(range(config.num_hidden_layers)):
        found = f"layers {sorted(layers)}" if layers else "no encoder layers"
        raise ValueError(f"{source}: the weights have {found} but {config_source} says "
                         f"num_hidden_layers={config.num_hidden_layers}")
    checked = []
    for name, (target, array) in tied.items():
        if target not in weights:  # only the copy was saved: it is the weight
            weights[target], origin[target] = array, name
        elif np.array_equal(array, weights[target]):
            checked.append(name)
        else:
            raise ValueError(f"{source}: {name} differs from {origin[target]}; our model ties them and cannot hold "
                             f"an untied copy")
    expected = expected_parameters(config)
    heads = {name: _expected_shape(template, config) for name, template in FINE_TUNE_PARAMETERS.items()}
    for target, array in weights.items():
        shape = expected.get(target, heads.get(target))
        if shape is None:
            raise ValueError(f"{source}: has {origin[target]}, which the model of {config_source} lacks "
                             f"(use_relative_positions={config.use_relative_positions})")
        if not _shape_fits(array.shape, shape):
            raise ValueError(f"{source}: {origin[target]} has shape {array.shape} (as {target}) but {config_source} "
                             f"needs {tuple('any' if s is None else s for s in shape)}")
    unfilled = [name for name in expected if name not in weights]
    return ConversionResult(weights, unused, unfilled, checked)


# ---------------------------------------------------------------------------------------------------------------------
# Conversion entry points

def _check_vocab(vocab_path, config, config_source):
    from .tokenizer import ErnieTokenizer, check_vocab_fits
    check_vocab_fits(ErnieTokenizer(vocab_path), config.vocab_size, config_source)


def _report(result, source):
    logger.info("%s: converted %d tensors", source, len(result.weights))
    if result.tied:
        logger.info("%s: %d tied copies checked equal to the weight they share: %s", source, len(result.tied),
                    result.tied)
    optimizer_state = [name for name in result.unused if PADDLE_OPTIMIZER_STATE.search(name)]
    others = [name for name in result.unused if name not in optimizer_state]
    if optimizer_state:
        logger.info("%s: %d optimizer-state tensors were not used: %s", source, len(optimizer_state), optimizer_state)
    if others:
        logger.warning("%s: %d source tensors were not used: %s", source, len(others), others)
    encoder = [name for name in result.unfilled if name.startswith("ernie.")]
    heads = [name for name in result.unfilled if name not in encoder]
    pooler = [name for name in encoder if name.startswith("ernie.pooler.")]
    if pooler and any(name.startswith(("qa_outputs.", "classifier.")) for name in result.weights):
        # transformers' token-classification and QA models have no pooler, and our NER and MRC heads do not use it
        encoder = [name for name in encoder if name not in pooler]
        logger.info("%s: no pooler in the source (as in a Hugging Face token-classification or QA model): fine for "
                    "NER and MRC; a sentence-classification task would need it", source)
    if encoder:
        logger.warning("%s: %d encoder parameters are not in the source and will start from random initialisation "
                       "when loaded: %s", source, len(encoder), encoder)
    if heads:
        logger.info("%s: %d pre-training head parameters are not in the source (needed only to continue "
                    "pre-training): %s", source, len(heads), heads)


def convert(fmt, input_path, output_path, config_path=None):
    """Converts ``input_path`` (format ``fmt``) into ``output_path`` (.ckpt) + ernie_config.json [+ vocab.txt]."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {FORMATS}")
    if not output_path.endswith(".ckpt"):
        raise ValueError(f"{output_path}: the output checkpoint name must end in .ckpt")
    if not os.path.exists(input_path):
        raise FileNotFoundError(f"{input_path}: input not found")
    if fmt == "paddle_static":
        params_dir, root = paddle_static_dirs(input_path)
        config_path = _find_config(config_path, root, ("ernie_config.json",), input_path)
        source_weights = read_paddle_static(params_dir)
        source = params_dir
    elif fmt == "pdparams":
        if os.path.isdir(input_path):
            root, source = input_path, os.path.join(input_path, "model_state.pdparams")
            if not os.path.isfile(source):
                raise FileNotFoundError(f"{input_path}: no model_state.pdparams in this directory")
        else:
            root, source = os.path.dirname(os.path.abspath(input_path)), input_path
        config_path = _find_config(config_path, root, ("model_config.json", "config.json"), input_path)
        source_weights = read_pdparams(source)
    else:
        if not os.path.isdir(input_path):
            raise ValueError(f"{input_path}: --format hf expects a Hugging Face model directory")
        root = source = input_path
        config_path = _find_config(config_path, root, ("config.json",), input_path)
        source_weights = read_safetensors(_hf_weight_files(input_path))
    if fmt != "paddle_static":
        source_weights = _with_encoder_prefix(source_weights)
    config = read_source_config(config_path)
    if fmt == "hf" and config.use_relative_positions:
        raise ValueError(f"{config_path}: a NEZHA (relative-position) model; --format hf reads the HF ERNIE layout, "
                         f"and transformers 5 has no Nezha layout to read")
    result = map_weights(source_weights, fmt, config, source, config_path)
    vocab_path = os.path.join(root, "vocab.txt")
    has_vocab = os.path.isfile(vocab_path)
    if has_vocab:
        _check_vocab(vocab_path, config, config_path)

    _report(result, source)
    output_dir = os.path.dirname(output_path)
    save_checkpoint([{"name": name, "data": array} for name, array in result.weights.items()], output_path)
    config.to_json_file(os.path.join(output_dir, "ernie_config.json"))
    written = [output_path, os.path.join(output_dir, "ernie_config.json")]
    if has_vocab:
        copy_atomic(vocab_path, os.path.join(output_dir, "vocab.txt"))
        written.append(os.path.join(output_dir, "vocab.txt"))
    logger.info("wrote %s (layer_norm_eps %g, vocab_size %d)", ", ".join(written), config.layer_norm_eps,
                config.vocab_size)
    return result


def hf_config_dict(config, weights):
    """A transformers ``ErnieConfig`` dict for our config; the architecture follows the heads present."""
    values = {key: getattr(config, key) for key in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
        "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
        "initializer_range", "layer_norm_eps")}
    values.update(model_type="ernie", pad_token_id=0, use_task_id=False)
    if "cls.seq_relationship.weight" in weights:
        values["architectures"] = ["ErnieForPreTraining"]
    elif "qa_outputs.weight" in weights:
        values["architectures"] = ["ErnieForQuestionAnswering"]
    elif "classifier.weight" in weights:  # sequence or token classification: the weights do not say which
        num_labels = weights["classifier.weight"].shape[0]
        values["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        values["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
    else:
        values["architectures"] = ["ErnieModel"]
    return values


def export_hf(ckpt_path, output_dir, config_path=None):
    """Writes our checkpoint as a Hugging Face directory: config.json + model.safetensors [+ vocab.txt]."""
    from safetensors.numpy import save_file
    values = read_checkpoint(ckpt_path)
    directory = os.path.dirname(os.path.abspath(ckpt_path))
    config_path = _find_config(config_path, directory, ("ernie_config.json",), ckpt_path)
    config = read_source_config(config_path)
    if config.use_relative_positions:
        raise ValueError(f"{config_path}: use_relative_positions is set; HF's ERNIE has no relative positions and "
                         f"transformers 5 no Nezha model, so this checkpoint has no HF layout to export to")
    state = {name for name, value in values.items() if is_training_state(name, value)}
    weights = _with_encoder_prefix({name: value for name, value in values.items() if name not in state})
    result = map_weights(weights, "hf", config, ckpt_path, config_path)
    if state:
        logger.info("%s: %d training-state entries (optimizer moments, counters) not exported", ckpt_path, len(state))
    _report(result, ckpt_path)

    with replaced_atomically(os.path.join(output_dir, "model.safetensors")) as tmp:
        save_file(result.weights, tmp, metadata={"format": "pt"})
    write_text(os.path.join(output_dir, "config.json"),
               json.dumps(hf_config_dict(config, result.weights), indent=2, sort_keys=True) + "\n")
    if os.path.isfile(os.path.join(directory, "vocab.txt")):
        copy_atomic(os.path.join(directory, "vocab.txt"), os.path.join(output_dir, "vocab.txt"))
    logger.info("wrote %s (config.json, model.safetensors)", output_dir)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=FORMATS, help="source format (not with --to_hf)")
    parser.add_argument("--to_hf", action="store_true", help="export our .ckpt as a Hugging Face directory")
    parser.add_argument("--input", required=True, help="source directory or file")
    parser.add_argument("--output", required=True, help="FILE.ckpt, or with --to_hf an output directory")
    parser.add_argument("--config", help="model config JSON (default: the one beside the input)")
    parser.add_argument("--debug", type=lambda v: v.lower() in ("true", "1", "yes", "y"), nargs="?", const=True,
                        default=False, metavar="true|false", help="show the traceback of an input error")
    args = parser.parse_args(argv)
    if args.to_hf == bool(args.format):
        parser.error("give exactly one of --format and --to_hf")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.to_hf:
            export_hf(args.input, args.output, args.config)
        else:
            convert(args.format, args.input, args.output, args.config)
    except (ValueError, OSError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
