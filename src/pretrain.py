"""The pre-training driver behind ``run_ernie_pretrain.py``: ERNIE 1.0's masked LM with knowledge masking plus
next-sentence prediction, on one or many processes.

Data (``--data_dir``): MindRecord written by ``python -m src.pretraining_reader`` (a file, its shards or a directory
of them), or raw input masked on the fly with ``--data_format ernie|text|tagged`` (see src/data/pretraining.py).
Sharded reading (``--shard_data``, on by default for MindRecord with more than one process): each rank reads only the
rows of its own slices of the global batches, streamed by index, instead of every row into memory; the batches, and
so the training, are exactly those of reading everything (see src/dataset.py).
Checkpoints (``ernie-EPOCH_STEP.ckpt``, parameter names ``ernie.*`` and ``cls.*``) go to ``--output_dir`` with
``ernie_config.json`` and ``vocab.txt`` beside them, so ``run_ernie_classifier.py --load_pretrain_checkpoint_path``
takes them as they are. An interrupted run resumes from ``checkpoint_last.ckpt`` in the same directory.

Examples::

    python run_ernie_pretrain.py --data_dir demo_train_set.gz --data_format ernie --vocab_file vocab.txt \\
        --config tiny --train_steps 100 --output_dir output/pretrain
    msrun --worker_num=2 --local_worker_num=2 --master_addr=127.0.0.1 --master_port=8118 --log_dir=ms_log \\
        --join=True run_ernie_pretrain.py --data_dir pretrain.mindrecord --vocab_file vocab.txt --distribute true
"""
import dataclasses
import logging
import os
from collections import Counter

import numpy as np
from mindspore import Tensor

from .checkpoint import load_weights, log_report
from .cloze import run_entity_cloze
from .cli import (OPTIMIZER_FLAGS, add_flags, fused_cpu_kernels, model_config_and_tokenizer, new_parser,
                  optimizer_settings, run_cli, save_model_files, str2bool)
from .data.cloze import CLOZE_FORMATS, entity_cloze_items, read_cloze_sentences
from .data.mindrecord import check_schema
from .data.pretraining import (COLUMNS, DATA_FORMATS, MASKING_STRATEGIES, load_pretraining_data, parse_mix,
                               pretraining_mindrecord_rows, read_pretraining_mindrecord, read_pretraining_tfrecord)
from .dataset import eval_batches, num_examples
from .heads import ErnieForPretraining
from .losses import PretrainingLoss
from .progress import set_enabled as set_progress_bars
from .runtime import distributed_context, init_runtime
from .trainer import Trainer, TrainingConfig

logger = logging.getLogger(__name__)


def build_parser():
    parser = new_parser(None, "ERNIE 1.0 pre-training (knowledge-masked LM + next sentence)")
    add = parser.add_argument
    add_flags(parser, "device_target", "device_id")
    add("--distribute", type=str2bool, nargs="?", const=True, default=False, metavar="true|false",
        help="data parallel; needs msrun or an HCCL rank table")
    add("--device_num", type=int, default=1, help="processes expected with --distribute (checked)")
    add_flags(parser, "epoch_num", "max_steps", epoch_num={"default": 1, "help": "epochs"})
    add("--data_dir", required=True, help="MindRecord file / shards / directory, or raw input (--data_format)")
    add("--data_format", default="mindrecord", choices=("mindrecord", "tfrecord") + DATA_FORMATS,
        help="format of --data_dir")
    add_flags(parser, "shard_data", "schema_file_path")
    add("--eval_data", default="", help="held-out data (same format as --data_dir): MLM and NSP accuracy, and the "
                                        "entity cloze when it is word/tag text (--data_format tagged)")
    add("--eval_cloze_data", nargs="*", default=None, help="held-out text with entities for the entity cloze "
                                                           "(default: --eval_data when it is tagged text)")
    add("--eval_cloze_format", default="tagged", choices=CLOZE_FORMATS,
        help="of --eval_cloze_data: word/tag text (nr/ns/nt) or BIO characters")
    add_flags(parser, "eval_every", "eval_batch_size", "vocab_file", "config")
    add("--masking", default="ernie", choices=MASKING_STRATEGIES, help="raw input: masking level")
    add("--ernie_mix", default="char=1,phrase=1,entity=1", help="--masking ernie: level weights per sequence")
    add_flags(parser, "max_seq_len", max_seq_len={"default": 128, "help": "raw input: sequence length"})
    add("--max_predictions_per_seq", type=int, default=None, help="raw input: default ceil(0.15 x max_seq_len)")
    add("--dupe_factor", type=int, default=1, help="raw input: masked copies of the data")
    add("--short_seq_prob", type=float, default=0.1, help="raw input: share of shorter sequences")
    add_flags(parser, "skip_bad_examples", "batch_size", *OPTIMIZER_FLAGS, "compute_dtype", "fused_cpu_kernels",
              batch_size={"default": 32, "help": "batch size per process"},
              learning_rate={"help": "peak learning rate (default: --train_config's, else 1e-4)"})
    add("--enable_lossscale", type=str2bool, nargs="?", const=True, default=True, metavar="true|false",
        help="dynamic loss scaling (float16 compute only)")
    add_flags(parser, "shuffle", "seed", "load_pretrain_checkpoint_path", "output_dir", "overwrite_output_dir",
              "resume", output_dir={"help": "checkpoints and train_log.jsonl (default output/pretrain)"})
    add("--enable_save_ckpt", type=str2bool, nargs="?", const=True, default=True, metavar="true|false",
        help="false: checkpoints only at epoch ends")
    add_flags(parser, "save_every", "keep_checkpoint_max", "log_every", "progress_bar", "debug",
              save_every={"default": 1000})
    return parser


def load_data(path, args, tokenizer):
    if args.data_format == "mindrecord":
        columns = read_pretraining_mindrecord(path)
    elif args.data_format == "tfrecord":
        columns = read_pretraining_tfrecord(path, args.schema_file_path)
    else:
        columns, stats = load_pretraining_data(
            path, args.data_format, tokenizer, args.max_seq_len, args.masking,
            max_predictions_per_seq=args.max_predictions_per_seq, ernie_mix=parse_mix(args.ernie_mix),
            dupe_factor=args.dupe_factor, short_seq_prob=args.short_seq_prob, seed=args.seed,
            skip_bad_lines=args.skip_bad_examples)
        logger.info("%s: %s", path, stats.summary())
    max_id = int(columns["input_ids"].max())
    if max_id not in tokenizer.ids_to_tokens:
        raise ValueError(f"{path}: token id {max_id} is not in the vocabulary {tokenizer.vocab_file}")
    logger.info("%s: %d examples of length %d, up to %d predictions each", path, num_examples(columns),
                columns["input_ids"].shape[1], columns["masked_lm_ids"].shape[1])
    return columns


def use_sharded_reading(shard_data, data_format, world_size):
    """Whether the training data is read sharded: ``--shard_data`` as given, else (None) with MindRecord on more than
    one process. Only MindRecord has the row index that reading a rank's rows needs."""
    if shard_data is None:
        return world_size > 1 and data_format == "mindrecord"
    if shard_data and data_format != "mindrecord":
        raise ValueError(f"--shard_data true needs --data_format mindrecord (rows read by index); --data_format "
                         f"{data_format} is read whole on every process: convert it with python -m "
                         f"src.pretraining_reader, or pass --shard_data false")
    return shard_data


def open_sharded_data(path, tokenizer):
    """The training MindRecord as a row source: nothing is read yet but its index and first row; every batch read
    later is checked against the vocabulary."""
    def check_batch(batch, source):
        max_id = int(batch["input_ids"].max())
        if max_id not in tokenizer.ids_to_tokens:
            raise ValueError(f"{source}: token id {max_id} is not in the vocabulary {tokenizer.vocab_file}")

    rows = pretraining_mindrecord_rows(path, check_batch)
    first = rows.first_row()
    logger.info("%s: %d examples of length %d, up to %d predictions each; sharded reading: this process reads only "
                "the rows of its batches", path, rows.num_rows, len(first["input_ids"]), len(first["masked_lm_ids"]))
    return rows, len(first["input_ids"])


def load_cloze_items(args, tokenizer, seq_len):
    """The entity cloze items of the held-out text (``src/data/cloze.py``), or [] when it carries no entity tags."""
    paths = args.eval_cloze_data
    if paths is None and args.eval_data and args.data_format == "tagged":
        paths = [args.eval_data]
    if not paths:
        if args.eval_data:
            logger.info("no entity cloze: %s carries no entity tags (give --eval_cloze_data)", args.eval_data)
        return []
    stats = Counter()
    items = entity_cloze_items(read_cloze_sentences(paths, args.eval_cloze_format), tokenizer, seq_len, stats=stats)
    logger.info("entity cloze on %s: %s", " ".join(paths), " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
    if not items:
        raise ValueError(f"{paths[0]}: no entity with known tokens for the entity cloze")
    return items


def evaluate_pretraining(model, columns, batch_size):
    """Masked-LM accuracy and loss over the weighted predictions, next-sentence accuracy over the examples."""
    names = ("input_ids", "segment_ids", "input_mask", "masked_lm_positions")
    totals = np.zeros(4)  # mlm correct, mlm count, mlm loss sum, nsp correct
    for real_rows, batch in eval_batches(columns, names + ("masked_lm_ids", "masked_lm_weights",
                                                           "next_sentence_labels"), batch_size):
        mlm_logits, nsp_logits = model(*(Tensor(array) for array in batch[:4]))
        mlm_logits = mlm_logits.asnumpy()[:real_rows].astype(np.float64)
        labels, weights, nsp_labels = (array[:real_rows] for array in batch[4:])
        shifted = mlm_logits - mlm_logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        label_log_probs = np.take_along_axis(log_probs, labels[..., None].astype(np.int64), -1)[..., 0]
        totals += [((mlm_logits.argmax(-1) == labels) * weights).sum(), weights.sum(),
                   -(label_log_probs * weights).sum(),
                   (nsp_logits.asnumpy()[:real_rows].argmax(-1) == nsp_labels).sum()]
    count = max(totals[1], 1.0)
    return {"mlm_accuracy": totals[0] / count, "mlm_loss": totals[2] / count,
            "nsp_accuracy": totals[3] / num_examples(columns)}


def summarize_train_outputs(sums, rank_steps, examples):
    """Log fields from the sums over a log window and all ranks of PretrainingLoss's (mlm_loss, nsp_loss, mlm_correct,
    mlm_count, nsp_correct)."""
    mlm_loss, nsp_loss, mlm_correct, mlm_count, nsp_correct = sums
    return {"mlm_loss": mlm_loss / rank_steps, "nsp_loss": nsp_loss / rank_steps,
            "mlm_accuracy": mlm_correct / max(mlm_count, 1.0), "nsp_accuracy": nsp_correct / examples}


def run(args):
    set_progress_bars(args.progress_bar)
    output_dir = args.output_dir or os.path.join("output", "pretrain")
    device_target = init_runtime(args.device_target, args.device_id, args.seed)
    rank, world_size = distributed_context()
    sharded_reading = use_sharded_reading(args.shard_data, args.data_format, world_size)
    if args.distribute and world_size == 1:
        raise ValueError("--distribute true but this process was not started by msrun or with an HCCL rank table "
                         "(RANK_SIZE > 1); see scripts/run_distributed_pretrain.sh")
    if args.distribute and args.device_num not in (1, world_size):
        logger.warning("--device_num %d but %d processes were launched; using %d", args.device_num, world_size,
                       world_size)

    weights = args.load_pretrain_checkpoint_path
    optimizer, settings, loss_scale, compute_type = optimizer_settings(args, 1e-4)
    config, config_source, tokenizer = model_config_and_tokenizer(
        args.config, args.vocab_file, weights, args.compute_dtype or compute_type, device_target)
    logger.info("rank %d of %d on %s; model config %s; vocab %s", rank, world_size, device_target, config_source,
                tokenizer.vocab_file)

    if sharded_reading:
        train_data, seq_len = open_sharded_data(args.data_dir, tokenizer)
        column_names = train_data.column_names
    else:
        train_data = load_data(args.data_dir, args, tokenizer)
        seq_len, column_names = train_data["input_ids"].shape[1], list(train_data)
    eval_columns = load_data(args.eval_data, args, tokenizer) if args.eval_data else None
    cloze_items = load_cloze_items(args, tokenizer, seq_len)
    if args.schema_file_path and args.data_format == "mindrecord":
        check_schema(args.schema_file_path, column_names, args.data_dir)
    if seq_len > config.max_position_embeddings:
        raise ValueError(f"{args.data_dir}: sequences of {seq_len} tokens exceed max_position_embeddings "
                         f"{config.max_position_embeddings} of {config_source}")

    fused = fused_cpu_kernels(args.fused_cpu_kernels, device_target, config.compute_dtype)
    model = ErnieForPretraining(config)
    if weights:
        log_report(load_weights(model, weights), weights, model)
    if rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        save_model_files(output_dir, config, tokenizer)

    schedule = {"optimizer": optimizer, **dataclasses.asdict(settings), "warmup_proportion": args.warmup_proportion,
                "max_grad_norm": args.max_grad_norm, **dataclasses.asdict(loss_scale)}
    run_description = {
        "data": {"path": os.path.abspath(args.data_dir), "format": args.data_format, "masking": args.masking,
                 "ernie_mix": args.ernie_mix, "max_seq_len": seq_len, "dupe_factor": args.dupe_factor,
                 "examples": num_examples(train_data)},
        "model": config.to_dict(), "batch_size": args.batch_size, "world_size": world_size,
        "epochs": args.epoch_num, "max_steps": args.max_steps, "schedule": schedule, "seed": args.seed,
        "shuffle": args.shuffle}
    training = TrainingConfig(
        output_dir=output_dir, epochs=args.epoch_num, batch_size=args.batch_size, optimizer=optimizer,
        learning_rate=settings.learning_rate, warmup_proportion=args.warmup_proportion,
        weight_decay=settings.weight_decay, end_learning_rate=settings.end_learning_rate, power=settings.power,
        warmup_steps=settings.warmup_steps, decay_steps=settings.decay_steps, eps=settings.eps,
        momentum=settings.momentum, max_grad_norm=args.max_grad_norm, fused_optimizer=fused,
        max_steps=args.max_steps, eval_every=args.eval_every, log_every=args.log_every,
        save_every=args.save_every if args.enable_save_ckpt else 0, keep_checkpoint_max=args.keep_checkpoint_max,
        checkpoint_prefix="ernie", seed=args.seed, shuffle=args.shuffle, resume=args.resume,
        overwrite_output_dir=args.overwrite_output_dir,
        loss_scale=args.enable_lossscale and config.compute_dtype == "float16", **dataclasses.asdict(loss_scale),
        progress_bar=args.progress_bar, run_description=run_description, seed_log_file="pretraining_log.txt")

    def evaluate(m):
        metrics = evaluate_pretraining(m, eval_columns, args.eval_batch_size)
        if cloze_items:
            metrics.update(run_entity_cloze(m, cloze_items, args.eval_batch_size, seq_len))
        return metrics

    metrics = Trainer(PretrainingLoss(model), model, train_data, COLUMNS, training,
                      evaluate=evaluate if eval_columns is not None else None, rank=rank, world_size=world_size,
                      summarize=summarize_train_outputs).train()
    rows_read = getattr(train_data, "rows_read", num_examples(train_data))  # in memory: every row, once
    logger.info("rank %d read %d training rows of %d", rank, rows_read, num_examples(train_data))
    if rank == 0 and metrics:
        print("eval " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
              flush=True)
    return metrics


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_cli(lambda arguments: run(build_parser().parse_args(arguments)), argv)
