"""Command-line conventions shared by the entry scripts."""
import argparse
import os

from .ernie_model import check_compute_dtype, load_config
from .fileio import copy_atomic
from .tokenizer import ErnieTokenizer, check_vocab_fits


def str2bool(value):
    """The seed's ``--flag true|false`` booleans (also 1/0, yes/no)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes", "y"):
        return True
    if value.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def file_beside(path, name):
    """``name`` in the folder of ``path`` when that file exists, else ""."""
    candidate = os.path.join(os.path.dirname(path), name) if path else ""
    return candidate if candidate and os.path.exists(candidate) else ""


def model_config_and_tokenizer(config, vocab_file, weights_path, compute_dtype, device_target, vocab_flag):
    """``(config, config_source, tokenizer)`` of an entry script: the ``--config`` and vocabulary flags, else the
    ``ernie_config.json`` / ``vocab.txt`` beside the weights it loads, else the ``base`` preset; the vocabulary must
    fit the embedding table and the compute dtype the device."""
    config_source = config or file_beside(weights_path, "ernie_config.json") or "base"
    model_config = load_config(config_source, compute_dtype=compute_dtype)
    check_compute_dtype(device_target, model_config.compute_dtype)
    vocab_file = vocab_file or file_beside(weights_path, "vocab.txt")
    if not vocab_file:
        raise SystemExit(f"no vocabulary: pass {vocab_flag} (ERNIE's vocab.txt)")
    tokenizer = ErnieTokenizer(vocab_file)
    check_vocab_fits(tokenizer, model_config.vocab_size, config_source)
    return model_config, config_source, tokenizer


def save_model_files(output_dir, config, tokenizer):
    """``ernie_config.json`` and ``vocab.txt`` beside a run's checkpoints, so they load and serve on their own."""
    config.to_json_file(os.path.join(output_dir, "ernie_config.json"))
    copy_atomic(tokenizer.vocab_file, os.path.join(output_dir, "vocab.txt"))
