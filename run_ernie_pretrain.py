"""ERNIE 1.0 pre-training: masked LM with knowledge masking plus next-sentence prediction, on one or many processes.

Data (``--data_dir``): MindRecord written by ``python -m src.pretraining_reader`` (a file, its shards or a directory
of them), or raw input masked on the fly with ``--data_format ernie|text|tagged`` (see src/pretraining_reader.py).
Checkpoints (``ernie-EPOCH_STEP.ckpt``, parameter names ``ernie.*`` and ``cls.*``) go to ``--output_dir`` with
``ernie_config.json`` and ``vocab.txt`` beside them, so ``run_ernie_classifier.py --load_pretrain_checkpoint_path``
takes them as they are. An interrupted run resumes from ``checkpoint_last.ckpt`` in the same directory.

Examples::

    python run_ernie_pretrain.py --data_dir demo_train_set.gz --data_format ernie --vocab_file vocab.txt \\
        --config tiny --train_steps 100 --output_dir output/pretrain
    msrun --worker_num=2 --local_worker_num=2 --master_addr=127.0.0.1 --master_port=8118 --log_dir=ms_log \\
        --join=True run_ernie_pretrain.py --data_dir pretrain.mindrecord --vocab_file vocab.txt --distribute true
"""
import argparse
import logging
import os

import numpy as np
from mindspore import Tensor

from src.checkpoint import load_weights, log_report
from src.cli import model_config_and_tokenizer, save_model_files
from src.cli import str2bool
from src.dataset import eval_batches, num_examples, steps_per_epoch
from src.finetune_task_reader import InputError, check_schema
from src.heads import ErnieForPretraining
from src.losses import PretrainingLoss
from src.optimization import OPTIMIZERS
from src.pretraining_reader import (COLUMNS, DATA_FORMATS, MASKING_STRATEGIES, load_pretraining_data, parse_mix,
                                    read_pretraining_mindrecord)
from src.runtime import distributed_context, init_runtime
from src.trainer import TrainingConfig, train

logger = logging.getLogger("run_ernie_pretrain")


def build_parser():
    parser = argparse.ArgumentParser(description="ERNIE 1.0 pre-training (knowledge-masked LM + next sentence)")
    add = parser.add_argument
    add("--device_target", default="auto", choices=["auto", "Ascend", "GPU", "CPU"])
    add("--device_id", type=int, default=None)
    add("--distribute", type=str2bool, default=False, help="data parallel; needs msrun or an HCCL rank table")
    add("--device_num", type=int, default=1, help="processes expected with --distribute (checked)")
    add("--epoch_size", type=int, default=1)
    add("--train_steps", type=int, default=-1,
        help="> 0: this many steps, whatever --epoch_size (-1: epoch_size epochs)")
    add("--data_dir", required=True, help="MindRecord file / shards / directory, or raw input (--data_format)")
    add("--data_format", default="mindrecord", choices=("mindrecord",) + DATA_FORMATS)
    add("--schema_dir", default="", help="MindRecord schema JSON: the data must have the columns it names")
    add("--eval_data", default="", help="held-out data (same format as --data_dir): MLM and NSP accuracy")
    add("--eval_every", type=int, default=0, help="evaluate every N steps (default: at each epoch end)")
    add("--eval_batch_size", type=int, default=32)
    add("--vocab_file", default="", help="vocab.txt (default: beside --load_checkpoint_path)")
    add("--config", default="", help="preset (base, tiny) or ernie_config.json (default: beside "
                                     "--load_checkpoint_path, else base)")
    add("--masking", default="ernie", choices=MASKING_STRATEGIES, help="raw input: masking level")
    add("--ernie_mix", default="char=1,phrase=1,entity=1", help="--masking ernie: level weights per sequence")
    add("--max_seq_len", type=int, default=128, help="raw input: sequence length")
    add("--max_predictions_per_seq", type=int, default=None, help="raw input: default ceil(0.15 x max_seq_len)")
    add("--dupe_factor", type=int, default=1, help="raw input: masked copies of the data")
    add("--short_seq_prob", type=float, default=0.1)
    add("--skip_bad_lines", type=str2bool, default=False, help="ERNIE samples: skip and count malformed lines")
    add("--batch_size", type=int, default=32, help="per process")
    add("--learning_rate", type=float, default=1e-4)
    add("--optimizer", default="AdamWeightDecay", choices=OPTIMIZERS)
    add("--warmup_steps", type=int, default=-1, help=">= 0 overrides --warmup_proportion")
    add("--warmup_proportion", type=float, default=0.1)
    add("--weight_decay", type=float, default=0.01)
    add("--max_grad_norm", type=float, default=1.0)
    add("--compute_dtype", default=None, choices=["float32", "float16", "bfloat16"], help="default: the config's")
    add("--enable_lossscale", type=str2bool, default=True, help="dynamic loss scaling (float16 compute only)")
    add("--do_shuffle", type=str2bool, default=True)
    add("--seed", type=int, default=0)
    add("--load_checkpoint_path", default="", help="initial weights, e.g. converted ERNIE 1.0")
    add("--output_dir", default="", help="checkpoints and train_log.jsonl (default --save_checkpoint_path, "
                                         "else output/pretrain)")
    add("--save_checkpoint_path", default="")
    add("--enable_save_ckpt", type=str2bool, default=True, help="false: checkpoints only at epoch ends")
    add("--save_checkpoint_steps", type=int, default=1000, help="write the resumable checkpoint every N steps")
    add("--save_checkpoint_num", type=int, default=1, help="epoch checkpoints to keep")
    add("--log_every", type=int, default=10)
    add("--progress_bar", type=str2bool, default=True)
    return parser


def load_data(path, args, tokenizer):
    if args.data_format == "mindrecord":
        columns = read_pretraining_mindrecord(path)
    else:
        columns, stats = load_pretraining_data(
            path, args.data_format, tokenizer, args.max_seq_len, args.masking,
            max_predictions_per_seq=args.max_predictions_per_seq, ernie_mix=parse_mix(args.ernie_mix),
            dupe_factor=args.dupe_factor, short_seq_prob=args.short_seq_prob, seed=args.seed,
            skip_bad_lines=args.skip_bad_lines)
        logger.info("%s: %s", path, stats.summary())
    max_id = int(columns["input_ids"].max())
    if max_id not in tokenizer.ids_to_tokens:
        raise SystemExit(f"{path}: token id {max_id} is not in the vocabulary {tokenizer.vocab_file}")
    logger.info("%s: %d examples of length %d, up to %d predictions each", path, num_examples(columns),
                columns["input_ids"].shape[1], columns["masked_lm_ids"].shape[1])
    return columns


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


def summarize_train_outputs(batch_size):
    """Log fields from the sums over a log window and all ranks of PretrainingLoss's (mlm_loss, nsp_loss, mlm_correct,
    mlm_count, nsp_correct); ``batch_size`` is per rank."""
    def summarize(sums, steps, world_size):
        mlm_loss, nsp_loss, mlm_correct, mlm_count, nsp_correct = sums
        rank_steps = steps * world_size
        return {"mlm_loss": mlm_loss / rank_steps, "nsp_loss": nsp_loss / rank_steps,
                "mlm_accuracy": mlm_correct / max(mlm_count, 1.0),
                "nsp_accuracy": nsp_correct / (rank_steps * batch_size)}
    return summarize


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    output_dir = args.output_dir or args.save_checkpoint_path or os.path.join("output", "pretrain")
    device_target = init_runtime(args.device_target, args.device_id, args.seed)
    rank, world_size = distributed_context()
    if args.distribute and world_size == 1:
        raise SystemExit("--distribute true but this process was not started by msrun or with an HCCL rank table "
                         "(RANK_SIZE > 1); see scripts/run_distributed_pretrain.sh")
    if args.distribute and args.device_num not in (1, world_size):
        logger.warning("--device_num %d but %d processes were launched; using %d", args.device_num, world_size,
                       world_size)

    config, config_source, tokenizer = model_config_and_tokenizer(
        args.config, args.vocab_file, args.load_checkpoint_path, args.compute_dtype, device_target, "--vocab_file")
    logger.info("rank %d of %d on %s; model config %s; vocab %s", rank, world_size, device_target, config_source,
                tokenizer.vocab_file)

    train_columns = load_data(args.data_dir, args, tokenizer)
    eval_columns = load_data(args.eval_data, args, tokenizer) if args.eval_data else None
    if args.schema_dir:
        try:
            check_schema(args.schema_dir, train_columns, args.data_dir)
        except InputError as err:
            raise SystemExit(str(err)) from None
    seq_len = train_columns["input_ids"].shape[1]
    if seq_len > config.max_position_embeddings:
        raise SystemExit(f"{args.data_dir}: sequences of {seq_len} tokens exceed max_position_embeddings "
                         f"{config.max_position_embeddings} of {config_source}")

    model = ErnieForPretraining(config)
    if args.load_checkpoint_path:
        log_report(load_weights(model, args.load_checkpoint_path), args.load_checkpoint_path, model)
    if rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        save_model_files(output_dir, config, tokenizer)

    total_steps = args.train_steps if args.train_steps > 0 else \
        steps_per_epoch(num_examples(train_columns), args.batch_size, world_size) * args.epoch_size
    warmup_proportion = args.warmup_proportion
    if args.warmup_steps >= 0:
        warmup_proportion = min(args.warmup_steps / max(total_steps, 1), 1.0)
    training = TrainingConfig(
        output_dir=output_dir, epochs=args.epoch_size, batch_size=args.batch_size, learning_rate=args.learning_rate,
        optimizer=args.optimizer, warmup_proportion=warmup_proportion, weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm, max_steps=args.train_steps, eval_every=args.eval_every,
        log_every=args.log_every, save_every=args.save_checkpoint_steps if args.enable_save_ckpt else 0,
        keep_checkpoint_max=args.save_checkpoint_num, checkpoint_prefix="ernie", seed=args.seed,
        shuffle=args.do_shuffle, loss_scale=args.enable_lossscale and config.compute_dtype == "float16",
        progress_bar=args.progress_bar)

    def evaluate(m):
        return evaluate_pretraining(m, eval_columns, args.eval_batch_size)

    metrics = train(PretrainingLoss(model), model, train_columns, COLUMNS, training,
                    evaluate=evaluate if eval_columns is not None else None, rank=rank, world_size=world_size,
                    summarize_outputs=summarize_train_outputs(args.batch_size))
    if rank == 0 and metrics:
        print("eval " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
    return metrics


if __name__ == "__main__":
    main()
