"""The fine-tuning and evaluation driver behind ``run_ernie_classifier.py``, ``run_ernie_ner.py`` and
``run_ernie_mrc.py``: flags -> ``TaskInfo`` + ``EvalOptions`` + ``TrainingConfig`` -> the task and the ``Trainer``.

Everything a flag can get wrong is checked before a graph is built. Evaluating a trained model takes its
``max_seq_len``, labels and CRF setting from the ``task.json`` beside the checkpoint unless a flag overrides them.
"""
import dataclasses
import hashlib
import json
import logging
import os

from . import assessment_method as metrics_lib
from .checkpoint import load_weights, log_report
from .cli import (OPTIMIZER_FLAGS, add_flags, fused_cpu_kernels, model_config_and_tokenizer, new_parser,
                  optimizer_settings, run_cli, save_model_files)
from .data.common import read_label_map
from .data.mindrecord import check_schema
from .fileio import read_json, write_json
from .progress import set_enabled as set_progress_bars
from .runtime import distributed_context, init_runtime
from .serving.runtime import find_checkpoint, trained_task_info
from .tasks.base import EvalOptions
from .tasks.registry import (TASKS, TaskInfo, default_task_info, label_map_of, task_class, task_data_files, task_spec,
                             tasks_of_kind)
from .trainer import Trainer, TrainingConfig, check_same_run

logger = logging.getLogger(__name__)

FINETUNE_FLAGS = (
    "task_type", "device_target", "device_id", "do_train", "do_eval", "epoch_num", "num_class", "use_crf",
    "assessment_method", "task_data_dir", "eval_split", "train_data_file_path", "eval_data_file_path",
    "eval_json_path", "vocab_file", "label_map_file", "load_pretrain_checkpoint_path", "load_finetune_checkpoint_path",
    "output_dir", "overwrite_output_dir", "shuffle", "eval_data_shuffle", "schema_file_path", "dataset_format",
    "columns", "config", "compute_dtype", "fused_cpu_kernels", "batch_size", "eval_batch_size", "max_seq_len",
    "max_query_len", "doc_stride", "max_answer_len", "n_best_size", *OPTIMIZER_FLAGS, "seed", "max_steps", "eval_every",
    "eval_during_training", "log_every", "save_every",
    "keep_checkpoint_max", "resume", "skip_bad_examples", "max_train_samples", "max_eval_samples", "progress_bar",
    "debug")


def build_parser(kind):
    """The seed's flags plus what a transformers/PaddleNLP user expects; every task is accepted, the script's kind
    gives the default task."""
    names = tasks_of_kind(kind)
    parser = new_parser(None, f"ERNIE 1.0 fine-tuning and evaluation ({', '.join(names)}; any task of "
                              f"{', '.join(TASKS)} is accepted)")
    add_flags(parser, *FINETUNE_FLAGS, task_type={
        "default": None, "choices": list(TASKS),
        "help": f"the task (default: the trained model's when evaluating one, else {names[0]})"})
    parser.set_defaults(script_task_type=names[0])
    return parser


def _resolve_task_type(args):
    """No ``--task_type``: evaluating a trained folder evaluates its task (``task.json``), else the script's first."""
    if args.task_type:
        return
    path = args.load_finetune_checkpoint_path
    if not args.do_train and path and os.path.exists(path):
        try:
            ckpt_file = find_checkpoint(path)
        except FileNotFoundError:  # reported after the flags are checked, with the other files
            ckpt_file = os.path.join(path, "none")
        task_json = os.path.join(os.path.dirname(os.path.abspath(ckpt_file)), "task.json")
        if os.path.isfile(task_json):
            args.task_type = TaskInfo.from_dict(read_json(task_json), task_json).task_type
            return
    args.task_type = args.script_task_type


def _check_flags(args):
    """Flag combinations and values that can be checked before anything is read."""
    if not (args.do_train or args.do_eval):
        raise ValueError("nothing to do: pass --do_train true and/or --do_eval true")
    for name in ("epoch_num", "batch_size", "eval_batch_size", "max_seq_len", "log_every"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be >= 1, got {value}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0, got {args.learning_rate}")
    if not 0 <= args.warmup_proportion <= 1:
        raise ValueError(f"--warmup_proportion must be within [0, 1], got {args.warmup_proportion}")
    if args.task_data_dir:
        train_file, label_map = task_data_files(args.task_type, args.task_data_dir, "train")
        eval_file, _ = task_data_files(args.task_type, args.task_data_dir, args.eval_split)
        args.train_data_file_path = args.train_data_file_path or train_file
        args.eval_data_file_path = args.eval_data_file_path or eval_file
        args.label_map_file = args.label_map_file or label_map
    if args.do_train and not args.train_data_file_path:
        raise ValueError("--do_train needs --train_data_file_path (or --task_data_dir)")
    if args.do_eval and not args.eval_data_file_path:
        raise ValueError("--do_eval needs --eval_data_file_path (or --task_data_dir)")
    if args.do_eval and not args.do_train and not args.load_finetune_checkpoint_path:
        raise ValueError("--do_eval without --do_train needs --load_finetune_checkpoint_path")
    for flag in ("train_data_file_path", "eval_data_file_path", "label_map_file", "load_pretrain_checkpoint_path",
                 "load_finetune_checkpoint_path", "eval_json_path", "schema_file_path"):
        path = getattr(args, flag)
        needed = flag != "train_data_file_path" or args.do_train
        if path and needed and not os.path.exists(path) and not (args.dataset_format != "raw" and "data" in flag):
            raise FileNotFoundError(f"--{flag} {path}: no such file")


def task_info(args):
    """The ``TaskInfo`` to train (registry defaults + flags) or to evaluate (the trained ``task.json`` + flags)."""
    if args.do_train:
        label_map = read_label_map(args.label_map_file) if args.label_map_file else None
        info = default_task_info(args.task_type, args.max_seq_len, args.use_crf, args.max_query_len, args.doc_stride,
                                 label_map, args.label_map_file or "task default")
        if info.labels and args.num_class and args.num_class != len(info.labels):
            raise ValueError(f"--num_class {args.num_class} but the label map has {len(info.labels)} labels "
                             f"({args.label_map_file or 'task default'})")
        return info
    return trained_task_info(find_checkpoint(args.load_finetune_checkpoint_path), args.task_type, args.num_class,
                             args.use_crf, args.max_seq_len, args.max_query_len, args.doc_stride)


def eval_options(args, info):
    spec = TASKS.get(info.task_type)
    method = args.assessment_method or (spec.assessment_method if spec else "")
    return EvalOptions(
        eval_batch_size=args.eval_batch_size, dataset_format=args.dataset_format, schema_file=args.schema_file_path,
        eval_json_path=args.eval_json_path, skip_bad_examples=args.skip_bad_examples,
        max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples,
        columns=tuple(args.columns.split(",")) if args.columns else None,
        assessment_method=method, n_best_size=args.n_best_size, max_answer_len=args.max_answer_len)


def _fingerprint(path):
    """Size and SHA-256 of a data file (or of the sorted files of a folder): a retry with other data is another run."""
    files = sorted(os.path.join(root, n) for root, _, names in os.walk(path) for n in names) \
        if os.path.isdir(path) else [path]
    digest, size = hashlib.sha256(), 0
    for file in files:
        size += os.path.getsize(file)
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return {"path": os.path.abspath(path), "bytes": size, "sha256": digest.hexdigest()}


def run(args):
    set_progress_bars(args.progress_bar)
    _resolve_task_type(args)
    _check_flags(args)
    info = task_info(args)
    spec = TASKS.get(info.task_type)
    optimizer = optimizer_settings(args, spec.learning_rate if spec else None) if args.do_train else None
    task_cls = task_class(info.kind)
    options = eval_options(args, info)
    device_target = init_runtime(args.device_target, args.device_id, args.seed)
    rank, world_size = distributed_context()

    weights_path = args.load_finetune_checkpoint_path if not args.do_train else args.load_pretrain_checkpoint_path
    if weights_path and os.path.isdir(weights_path):
        weights_path = find_checkpoint(weights_path)
    config, config_source, tokenizer = model_config_and_tokenizer(
        args.config, args.vocab_file, weights_path, args.compute_dtype or (optimizer and optimizer[3]), device_target)
    config.check_sequence_length(info.max_seq_len, "--max_seq_len" if args.max_seq_len else "the task's max_seq_len")
    label_map = label_map_of(info, args.label_map_file if args.do_train else "")
    task = task_cls(info, tokenizer, options, label_map)
    if args.assessment_method and task.metric_key(options.assessment_method) not in task.metric_names:
        raise ValueError(f"--assessment_method {options.assessment_method}: a {info.task_type} evaluation reports "
                         f"{', '.join(task.metric_names)}")
    output_dir = args.output_dir or os.path.join("output", info.task_type)
    logger.info("task %s on %s, model config %s, vocab %s", info.task_type, device_target, config_source,
                tokenizer.vocab_file)

    fused = fused_cpu_kernels(args.fused_cpu_kernels, device_target, config.compute_dtype)
    model = task.build_model(config)
    eval_data = load_checked(task, args.eval_data_file_path, False, args, config) if args.do_eval else None
    if args.do_train:
        train_data = load_checked(task, args.train_data_file_path, True, args, config)
        if args.load_pretrain_checkpoint_path:
            log_report(load_weights(model, weights_path), weights_path, model)
        else:
            logger.warning("no --load_pretrain_checkpoint_path: training from randomly initialised weights")
        os.makedirs(output_dir, exist_ok=True)
        info.vocab_file = "vocab.txt"
        select_best = eval_data is not None and args.eval_during_training
        best_metric = task.metric_key(options.assessment_method) if select_best else ""
        training = training_config(args, info, config, output_dir, world_size, best_metric, optimizer, fused)
        if training.resume:  # a different run in the folder stops here, before its task.json is replaced
            check_same_run(output_dir, training.run_description, training.overwrite_output_dir)
        if rank == 0:
            save_model_files(output_dir, config, tokenizer)
            write_json(info.to_dict(), os.path.join(output_dir, "task.json"))
        Trainer(task.loss_cell(model), model, train_data.columns, task.train_columns, training,
                evaluate=(lambda m: task.evaluate(m, eval_data)) if select_best else None, rank=rank,
                world_size=world_size, summarize=task.summarize).train()
        best = os.path.join(output_dir, f"{info.task_type}-best.ckpt")
        if select_best and os.path.exists(best):
            load_weights(model, best)
            logger.info("evaluating the best checkpoint %s", best)
    elif args.do_eval:
        ckpt_file = find_checkpoint(args.load_finetune_checkpoint_path)
        report = load_weights(model, ckpt_file)
        if report.missing:
            raise ValueError(f"{ckpt_file} lacks {report.missing[:5]}: not a fine-tuned {info.task_type} checkpoint")
    if args.do_eval and rank == 0:
        split = os.path.splitext(os.path.basename(args.eval_data_file_path.rstrip("/")))[0]
        os.makedirs(output_dir, exist_ok=True)
        predictions_path = os.path.join(output_dir, task.predictions_file(split))
        metrics = task.evaluate(model, eval_data, predictions_path)
        print(metrics_lib.format_metrics(metrics), flush=True)
        write_json(metrics, os.path.join(output_dir, f"{split}_metrics.json"))
        logger.info("predictions and metrics written to %s", output_dir)
        return metrics
    return None


def load_checked(task, path, is_training, args, config):
    """``task.load`` plus the checks the data and the model must pass together, before any graph is built."""
    data = task.load(path, is_training)
    if len(data.columns["input_ids"]) == 0:  # e.g. every row skipped as bad: say so, not "lower --batch_size"
        raise ValueError(f"{data.source}: no examples to {'train on' if is_training else 'evaluate'} (see the "
                         f"skipped rows above)")
    if args.schema_file_path and args.dataset_format == "mindrecord":
        check_schema(args.schema_file_path, data.columns, data.source)
    config.check_type_vocab(int(data.columns["segment_ids"].max(initial=0)) + 1, data.source)
    if data.columns["input_ids"].max(initial=0) >= config.vocab_size:
        raise ValueError(f"{data.source}: token id {int(data.columns['input_ids'].max())} does not fit vocab_size "
                         f"{config.vocab_size} of the model config")
    return data


def training_config(args, info, config, output_dir, world_size, metric_for_best, optimizer, fused_optimizer=False):
    spec = task_spec(info.task_type)
    epochs = args.epoch_num or spec.epoch_num
    batch_size = args.batch_size or spec.batch_size
    name, settings, loss_scale, _ = optimizer
    schedule = {"optimizer": name, **dataclasses.asdict(settings), "warmup_proportion": args.warmup_proportion,
                "max_grad_norm": args.max_grad_norm, **dataclasses.asdict(loss_scale)}
    run_description = {
        "task": info.to_dict(), "model": config.to_dict(), "train_data": _fingerprint(args.train_data_file_path),
        "dataset_format": args.dataset_format, "max_train_samples": args.max_train_samples,
        "pretrained": _fingerprint(args.load_pretrain_checkpoint_path) if args.load_pretrain_checkpoint_path else None,
        "batch_size": batch_size, "world_size": world_size, "epochs": epochs, "max_steps": args.max_steps,
        "schedule": schedule, "seed": args.seed, "shuffle": args.shuffle}
    logger.info("optimizer %s", json.dumps(schedule))
    return TrainingConfig(
        output_dir=output_dir, epochs=epochs, batch_size=batch_size, optimizer=name,
        learning_rate=settings.learning_rate, warmup_proportion=args.warmup_proportion,
        weight_decay=settings.weight_decay, end_learning_rate=settings.end_learning_rate, power=settings.power,
        warmup_steps=settings.warmup_steps, decay_steps=settings.decay_steps, eps=settings.eps,
        momentum=settings.momentum, max_grad_norm=args.max_grad_norm, fused_optimizer=fused_optimizer,
        max_steps=args.max_steps, eval_every=args.eval_every, log_every=args.log_every, save_every=args.save_every,
        keep_checkpoint_max=args.keep_checkpoint_max, checkpoint_prefix=info.task_type, seed=args.seed,
        shuffle=args.shuffle, resume=args.resume, overwrite_output_dir=args.overwrite_output_dir,
        loss_scale=config.compute_dtype == "float16", **dataclasses.asdict(loss_scale),
        metric_for_best=metric_for_best,
        progress_bar=args.progress_bar, run_description=run_description)


def main(kind, argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_cli(lambda arguments: run(build_parser(kind).parse_args(arguments)), argv)
