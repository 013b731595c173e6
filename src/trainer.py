"""The training loop shared by pre-training and every fine-tuning task.

One graph-mode ``TrainStep`` cell (forward, backward, global-norm clipping, optional dynamic loss scaling for float16)
is driven by a plain Python loop that logs a progress bar and JSON lines, evaluates, keeps the best and the last
checkpoints, and resumes an interrupted run from ``checkpoint_last.ckpt`` (weights, optimizer state, step and epoch).
"""
import glob
import json
import logging
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops
from tqdm import tqdm

from .checkpoint import load_weights, read_checkpoint, save_checkpoint
from .dataset import create_train_dataset, eval_batches, num_examples, steps_per_epoch
from .optimization import build_optimizer

logger = logging.getLogger(__name__)

_grad_scale = ops.MultitypeFuncGraph("grad_scale")


@_grad_scale.register("Tensor", "Tensor")
def _unscale(scale, grad):
    return grad * ops.cast(ops.reciprocal(scale), grad.dtype)


_square_sum = ops.MultitypeFuncGraph("square_sum")


@_square_sum.register("Tensor")
def _sum_of_squares(grad):
    # The last axis first: MindSpore's CPU ReduceSum over all axes at once runs 5x slower (0.3 s per ERNIE-base step).
    return ops.reduce_sum(ops.reduce_sum(ops.square(ops.cast(grad, ms.float32)), -1))


_scale_grad = ops.MultitypeFuncGraph("scale_grad")


@_scale_grad.register("Tensor", "Tensor")
def _scale(factor, grad):
    return grad * ops.cast(factor, grad.dtype)


class TrainStep(nn.TrainOneStepWithLossScaleCell):
    """One optimizer step on a loss cell returning ``(loss, *metrics)``; returns the same tuple.

    The metrics (e.g. correct-prediction counts) get a zero gradient seed, so they cost no second forward pass.
    With ``loss_scale_manager`` (float16 compute) the loss is scaled and steps that overflow are skipped.
    """

    def __init__(self, loss_net, optimizer, max_grad_norm=1.0, loss_scale_manager=None):
        scale = loss_scale_manager if loss_scale_manager is not None else Tensor(1.0, ms.float32)
        super().__init__(loss_net, optimizer, scale)
        self.dynamic_loss_scale = loss_scale_manager is not None
        self.max_grad_norm = float(max_grad_norm)

    def construct(self, *inputs):
        outputs = self.network(*inputs)
        loss = outputs[0]
        scale = self.scale_sense
        seeds = (ops.ones_like(loss) * ops.cast(scale, loss.dtype),) + self.hyper_map(ops.zeros_like, outputs[1:])
        grads = self.grad(self.network, self.weights)(*inputs, seeds)
        if self.dynamic_loss_scale:
            grads = self.hyper_map(ops.partial(_grad_scale, scale), grads)
        grads = self.grad_reducer(grads)
        if self.max_grad_norm > 0:
            grads = self.clip_by_global_norm(grads)
        if self.dynamic_loss_scale:
            overflow = self.process_loss_scale(self.get_overflow_status(Tensor([0] * 8, ms.int32), grads))
            if not overflow:
                loss = ops.depend(loss, self.optimizer(grads))
        else:
            loss = ops.depend(loss, self.optimizer(grads))
        return (loss,) + outputs[1:]

    def clip_by_global_norm(self, grads):
        """``grads * max_norm / max(global_norm, max_norm)``, the rule of ``ops.clip_by_global_norm`` (deprecated in
        MindSpore 2.9), with one scalar factor and one multiply per gradient: ``ops.clip_by_global_norm`` keeps
        several full copies of all gradients alive at once (ERNIE-base, batch 8 x 128: 1.5 GB more peak memory and
        0.4 s more per step)."""
        global_norm = ops.sqrt(ops.addn(self.hyper_map(_square_sum, grads)))
        factor = self.max_grad_norm / ops.maximum(global_norm, self.max_grad_norm)
        return self.hyper_map(ops.partial(_scale_grad, factor), grads)


class SumOverRanks(nn.Cell):
    """Sums a float32 vector over the data-parallel ranks: the logged loss and metrics cover the whole global batch."""

    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce()

    def construct(self, values):
        return self.all_reduce(values)


@dataclass
class TrainingConfig:
    output_dir: str
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    optimizer: str = "AdamWeightDecay"
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_steps: int = -1                # > 0: this many steps, over as many epochs as needed (sizes the schedule)
    eval_every: int = 0                # evaluate every N steps and at the end (0: at the end of each epoch)
    log_every: int = 10
    save_every: int = 0                # write checkpoint_last.ckpt every N steps (0: at the end of each epoch)
    keep_checkpoint_max: int = 1
    checkpoint_prefix: str = "ernie"
    seed: int = 0
    shuffle: bool = True
    resume: bool = True
    loss_scale: bool = False           # dynamic loss scaling (float16 compute)
    metric_for_best: str = ""          # key of the eval metrics to select the best checkpoint ("" -> none)
    progress_bar: bool = True


class JsonLinesLog:
    """Appends one JSON object a line; kept open so a killed run loses at most the current line."""

    def __init__(self, path, enabled=True):
        self.file = open(path, "a", encoding="utf-8") if enabled else None

    def write(self, **record):
        if self.file:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


def _resume_state(path, train_step):
    """Loads weights and optimizer state into ``train_step``; returns the saved loop position."""
    values = read_checkpoint(path)
    if "trainer_global_step" not in values:
        raise ValueError(f"{path}: not a training-state checkpoint (no trainer_global_step); use it as a pretrained "
                         f"checkpoint instead")
    parameters = {p.name for p in train_step.get_parameters()}
    missing = [name for name in parameters if name not in values]
    if missing:
        raise ValueError(f"{path}: cannot resume, the checkpoint lacks {len(missing)} parameters of this run "
                         f"(first: {missing[:3]}); was it written by a different model or optimizer?")
    load_weights(train_step, {name: values[name] for name in parameters})
    return {key: values[f"trainer_{key}"].item() for key in ("epoch", "step_in_epoch", "global_step", "best_metric")}


def _rotate(pattern, keep):
    files = sorted(glob.glob(pattern), key=os.path.getmtime)
    for old in files[:max(len(files) - keep, 0)]:
        os.remove(old)


def train(loss_net, model, train_columns, column_names, config, evaluate=None, rank=0, world_size=1,
          summarize_outputs=None):
    """Trains ``loss_net`` (which wraps ``model``) on in-memory ``train_columns``.

    ``evaluate(model) -> dict`` is called at ``eval_every`` steps and each epoch end; with ``metric_for_best`` the
    best-scoring weights are kept as ``<prefix>-best.ckpt``. ``summarize_outputs(sums, steps, world_size) -> dict``
    turns the sums of the loss cell's other outputs (``outputs[1:]``) over a log window and over all ranks into log
    fields. The logged loss is the mean over ranks (each rank's loss is its share of the global batch's mean).
    Returns the last evaluation metrics (or {}).
    """
    is_main = rank == 0
    os.makedirs(config.output_dir, exist_ok=True)
    total_examples = num_examples(train_columns)
    per_epoch = steps_per_epoch(total_examples, config.batch_size, world_size)
    if per_epoch == 0:
        raise ValueError(f"{total_examples} training examples are fewer than one global batch of "
                         f"{config.batch_size * world_size}; lower --batch_size")
    dropped = total_examples - per_epoch * config.batch_size * world_size
    total_steps = config.max_steps if config.max_steps > 0 else per_epoch * config.epochs
    logger.info("%d training examples, %d steps per epoch (batch %d x %d processes; %d examples of the last partial "
                "batch are left out of each epoch, a different shuffled subset each time), %d steps in total",
                total_examples, per_epoch, config.batch_size, world_size, dropped, total_steps)

    optimizer, schedule = build_optimizer(
        loss_net.trainable_params(), config.optimizer, config.learning_rate, total_steps, config.warmup_proportion,
        config.weight_decay)
    loss_scale = nn.DynamicLossScaleUpdateCell(2.0 ** 16, 2, 1000) if config.loss_scale else None
    train_step = TrainStep(loss_net, optimizer, config.max_grad_norm, loss_scale)
    train_step.set_train(True)

    last_path = os.path.join(config.output_dir, "checkpoint_last.ckpt")
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_metric": -np.inf}
    if config.resume and os.path.exists(last_path):
        state.update(_resume_state(last_path, train_step))
        logger.info("resuming from %s at epoch %d, step %d", last_path, state["epoch"], state["global_step"])

    log = JsonLinesLog(os.path.join(config.output_dir, "train_log.jsonl"), enabled=is_main)
    interactive = sys.stderr.isatty()
    progress = tqdm(total=total_steps, initial=state["global_step"], disable=not (is_main and config.progress_bar),
                    unit="step", dynamic_ncols=True, mininterval=0.5 if interactive else 30.0)
    last_metrics = {}
    sum_over_ranks = SumOverRanks() if world_size > 1 else None

    def save_last(epoch, step_in_epoch):
        if is_main:
            # "trainer_" keys: the optimizer already has a parameter called global_step (its own update count)
            save_checkpoint(train_step, last_path, append_dict={
                "trainer_epoch": epoch, "trainer_step_in_epoch": step_in_epoch,
                "trainer_global_step": state["global_step"], "trainer_best_metric": float(state["best_metric"]),
                "trainer_seed": config.seed})

    def run_evaluation(epoch):
        nonlocal last_metrics
        if not is_main:  # the other ranks' copy of the weights is the same: only rank 0 scores and logs
            return
        model.set_train(False)
        metrics = evaluate(model)
        train_step.set_train(True)
        last_metrics = metrics
        log.write(event="eval", epoch=epoch, step=state["global_step"], **metrics)
        key = config.metric_for_best
        if key and key not in metrics:
            raise ValueError(f"the best checkpoint is chosen by {key!r}, but the evaluation reports only "
                             f"{sorted(metrics)}; pick one of those (--assessment_method)")
        if key and metrics[key] > state["best_metric"]:
            state["best_metric"] = float(metrics[key])
            save_checkpoint(model, os.path.join(config.output_dir, f"{config.checkpoint_prefix}-best.ckpt"),
                            append_dict={"global_step": state["global_step"], key: state["best_metric"]})
            logger.info("new best %s %.6f at step %d", key, state["best_metric"], state["global_step"])

    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
    window_sums = None
    epoch = state["epoch"]
    while (config.max_steps > 0 or epoch < config.epochs) and state["global_step"] < total_steps:
        dataset = create_train_dataset(train_columns, column_names, config.batch_size, epoch, config.seed,
                                       config.shuffle, rank, world_size, skip_batches=state["step_in_epoch"])
        step_in_epoch = state["step_in_epoch"]
        for batch in dataset.create_tuple_iterator(num_epochs=1, do_copy=False):
            outputs = train_step(*batch)
            step_in_epoch += 1
            state["global_step"] += 1
            loss = float(outputs[0].asnumpy())
            if not np.isfinite(loss) and not config.loss_scale:
                raise FloatingPointError(f"loss is {loss} at step {state['global_step']}; lower the learning rate")
            window_loss += loss
            window_steps += 1
            if summarize_outputs is not None:
                sums = np.array([float(output.asnumpy()) for output in outputs[1:]])
                window_sums = sums if window_sums is None else window_sums + sums
            progress.update(1)
            if state["global_step"] % config.log_every == 0 or state["global_step"] == total_steps:
                elapsed = time.perf_counter() - window_start
                window = np.array([window_loss, *(window_sums if window_sums is not None else [])], np.float32)
                if sum_over_ranks is not None:
                    window = sum_over_ranks(Tensor(window)).asnumpy()
                record = {"event": "train", "epoch": epoch, "step": state["global_step"],
                          "loss": float(window[0]) / (window_steps * world_size),
                          "learning_rate": schedule.value(state["global_step"] - 1),
                          "samples_per_s": window_steps * config.batch_size * world_size / max(elapsed, 1e-9)}
                if summarize_outputs is not None:
                    record.update(summarize_outputs(window[1:].astype(np.float64), window_steps, world_size))
                    window_sums = None
                log.write(**record)
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['learning_rate']:.2e}",
                                     samples_s=f"{record['samples_per_s']:.1f}")
                window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
            if config.save_every and state["global_step"] % config.save_every == 0:
                save_last(epoch, step_in_epoch)
            if evaluate and config.eval_every and state["global_step"] % config.eval_every == 0:
                run_evaluation(epoch)
            if state["global_step"] >= total_steps:
                break
        finished_epoch = step_in_epoch >= per_epoch
        epoch += int(finished_epoch)
        state["step_in_epoch"] = 0 if finished_epoch else step_in_epoch
        if is_main:
            save_checkpoint(model, os.path.join(
                config.output_dir, f"{config.checkpoint_prefix}-{epoch}_{state['global_step']}.ckpt"))
            _rotate(os.path.join(config.output_dir, f"{config.checkpoint_prefix}-[0-9]*_[0-9]*.ckpt"),
                    config.keep_checkpoint_max)
        save_last(epoch, state["step_in_epoch"])
        if evaluate and not config.eval_every:
            run_evaluation(epoch)
    if evaluate and config.eval_every and state["global_step"] % config.eval_every:
        run_evaluation(epoch)  # the steps after the last periodic evaluation
    progress.close()
    log.close()
    return last_metrics


def predict(model, columns, input_names, batch_size):
    """Runs ``model`` in inference mode over all rows; returns a tuple of numpy outputs (one per model output)."""
    model.set_train(False)
    batches = []
    for real_rows, batch in eval_batches(columns, input_names, batch_size):
        outputs = model(*(Tensor(array) for array in batch))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        batches.append([output.asnumpy()[:real_rows] for output in outputs])
    return tuple(np.concatenate(parts) for parts in zip(*batches))
