"""Saving, reading and loading checkpoints of ERNIE models.

``load_weights`` accepts a checkpoint of a task model (``ernie.*`` + heads) or of the bare encoder for either kind of
model, skips the optimizer state and counters that training checkpoints carry, and checks every shape before it
changes any parameter.

Integrity: ``save_checkpoint`` writes MindSpore's CRC-32 trailer (``crc_check=True``: the 7 bytes ``crc_num`` and a
10-byte big-endian CRC-32 of everything before them), which MindSpore's own reader strips. ``read_checkpoint``
recomputes the CRC itself before parsing (unchecked, MindSpore parses many damaged files, and aborts the process on
some), so a changed byte anywhere raises a ValueError naming the file: CRC-32 catches every burst of up to 32 bits
in the bytes it covers, a changed CRC value cannot match, and a changed mark is recognised as one. A checkpoint
without the trailer (written by another tool) still loads, with one warning per file.
"""
import errno
import logging
import os
import shutil
import zlib
from dataclasses import dataclass, field

import numpy as np
import mindspore as ms
from mindspore import Tensor

from .ernie_model import ErnieConfig, ErnieModel, load_config
from .fileio import no_space_error, remove_quietly, replaced_atomically

logger = logging.getLogger(__name__)

CRC_MARK = b"crc_num"  # MindSpore's trailer: the mark, then the CRC-32 as 10 big-endian bytes
CRC_TRAILER_SIZE = len(CRC_MARK) + 10
_warned_unchecked = set()  # checkpoints without a trailer already warned about in this process

ENCODER_PREFIX = "ernie."

# Entries that MindSpore optimizers and training cells add to a checkpoint beside the model weights.
TRAINING_STATE_PREFIXES = ("adam_m.", "adam_v.", "lamb_m.", "lamb_v.", "moments.", "moment1.", "moment2.", "moment.",
                           "mean_square.", "accum.", "stat.", "exp_avg.", "exp_avg_sq.")
TRAINING_STATE_NAMES = {"global_step", "learning_rate", "momentum", "beta1_power", "beta2_power", "scale_sense",
                        "current_iterator_step", "last_overflow_iterator_step", "epoch_num", "step_num", "state_step"}


@dataclass
class LoadReport:
    missing: list = field(default_factory=list)     # model parameters the checkpoint did not fill
    unexpected: list = field(default_factory=list)  # checkpoint entries that are not model parameters
    loaded: int = 0


def is_training_state(name, value):
    """Optimizer moments, step counters, loss scale; 0-d values are run metadata from ``append_dict``."""
    return name in TRAINING_STATE_NAMES or name.startswith(TRAINING_STATE_PREFIXES) or np.ndim(value) == 0


def _stored_bytes(save_obj):
    """Bytes of tensor data ``save_obj`` holds: a lower bound on the checkpoint's size."""
    if isinstance(save_obj, list):
        return sum(item["data"].nbytes for item in save_obj)
    return sum(parameter.nbytes for parameter in save_obj.get_parameters())


def save_checkpoint(save_obj, path, append_dict=None):
    """Writes ``save_obj`` (a Cell, or a list of ``{"name": str, "data": Tensor or ndarray}``) atomically, with a CRC.

    Too little free space raises ``fileio.NoSpaceError`` before anything is written; a failure while writing (a
    full disk, an interrupt) leaves neither MindSpore's nor this function's temporary file behind.
    """
    if not path.endswith(".ckpt"):
        raise ValueError(f"{path}: a MindSpore checkpoint file name must end in .ckpt")
    if isinstance(save_obj, list):
        save_obj = [{"name": item["name"], "data": item["data"] if isinstance(item["data"], Tensor)
                     else Tensor(np.ascontiguousarray(item["data"]))} for item in save_obj]
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if shutil.disk_usage(directory).free < _stored_bytes(save_obj):
        # Checked first because MindSpore logs a CRITICAL line of its own on a failed write.
        raise no_space_error(path, OSError(errno.ENOSPC, "checked before writing"))
    with replaced_atomically(path, suffix=".ckpt") as tmp:
        # MindSpore writes the .ckpt name with .tmp for .ckpt, then renames; a failed write leaves that file.
        try:
            ms.save_checkpoint(save_obj, tmp, append_dict=append_dict, crc_check=True)
        finally:
            remove_quietly(os.path.splitext(tmp)[0] + ".tmp")


def read_checkpoint(path, require_crc=False):
    """``{name: numpy array}`` of a ``.ckpt`` (or ``.safetensors``) file.

    ``require_crc``: for files this project wrote itself (a run's own resumable checkpoint), a ``.ckpt`` without the
    CRC trailer is an error, since a file cut exactly after a tensor would otherwise load with entries missing.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        try:
            return load_file(path)
        except SafetensorError as err:
            raise ValueError(f"{path}: not a safetensors file or truncated ({err})") from None
    if not path.endswith(".ckpt"):
        raise ValueError(f"{path}: not a checkpoint file name (expected .ckpt or .safetensors)")
    verify_checkpoint(path, require_crc)
    try:
        parameters = ms.load_checkpoint(path)
    except (ValueError, RuntimeError):
        raise ValueError(f"{path}: not a MindSpore checkpoint, or truncated (it cannot be parsed)") from None
    return {name: parameter.asnumpy() for name, parameter in parameters.items()}


def verify_checkpoint(path, require_crc=False):
    """Checks a ``.ckpt`` file's CRC trailer; returns False (after one warning) for a file that has none, unless
    ``require_crc``, which makes that a ValueError too.

    Raises ValueError naming the file when the CRC does not match, or when the trailer itself is damaged (its mark
    differs from ``crc_num`` in one or two bytes: a file without a trailer ends in tensor data, which matching the
    mark at exactly that place by chance is not a realistic case).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < CRC_TRAILER_SIZE:
            return _unchecked(path, require_crc)
        f.seek(size - CRC_TRAILER_SIZE)
        trailer = f.read(CRC_TRAILER_SIZE)
        mark, stored = trailer[:len(CRC_MARK)], int.from_bytes(trailer[len(CRC_MARK):], "big")
        if mark != CRC_MARK:
            if sum(a != b for a, b in zip(mark, CRC_MARK)) <= 2:
                raise ValueError(f"{path}: the checkpoint is damaged (its CRC trailer is corrupt)")
            return _unchecked(path, require_crc)
        f.seek(0)
        crc, remaining = 0, size - CRC_TRAILER_SIZE
        while remaining:
            chunk = f.read(min(remaining, 1 << 24))
            if not chunk:
                raise ValueError(f"{path}: the file shrank while it was read")
            crc, remaining = zlib.crc32(chunk, crc), remaining - len(chunk)
    if crc != stored:
        raise ValueError(f"{path}: the checkpoint is damaged: its CRC-32 is {crc:#010x} but the file says "
                         f"{stored:#x} (a changed byte or a bad copy; use an intact copy)")
    return True


def _unchecked(path, require_crc):
    if require_crc:
        raise ValueError(f"{path}: the checkpoint has no CRC trailer: it was cut short (or not written by this "
                         "toolkit)")
    if os.path.abspath(path) not in _warned_unchecked:
        _warned_unchecked.add(os.path.abspath(path))
        logger.warning("%s: this checkpoint has no CRC trailer (written by another tool, or cut short), so corruption "
                       "cannot be detected; src.checkpoint.save_checkpoint adds one", path)
    return False


def _model_name(key, parameters):
    """The model parameter a checkpoint key fills, adding or removing the encoder prefix when needed."""
    if key in parameters:
        return key
    if ENCODER_PREFIX + key in parameters:
        return ENCODER_PREFIX + key
    if key.startswith(ENCODER_PREFIX) and key[len(ENCODER_PREFIX):] in parameters:
        return key[len(ENCODER_PREFIX):]
    return None


def load_weights(model, ckpt_path_or_dict, strict=False):
    """Copies checkpoint values into ``model``'s parameters; returns a ``LoadReport``.

    A shape mismatch raises before any parameter changes; with ``strict`` so do missing or unexpected entries.
    """
    if isinstance(ckpt_path_or_dict, (str, os.PathLike)):
        source = str(ckpt_path_or_dict)
        values = read_checkpoint(source)
    else:
        source = "checkpoint dict"
        values = {k: v.asnumpy() if isinstance(v, Tensor) else np.asarray(v) for k, v in ckpt_path_or_dict.items()}
    parameters = {p.name: p for p in model.get_parameters()}
    matched, unexpected = {}, []
    for key, value in values.items():
        name = _model_name(key, parameters)
        if name is None:
            if not is_training_state(key, value):
                unexpected.append(key)
            continue
        if name in matched:
            raise ValueError(f"{source}: {matched[name][0]} and {key} both fill parameter {name}")
        if tuple(value.shape) != tuple(parameters[name].shape):
            raise ValueError(f"{source}: {key} has shape {tuple(value.shape)} but the model parameter {name} has "
                             f"shape {tuple(parameters[name].shape)}")
        matched[name] = (key, value)
    missing = [name for name in parameters if name not in matched]
    if strict and (missing or unexpected):
        raise ValueError(f"{source}: strict loading failed: {len(missing)} missing {missing[:5]}, "
                         f"{len(unexpected)} unexpected {unexpected[:5]}")
    for name, (_, value) in matched.items():
        parameters[name].set_data(Tensor(value, parameters[name].dtype))
    return LoadReport(missing=missing, unexpected=unexpected, loaded=len(matched))


def from_pretrained(ckpt_path, config=None, model_cls=None, **model_kwargs):
    """Builds ``model_cls(config, **model_kwargs)`` (default ``ErnieModel``) and loads ``ckpt_path`` into it.

    ``config``: an ``ErnieConfig``, a path, or None for the ``ernie_config.json`` (or HF ``config.json``) beside the
    checkpoint. Returns ``(model, LoadReport)``.
    """
    if config is None:
        try:
            config = load_config(os.path.dirname(os.path.abspath(ckpt_path)))
        except FileNotFoundError:
            raise FileNotFoundError(f"{ckpt_path}: no ernie_config.json beside the checkpoint; pass the model config"
                                    ) from None
    elif not isinstance(config, ErnieConfig):
        config = load_config(str(config))
    model = (model_cls or ErnieModel)(config, **model_kwargs)
    report = load_weights(model, ckpt_path)
    log_report(report, ckpt_path, model)
    return model, report


def log_report(report, source, model):
    """Says what was loaded, which parameters keep their initialisation and which entries were not used."""
    logger.info("%s: loaded %d parameters into %s", source, report.loaded, type(model).__name__)
    if report.missing:
        heads_only = all(not name.startswith(ENCODER_PREFIX) for name in report.missing) and any(
            name.startswith(ENCODER_PREFIX) for name in (p.name for p in model.get_parameters()))
        if heads_only:
            logger.info("%s: %d head parameters are not in the checkpoint and start from random initialisation "
                        "(expected when starting a fine-tune): %s", source, len(report.missing), report.missing)
        else:
            logger.warning("%s: %d model parameters are not in the checkpoint and keep their random "
                           "initialisation: %s", source, len(report.missing), report.missing)
    if report.unexpected:
        logger.warning("%s: %d checkpoint entries are not parameters of %s and were not used: %s", source,
                       len(report.unexpected), type(model).__name__, report.unexpected)
