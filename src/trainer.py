"""The training loop shared by pre-training and every fine-tuning task.

One graph-mode ``TrainStep`` cell (forward, backward, global-norm clipping, optional dynamic loss scaling for float16)
is driven by a plain Python loop (``Trainer.train``) that logs a progress bar and JSON lines, evaluates, keeps the
best and the last checkpoints, and resumes an interrupted run from ``checkpoint_last.ckpt`` (weights, optimizer state,
step, epoch and best score) when ``run.json`` shows it is the same run.
"""
import glob
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .checkpoint import load_weights, read_checkpoint, save_checkpoint
from .dataset import eval_batches, num_examples, steps_per_epoch, train_batches
from .fileio import read_json, remove_quietly, remove_stale_temporaries, write_json
from .kernels.dropout import calls_per_step, set_state as set_dropout_state
from .optimization import FusedAdamWeightDecay, build_optimizer
from .progress import bar_size, progress

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
    """One optimizer step on a loss cell returning ``(loss, *metrics)``; returns ``(loss, *metrics, overflow,
    loss_scale)`` (overflow always False and the scale 1 without dynamic loss scaling).

    The metrics (e.g. correct-prediction counts) get a zero gradient seed, so they cost no second forward pass.
    With ``loss_scale_manager`` (float16 compute) the loss is scaled and steps that overflow are skipped.
    """

    def __init__(self, loss_net, optimizer, max_grad_norm=1.0, loss_scale_manager=None):
        scale = loss_scale_manager if loss_scale_manager is not None else Tensor(1.0, ms.float32)
        super().__init__(loss_net, optimizer, scale)
        self.dynamic_loss_scale = loss_scale_manager is not None
        self.max_grad_norm = float(max_grad_norm)
        # FusedAdamWeightDecay scales the gradients inside its update, so clipping costs one read of each gradient.
        self.fused_clipping = isinstance(optimizer, FusedAdamWeightDecay)
        if self.fused_clipping and self.dynamic_loss_scale:
            raise ValueError("the fused CPU optimizer does not take dynamic loss scaling (float16, not run on CPU)")

    def construct(self, *inputs):
        outputs = self.network(*inputs)
        loss = outputs[0]
        scale = self.scale_sense
        seeds = (ops.ones_like(loss) * ops.cast(scale, loss.dtype),) + self.hyper_map(ops.zeros_like, outputs[1:])
        grads = self.grad(self.network, self.weights)(*inputs, seeds)
        if self.dynamic_loss_scale:
            grads = self.hyper_map(ops.partial(_grad_scale, scale), grads)
        grads = self.grad_reducer(grads)
        overflow = ops.zeros((), ms.bool_)
        if self.fused_clipping:
            factor = self.clip_factor(self.optimizer.squared_norm(grads)) if self.max_grad_norm > 0 else None
            loss = ops.depend(loss, self.optimizer(grads, factor))
        else:
            if self.max_grad_norm > 0:
                grads = self.clip_by_global_norm(grads)
            if self.dynamic_loss_scale:
                overflow = self.process_loss_scale(self.get_overflow_status(Tensor([0] * 8, ms.int32), grads))
                if not overflow:
                    loss = ops.depend(loss, self.optimizer(grads))
            else:
                loss = ops.depend(loss, self.optimizer(grads))
        return (loss,) + outputs[1:] + (overflow, ops.cast(scale, ms.float32))

    def clip_by_global_norm(self, grads):
        """``grads * max_norm / max(global_norm, max_norm)``, the rule of ``ops.clip_by_global_norm`` (deprecated in
        MindSpore 2.9), with one scalar factor and one multiply per gradient: ``ops.clip_by_global_norm`` keeps
        several full copies of all gradients alive at once (ERNIE-base, batch 8 x 128: 1.5 GB more peak memory and
        0.4 s more per step)."""
        factor = self.clip_factor(ops.addn(self.hyper_map(_square_sum, grads)))
        return self.hyper_map(ops.partial(_scale_grad, factor), grads)

    def clip_factor(self, squared_norm):
        """``max_norm / max(global_norm, max_norm)`` from the summed squares of all gradients."""
        return self.max_grad_norm / ops.maximum(ops.sqrt(squared_norm), self.max_grad_norm)


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
    end_learning_rate: float = 0.0     # the schedule and optimizer settings of the seed's config table
    power: float = 1.0
    warmup_steps: Optional[int] = None  # None: warmup_proportion of the steps
    decay_steps: Optional[int] = None  # None: decay from the end of the warm-up to the last step
    eps: float = 1e-6
    momentum: float = 0.9
    max_grad_norm: float = 1.0
    fused_optimizer: bool = False      # CPU: FusedAdamWeightDecay when the optimizer is AdamWeightDecay
    max_steps: int = -1                # > 0: this many steps, over as many epochs as needed (sizes the schedule)
    eval_every: int = 0                # evaluate every N steps and at the end (0: at the end of each epoch)
    log_every: int = 10
    save_every: int = 0                # write checkpoint_last.ckpt every N steps (0: at the end of each epoch)
    keep_checkpoint_max: int = 1
    checkpoint_prefix: str = "ernie"
    seed: int = 0
    shuffle: bool = True
    resume: bool = True
    overwrite_output_dir: bool = False  # start afresh where the folder holds a different run
    loss_scale: bool = False           # dynamic loss scaling (float16 compute), with the three values below
    loss_scale_value: float = 2.0 ** 16
    scale_factor: float = 2.0
    scale_window: int = 1000
    metric_for_best: str = ""          # key of the eval metrics to select the best checkpoint ("" -> none)
    progress_bar: bool = True
    run_description: dict = field(default_factory=dict)  # what makes two runs the same run (check_same_run)
    seed_log_file: str = "training_log.txt"  # the seed's per-step line, for users' existing log parsers


RUN_FILE = "run.json"
LAST_CHECKPOINT = "checkpoint_last.ckpt"


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


def check_same_run(output_dir, description, overwrite):
    """Whether ``output_dir`` holds a resumable run that is this run (``description``: data, model, task, batch,
    world size, schedule). A different run stops here, before any training, unless ``overwrite`` starts afresh."""
    last = os.path.join(output_dir, LAST_CHECKPOINT)
    run_file = os.path.join(output_dir, RUN_FILE)
    if not os.path.exists(last):
        return False
    previous = read_json(run_file) if os.path.isfile(run_file) else None
    if previous == json.loads(json.dumps(description)):
        return True
    if overwrite:
        logger.info("--overwrite_output_dir: starting afresh in %s", output_dir)
        remove_quietly(last)  # every rank checks: another may have removed it already
        return False
    if previous is None:
        differences = [f"{run_file} is missing, so the run cannot be identified"]
    else:
        keys = sorted(set(previous) | set(description))
        differences = [f"{key}: {previous.get(key)!r} then, {description.get(key)!r} now" for key in keys
                       if json.dumps(previous.get(key)) != json.dumps(description.get(key))]
    raise ValueError(f"{output_dir} holds a different run ({'; '.join(differences[:4])}); use a new --output_dir, or "
                     f"--overwrite_output_dir true to start afresh there")


def _rotate(pattern, keep):
    files = sorted(glob.glob(pattern), key=os.path.getmtime)
    for old in files[:max(len(files) - keep, 0)]:
        os.remove(old)


class Trainer:
    """Trains ``loss_net`` (which wraps ``model``) on ``train_columns``, in-memory columns or a row source that each
    rank reads only its share of (see src/dataset.py), with ``column_names`` in the loss cell's argument order.

    ``evaluate(model) -> dict`` runs at ``eval_every`` steps and each epoch end; with ``metric_for_best`` the
    best-scoring weights are kept as ``<prefix>-best.ckpt``. ``summarize(sums, rank_steps, examples) -> dict`` turns
    the sums of the loss cell's other outputs (its correct counts) over a log window and all ranks into log fields.
    The logged loss is the mean over ranks (each rank's loss is its share of the global batch's mean).
    """

    def __init__(self, loss_net, model, train_columns, column_names, config, evaluate=None, rank=0, world_size=1,
                 summarize=None):
        self.model, self.columns, self.column_names, self.config = model, train_columns, column_names, config
        self.evaluate_fn, self.summarize_fn = evaluate, summarize
        self.rank, self.world_size, self.is_main = rank, world_size, rank == 0
        total = num_examples(train_columns)
        self.per_epoch = steps_per_epoch(total, config.batch_size, world_size)
        if self.per_epoch == 0:
            raise ValueError(f"{total} training examples are fewer than one global batch of "
                             f"{config.batch_size * world_size}; lower --batch_size")
        self.total_steps = config.max_steps if config.max_steps > 0 else self.per_epoch * config.epochs
        logger.info("%d training examples, %d steps per epoch (batch %d x %d processes; %d examples of the last "
                    "partial batch are left out of each epoch, a different shuffled subset each time), %d steps in "
                    "total", total, self.per_epoch, config.batch_size, world_size,
                    total - self.per_epoch * config.batch_size * world_size, self.total_steps)
        optimizer, self.schedule = build_optimizer(
            loss_net.trainable_params(), config.optimizer, config.learning_rate, self.total_steps,
            config.warmup_proportion, config.weight_decay, config.end_learning_rate, config.power, config.momentum,
            config.eps, config.warmup_steps, config.decay_steps,
            fused=config.fused_optimizer and config.optimizer == "AdamWeightDecay")
        if config.fused_optimizer and config.optimizer != "AdamWeightDecay":
            logger.info("%s has no fused CPU kernel: it runs on MindSpore's operators", config.optimizer)
        loss_scale = nn.DynamicLossScaleUpdateCell(config.loss_scale_value, config.scale_factor,
                                                   config.scale_window) if config.loss_scale else None
        self.train_step = TrainStep(loss_net, optimizer, config.max_grad_norm, loss_scale)
        self.last_path = os.path.join(config.output_dir, LAST_CHECKPOINT)
        self.state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_metric": -np.inf, "finished": 0}
        self.last_metrics = {}
        self.sum_over_ranks = SumOverRanks() if world_size > 1 else None

    def train(self):
        """Runs (or resumes) the training; returns the last evaluation's metrics (or {})."""
        with logging_redirect_tqdm():  # log lines above the progress bar, not glued to it
            return self._train()

    def _train(self):
        config, state = self.config, self.state
        self._start()
        self.train_step.set_train(True)
        # "finished" is saved only after the last epoch's end (its checkpoint and evaluation): a run killed after
        # its last step but before that evaluation resumes to run it, so the best checkpoint cannot miss it.
        while not state["finished"]:
            # A run killed after an epoch's last step resumes with no batch left there (an empty MindSpore dataset
            # is an error): it goes straight to the epoch's end, its checkpoint and evaluation.
            done = state["step_in_epoch"] >= self.per_epoch or state["global_step"] >= self.total_steps
            batches = () if done else train_batches(
                self.columns, self.column_names, config.batch_size, state["epoch"], config.seed, config.shuffle,
                self.rank, self.world_size, skip_batches=state["step_in_epoch"])
            for batch in batches:
                outputs = self.train_step(*batch)
                state["step_in_epoch"] += 1
                state["global_step"] += 1
                self._accumulate(outputs)
                self.progress.update(1)
                step = state["global_step"]
                if step % config.log_every == 0 or step == self.total_steps:
                    self._log_window()
                if config.save_every and step % config.save_every == 0:
                    self._save_last()
                if self.evaluate_fn and config.eval_every and step % config.eval_every == 0:
                    self._evaluate()
                if step >= self.total_steps:
                    break
            if state["step_in_epoch"] >= self.per_epoch:
                state["epoch"] += 1
                state["step_in_epoch"] = 0
            state["finished"] = int(state["global_step"] >= self.total_steps)
            self._save_epoch_checkpoint()
            if self.evaluate_fn and not config.eval_every:
                self._evaluate()
            self._save_last()  # after the evaluation, so a restart keeps the best score it found
        if self.evaluate_fn and config.eval_every and state["global_step"] % config.eval_every:
            self._evaluate()  # the steps after the last periodic evaluation
        self.progress.close()
        self.log.close()
        if self.seed_log:
            self.seed_log.close()
        return self.last_metrics

    # -- the parts of the loop ------------------------------------------------------------------------------------
    def _start(self):
        config = self.config
        os.makedirs(config.output_dir, exist_ok=True)
        if self.is_main:
            remove_stale_temporaries(config.output_dir)  # what a killed run or a full disk left half-written
        if config.resume and check_same_run(config.output_dir, config.run_description, config.overwrite_output_dir):
            self._restore()
        elif os.path.exists(self.last_path) and not config.resume:
            logger.info("--resume false: starting afresh; %s will be replaced", self.last_path)
        if self.is_main:
            write_json(config.run_description, os.path.join(config.output_dir, RUN_FILE))
        self.log = JsonLinesLog(os.path.join(config.output_dir, "train_log.jsonl"), enabled=self.is_main)
        self.seed_log = open(os.path.join(config.output_dir, config.seed_log_file), "a", encoding="utf-8") \
            if self.is_main and config.seed_log_file else None
        # A bar redraws itself with "\r": on a terminal only. Into a log file a line per log window goes instead.
        self.interactive = sys.stderr.isatty()
        self.progress = tqdm(total=self.total_steps, initial=self.state["global_step"], unit="step",
                             disable=not (self.is_main and config.progress_bar and self.interactive),
                             mininterval=0.5, **(bar_size() if self.interactive else {}))
        self._reset_window()
        # The fused CPU dropout's masks follow a seed and a per-process call counter: set them from this run's seed
        # (and rank, so data-parallel processes draw different masks) and step, so that a resumed run draws the
        # masks the uninterrupted one drew.
        dropout_calls = calls_per_step(self.train_step)
        if dropout_calls:
            set_dropout_state(config.seed + self.rank * 0x9E3779B9, self.state["global_step"] * dropout_calls)

    def _restore(self):
        """Loads weights and optimizer state into the train step and the saved loop position."""
        values = read_checkpoint(self.last_path, require_crc=True)  # our own file: a missing trailer means damage
        if "trainer_global_step" not in values:
            raise ValueError(f"{self.last_path}: not a training-state checkpoint (no trainer_global_step); use it as "
                             f"a pretrained checkpoint instead")
        parameters = {p.name for p in self.train_step.get_parameters()}
        missing = [name for name in parameters if name not in values]
        if missing:
            raise ValueError(f"{self.last_path}: cannot resume, the checkpoint lacks {len(missing)} parameters of this "
                             f"run (first: {missing[:3]}); was it written by a different model or optimizer?")
        load_weights(self.train_step, {name: values[name] for name in parameters})
        self.state.update({key: values[f"trainer_{key}"].item()
                           for key in ("epoch", "step_in_epoch", "global_step", "best_metric")})
        # checkpoints from before the mark: the last epoch's end runs again (same weights, same score)
        self.state["finished"] = int(values["trainer_finished"].item()) if "trainer_finished" in values else 0
        logger.info("resuming the same run from %s at epoch %d, step %d", self.last_path, self.state["epoch"],
                    self.state["global_step"])

    def _save_last(self):
        if self.is_main:
            # "trainer_" keys: the optimizer already has a parameter called global_step (its own update count). The
            # best score is float64, so a restarted run compares new scores with the exact value.
            state = self.state
            save_checkpoint(self.train_step, self.last_path, append_dict={
                "trainer_epoch": state["epoch"], "trainer_step_in_epoch": state["step_in_epoch"],
                "trainer_global_step": state["global_step"], "trainer_finished": state["finished"],
                "trainer_best_metric": Tensor(np.float64(state["best_metric"])), "trainer_seed": self.config.seed})

    def _save_epoch_checkpoint(self):
        if self.is_main:
            prefix = os.path.join(self.config.output_dir, self.config.checkpoint_prefix)
            save_checkpoint(self.model, f"{prefix}-{self.state['epoch']}_{self.state['global_step']}.ckpt")
            _rotate(f"{prefix}-[0-9]*_[0-9]*.ckpt", self.config.keep_checkpoint_max)

    def _evaluate(self):
        if not self.is_main:  # the other ranks' copy of the weights is the same: only rank 0 scores and logs
            return
        self.model.set_train(False)
        metrics = self.evaluate_fn(self.model)
        self.train_step.set_train(True)
        self.last_metrics = metrics
        state, key = self.state, self.config.metric_for_best
        self.log.write(event="eval", epoch=state["epoch"], step=state["global_step"], **metrics)
        if key and key not in metrics:
            raise ValueError(f"the best checkpoint is chosen by {key!r}, but the evaluation reports only "
                             f"{sorted(metrics)}; pick one of those (--assessment_method)")
        if key and metrics[key] > state["best_metric"]:
            state["best_metric"] = float(metrics[key])
            save_checkpoint(self.model, os.path.join(self.config.output_dir, f"{self.config.checkpoint_prefix}-best.ckpt"),
                            append_dict={"global_step": state["global_step"], key: state["best_metric"]})
            logger.info("new best %s %.6f at step %d", key, state["best_metric"], state["global_step"])
            self._save_last()  # the new best and the weights that reached it, in one place

    def _reset_window(self):
        self.window_loss, self.window_steps, self.window_sums = 0.0, 0, None
        self.window_overflows, self.window_scale = 0, None
        self.window_start = time.perf_counter()

    def _accumulate(self, outputs):
        *outputs, overflow, scale = outputs
        loss = float(outputs[0].asnumpy())
        if not np.isfinite(loss) and not self.config.loss_scale:
            raise FloatingPointError(f"loss is {loss} at step {self.state['global_step']}; lower the learning rate")
        self.window_loss += loss
        self.window_steps += 1
        if self.summarize_fn is not None:
            sums = np.array([float(output.asnumpy()) for output in outputs[1:]])
            self.window_sums = sums if self.window_sums is None else self.window_sums + sums
        if self.config.loss_scale:
            self.window_overflows += bool(overflow.asnumpy())
            self.window_scale = float(scale.asnumpy())
        if self.seed_log:
            self._write_seed_line(loss, bool(overflow.asnumpy()), float(scale.asnumpy()))

    def _write_seed_line(self, loss, overflow, scale):
        """The model zoo's per-step line (its LossCallBack), so that existing log parsers keep working."""
        state = self.state
        percent = state["step_in_epoch"] / self.per_epoch  # after the step: (0, 1], as the seed's callback
        self.seed_log.write(f"epoch: {state['epoch']}, current epoch percent: {percent:.3f}, step: "
                            f"{state['global_step']}, outputs are (Tensor(shape=[], dtype=Float32, value= {loss:.6g}), "
                            f"Tensor(shape=[], dtype=Bool, value= {overflow}), Tensor(shape=[], dtype=Float32, "
                            f"value= {scale:g}))\n")
        self.seed_log.flush()

    def _log_window(self):
        elapsed = time.perf_counter() - self.window_start
        window = np.array([self.window_loss, *(self.window_sums if self.window_sums is not None else [])], np.float32)
        if self.sum_over_ranks is not None:
            window = self.sum_over_ranks(Tensor(window)).asnumpy()
        rank_steps = self.window_steps * self.world_size
        step = self.state["global_step"]
        record = {"event": "train", "epoch": self.state["epoch"], "step": step, "loss": float(window[0]) / rank_steps,
                  "learning_rate": self.schedule.value(step - 1),
                  "samples_per_s": rank_steps * self.config.batch_size / max(elapsed, 1e-9)}
        if self.summarize_fn is not None:
            record.update(self.summarize_fn(window[1:].astype(np.float64), rank_steps,
                                            rank_steps * self.config.batch_size))
        if self.config.loss_scale:  # skipped steps and the scale they left
            record.update(overflow_steps=self.window_overflows, loss_scale=self.window_scale)
        self.log.write(**record)
        self.progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['learning_rate']:.2e}",
                                  samples_s=f"{record['samples_per_s']:.1f}")
        if self.is_main and self.config.progress_bar and not self.interactive:
            logger.info("step %d/%d loss %.4f lr %.2e %.1f samples/s", step, self.total_steps, record["loss"],
                        record["learning_rate"], record["samples_per_s"])
        self._reset_window()


def train(loss_net, model, train_columns, column_names, config, evaluate=None, rank=0, world_size=1, summarize=None):
    """``Trainer(...).train()``: trains and returns the last evaluation's metrics (or {})."""
    return Trainer(loss_net, model, train_columns, column_names, config, evaluate, rank, world_size, summarize).train()


def predict(model, columns, input_names, batch_size):
    """Runs ``model`` in inference mode over all rows; returns a tuple of numpy outputs (one per model output)."""
    model.set_train(False)
    batches = []
    total = -(-num_examples(columns) // batch_size)
    for real_rows, batch in progress(eval_batches(columns, input_names, batch_size), "predicting", total, "batch"):
        outputs = model(*(Tensor(array) for array in batch))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        batches.append([output.asnumpy()[:real_rows] for output in outputs])
    return tuple(np.concatenate(parts) for parts in zip(*batches))
