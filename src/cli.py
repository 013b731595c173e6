"""What the entry scripts share: one flag vocabulary, error handling, and the model config and vocabulary they load.

Every flag is defined once in ``FLAGS`` (destination, spellings, type, default, help); an entry point picks the
flags it takes with ``add_flags``, overriding a default or help text where its use differs. The seed's and the model
zoo's spellings are aliases of one destination (``--vocab_file_path`` / ``--vocab_path`` / ``--vocab_file``).
Booleans take the seed's ``true|false`` (a bare flag also means true). ``run_cli`` turns the library's exceptions
about bad input into one line ``error: ...`` and a non-zero exit; ``--debug true`` shows the traceback instead.
"""
import argparse
import dataclasses
import logging
import os
import sys

from .ernie_model import check_compute_dtype, load_config
from .fileio import copy_atomic
from .kernels.build import KernelUnavailable, kernel_library
from .layers import use_fused_cpu_kernels
from .tokenizer import ErnieTokenizer, check_vocab_fits
from .train_config import TrainConfig, load_train_config


def str2bool(value):
    """The seed's ``--flag true|false`` booleans (also 1/0, yes/no)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes", "y"):
        return True
    if value.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _flag(spellings, help, **kwargs):
    return {"spellings": spellings, "help": help, **kwargs}


def _bool(spellings, help, default=False):
    return _flag(spellings, help, type=str2bool, nargs="?", const=True, default=default, metavar="true|false")


DEVICES = ["auto", "Ascend", "GPU", "CPU"]
FLAGS = {
    # what to run on
    "device_target": _flag(["--device_target"], "device: auto = the one this MindSpore package targets",
                           default="auto", choices=DEVICES),
    "device_id": _flag(["--device_id"], "device id (default: the launcher's or 0)", type=int, default=None),
    "seed": _flag(["--seed", "--random_seed"], "random seed of initialisation, shuffling and masking", type=int,
                  default=0),
    "debug": _bool(["--debug"], "show Python tracebacks for input errors too"),
    "progress_bar": _bool(["--progress_bar"], "progress bars on stderr", default=True),
    # the task
    "task_type": _flag(["--task_type", "--task"], "the task (default: the script's first)"),
    "num_class": _flag(["--num_class", "--number_labels"], "number of labels (checked against the label map)",
                       type=int, default=None),
    "label_map_file": _flag(["--label2id_file_path", "--label_map_config", "--label_map_file"],
                            "label_map.json {label: id} (default: the task's labels, or the trained model's)",
                            default=""),
    "use_crf": _bool(["--use_crf"], "NER: CRF head instead of per-token softmax (default: the trained model's, "
                                    "else false)", default=None),
    "assessment_method": _flag(["--assessment_method"], "metric that selects the best checkpoint", default=None),
    # the model
    "config": _flag(["--config"], "model config: a preset (base, tiny) or an ernie_config.json (default: the one "
                                  "beside the weights, else base)", default=""),
    "compute_dtype": _flag(["--compute_dtype"], "dtype of the matrix multiplications (default: the config's)",
                           default=None, choices=["float32", "float16", "bfloat16"]),
    "fused_cpu_kernels": _bool(["--fused_cpu_kernels"], "CPU: the fused LayerNorm, softmax, dropout and "
                                                        "AdamWeightDecay custom operators of src/kernels (default: "
                                                        "true with --compute_dtype bfloat16 on CPU, else false)",
                               default=None),
    "vocab_file": _flag(["--vocab_file", "--vocab_file_path", "--vocab_path"],
                        "vocab.txt (default: the one beside the weights)", default=""),
    "load_pretrain_checkpoint_path": _flag(["--load_pretrain_checkpoint_path", "--load_checkpoint_path"],
                                           "pretrained ERNIE .ckpt to start from (default: random weights)",
                                           default=""),
    "load_finetune_checkpoint_path": _flag(["--load_finetune_checkpoint_path"],
                                           "fine-tuned .ckpt (or its output folder) to evaluate", default=""),
    "model": _flag(["--model", "--model_path", "--ckpt_file"],
                   "a fine-tuned .ckpt or output folder, or an exported .mindir / .onnx with its sidecar"),
    # data
    "task_data_dir": _flag(["--task_data_dir"], "ERNIE task_data root: default data files are TASK_DATA_DIR/<task "
                                                "folder>/{train,dev,test}.* and label_map.json", default=""),
    "eval_split": _flag(["--eval_split"], "with --task_data_dir: the split to evaluate", default="dev",
                        choices=["dev", "test"]),
    "do_train": _bool(["--do_train"], "fine-tune on the training data"),
    "do_eval": _bool(["--do_eval"], "score the evaluation data and write its predictions"),
    "eval_during_training": _bool(["--eval_during_training"], "evaluate the eval data while training and keep the "
                                  "best checkpoint; false: evaluate the final weights once (for a test set)",
                                  default=True),
    "eval_data_shuffle": _bool(["--eval_data_shuffle"], "accepted for the seed's scripts; evaluation keeps the order"),
    "train_data_file_path": _flag(["--train_data_file_path"], "training data", default=""),
    "eval_data_file_path": _flag(["--eval_data_file_path"], "evaluation data (dev during training)", default=""),
    "dataset_format": _flag(["--dataset_format"], "data files: raw (TSV / JSON) or converted records",
                            default="raw", choices=["raw", "mindrecord", "tfrecord"]),
    "shard_data": _bool(["--shard_data"], "MindRecord training data with several data-parallel processes: each "
                                          "reads only the rows of its own slices of the global batches, streamed, "
                                          "instead of all rows into memory; the batches are the same either way "
                                          "(default: true with more than one process and MindRecord data)",
                        default=None),
    "schema_file_path": _flag(["--schema_file_path", "--schema_dir"],
                              "schema JSON: the columns MindRecord data must have; TFRecord's column types and "
                              "shapes (the seed's format)", default=""),
    "eval_json_path": _flag(["--eval_json_path"], "MRC from records: the SQuAD JSON they were made from",
                            default=""),
    "columns": _flag(["--columns"], "TSV files without a header row: their column names, e.g. text_a,text_b,label",
                     default=""),
    "skip_bad_examples": _bool(["--skip_bad_examples", "--skip_bad_lines"],
                               "log, count and leave out malformed examples instead of stopping at the first"),
    "max_seq_len": _flag(["--max_seq_len", "--max_seq_length"], "tokens per sequence (default: the task's, or the "
                                                                "trained model's)", type=int, default=None),
    "max_query_len": _flag(["--max_query_len"], "MRC: question tokens (default: the task's, or the trained model's)",
                           type=int, default=None),
    "doc_stride": _flag(["--doc_stride"], "MRC: tokens between context windows (default: the task's, or the "
                                          "trained model's)", type=int, default=None),
    "max_answer_len": _flag(["--max_answer_len"], "MRC: longest answer, in tokens", type=int, default=100),
    "n_best_size": _flag(["--n_best_size"], "MRC: candidate starts and ends per window", type=int, default=20),
    "max_train_samples": _flag(["--max_train_samples"], "use only the first N training examples (0: all)",
                               type=int, default=0),
    "max_eval_samples": _flag(["--max_eval_samples"], "evaluate only the first N examples (0: all)", type=int,
                              default=0),
    # training
    "output_dir": _flag(["--output_dir", "--save_finetune_checkpoint_path", "--save_checkpoint_path"],
                        "checkpoints, logs and predictions", default=""),
    "overwrite_output_dir": _bool(["--overwrite_output_dir"],
                                  "start afresh in an output folder that holds a different run"),
    "resume": _bool(["--resume"], "continue the same run from OUTPUT_DIR/checkpoint_last.ckpt", default=True),
    "epoch_num": _flag(["--epoch_num", "--epoch_size"], "epochs (default: the task's)", type=int, default=None),
    "max_steps": _flag(["--max_steps", "--train_steps"], "> 0: train this many steps, whatever the epochs",
                       type=int, default=-1),
    "batch_size": _flag(["--batch_size", "--train_batch_size"], "training batch size per process (default: the "
                                                                "task's)", type=int, default=None),
    "eval_batch_size": _flag(["--eval_batch_size"], "evaluation batch size", type=int, default=32),
    "learning_rate": _flag(["--learning_rate"], "peak learning rate (default: the task's)", type=float,
                           default=None),
    "optimizer": _flag(["--optimizer"], "optimizer (default: --train_config's, else AdamWeightDecay)", default=None,
                       choices=["AdamWeightDecay", "Lamb", "Momentum"]),
    "train_config": _flag(["--train_config"], "YAML or JSON file with the seed's optimizer, schedule and loss-scale "
                                              "table (see src/train_config.py); flags given win over it",
                          default=""),
    "end_learning_rate": _flag(["--end_learning_rate"], "learning rate at the end of the decay (default 0)",
                               type=float, default=None),
    "power": _flag(["--power"], "power of the polynomial decay (default 1: linear)", type=float, default=None),
    "decay_steps": _flag(["--decay_steps"], "the seed's decay length, counted from step 0 (default: decay to the "
                                            "last step)", type=int, default=None),
    "eps": _flag(["--eps"], "AdamWeightDecay / Lamb epsilon (default 1e-6)", type=float, default=None),
    "momentum": _flag(["--momentum"], "Momentum's momentum (default 0.9)", type=float, default=None),
    "loss_scale_value": _flag(["--loss_scale_value"], "float16: initial dynamic loss scale (default 2^16)",
                              type=float, default=None),
    "scale_factor": _flag(["--scale_factor"], "float16: loss scale factor on overflow (default 2)", type=float,
                          default=None),
    "scale_window": _flag(["--scale_window"], "float16: steps without overflow before the scale grows (default "
                                              "1000)", type=int, default=None),
    "warmup_proportion": _flag(["--warmup_proportion"], "share of the steps with linear warm-up", type=float,
                               default=0.1),
    "warmup_steps": _flag(["--warmup_steps"], ">= 0: warm-up steps, overriding --warmup_proportion", type=int,
                          default=-1),
    "weight_decay": _flag(["--weight_decay"], "decoupled weight decay, not on LayerNorm and biases (default 0.01)",
                          type=float, default=None),
    "max_grad_norm": _flag(["--max_grad_norm"], "global-norm gradient clipping (0: off)", type=float, default=1.0),
    "shuffle": _bool(["--train_data_shuffle", "--do_shuffle"], "shuffle the training data each epoch", default=True),
    "eval_every": _flag(["--eval_every"], "evaluate every N steps (0: at each epoch end)", type=int, default=0),
    "log_every": _flag(["--log_every"], "write a train_log.jsonl line every N steps", type=int, default=10),
    "save_every": _flag(["--save_every", "--save_checkpoint_steps"], "write the resumable checkpoint every N steps "
                                                                     "(0: at each epoch end)", type=int, default=0),
    "keep_checkpoint_max": _flag(["--keep_checkpoint_max", "--save_checkpoint_num"], "epoch checkpoints to keep",
                                 type=int, default=1),
    # serving
    "batch_size_serving": _flag(["--batch_size"], "rows per model call", type=int, default=8),
    "num_threads": _flag(["--num_threads"], "onnxruntime intra-op threads (default: onnxruntime's)", type=int,
                         default=None),
}


def add_flags(parser, *names, **overrides):
    """Adds the named ``FLAGS``; ``overrides``: {name: {field: value}} for this entry point (e.g. another default)."""
    for name in names:
        spec = {**FLAGS[name], **overrides.get(name, {})}
        spellings = spec.pop("spellings")
        dest = "batch_size" if name == "batch_size_serving" else name
        parser.add_argument(*spellings, dest=dest, **spec)


def new_parser(prog, description):
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    return parser


def run_cli(main, argv=None):
    """Runs an entry point's ``main(argv)``: bad input (the library's ValueError, OSError and their kin) ends the
    process with one line ``error: ...`` on stderr and a non-zero status, unless ``--debug true`` asks for the
    traceback. Anything else is our bug and keeps its traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except (ValueError, OSError, FloatingPointError) as err:
        if _debug_requested(argv):
            raise
        message = str(err) or type(err).__name__
        if isinstance(err, OSError) and err.filename and str(err.filename) not in message:
            message = f"{err.filename}: {message}"
        raise SystemExit(f"error: {message}") from None


OPTIMIZER_FLAGS = ("optimizer", "train_config", "learning_rate", "end_learning_rate", "power", "warmup_steps",
                   "warmup_proportion", "decay_steps", "weight_decay", "eps", "momentum", "max_grad_norm",
                   "loss_scale_value", "scale_factor", "scale_window")


def optimizer_settings(args, default_learning_rate):
    """``(optimizer name, OptimizerSettings, LossScaleSettings, compute type or None)`` from ``--train_config`` (the
    seed's table) with the flags the user gave winning over it."""
    table = load_train_config(args.train_config) if args.train_config else TrainConfig()
    name = args.optimizer or table.optimizer or "AdamWeightDecay"
    settings = table.optimizer_settings(name).with_overrides(
        learning_rate=args.learning_rate, end_learning_rate=args.end_learning_rate, power=args.power,
        warmup_steps=args.warmup_steps if args.warmup_steps >= 0 else None, decay_steps=args.decay_steps,
        weight_decay=args.weight_decay, eps=args.eps, momentum=args.momentum)
    settings = settings.with_overrides(learning_rate=settings.learning_rate or default_learning_rate,
                                       weight_decay=0.01 if settings.weight_decay is None else settings.weight_decay)
    loss_scale = dataclasses.replace(table.loss_scale, **{
        key: value for key, value in (("loss_scale_value", args.loss_scale_value), ("scale_factor", args.scale_factor),
                                      ("scale_window", args.scale_window)) if value is not None})
    return name, settings, loss_scale, table.compute_type


def _debug_requested(argv):
    for index, arg in enumerate(argv):
        if arg == "--debug":
            value = argv[index + 1] if index + 1 < len(argv) else ""
            return not value or value.startswith("-") or value.lower() in ("true", "1", "yes", "y")
        if arg.startswith("--debug="):
            return arg[len("--debug="):].lower() in ("true", "1", "yes", "y")
    return False


def file_beside(path, name):
    """``name`` in the folder of ``path`` when that file exists, else ""."""
    candidate = os.path.join(os.path.dirname(path), name) if path else ""
    return candidate if candidate and os.path.exists(candidate) else ""


def model_config_and_tokenizer(config, vocab_file, weights_path, compute_dtype, device_target):
    """``(config, config_source, tokenizer)`` of an entry script: ``--config`` and ``--vocab_file``, else the
    ``ernie_config.json`` / ``vocab.txt`` beside the weights it loads, else the ``base`` preset; the vocabulary must
    fit the embedding table and the compute dtype the device."""
    config_source = config or file_beside(weights_path, "ernie_config.json") or "base"
    model_config = load_config(config_source, compute_dtype=compute_dtype)
    check_compute_dtype(device_target, model_config.compute_dtype)
    vocab_file = vocab_file or file_beside(weights_path, "vocab.txt")
    if not vocab_file:
        raise ValueError("no vocabulary: pass --vocab_file (ERNIE's vocab.txt; scripts/download_pretrained_models.sh "
                         "and scripts/migrate_pretrained_models.sh put one beside the converted weights)")
    tokenizer = ErnieTokenizer(vocab_file)
    check_vocab_fits(tokenizer, model_config.vocab_size, config_source)
    return model_config, config_source, tokenizer


def fused_cpu_kernels(requested, device_target, compute_dtype):
    """``--fused_cpu_kernels`` (None: on for bfloat16 on CPU, whose bf16 GEMMs need the same library): switches the
    fused LayerNorm, softmax and dropout on or off for the models built afterwards and returns whether the training
    uses the fused AdamWeightDecay. Raises ValueError (with the reason) off CPU or where the kernels cannot be built."""
    enabled = (compute_dtype == "bfloat16" and device_target == "CPU") if requested is None else requested
    if enabled:
        if device_target != "CPU":
            raise ValueError(f"--fused_cpu_kernels: the fused operators are CPU kernels; {device_target} runs its "
                             f"own fused LayerNorm, dropout and optimizer, drop the flag")
        try:
            kernel_library()
        except KernelUnavailable as err:
            raise ValueError(f"--fused_cpu_kernels: {err}") from None
        logging.getLogger(__name__).info("fused CPU kernels: LayerNorm, softmax, dropout and AdamWeightDecay "
                                         "(src/kernels)")
    use_fused_cpu_kernels(enabled)
    return enabled


def save_model_files(output_dir, config, tokenizer):
    """``ernie_config.json`` and ``vocab.txt`` beside a run's checkpoints, so they load and serve on their own."""
    config.to_json_file(os.path.join(output_dir, "ernie_config.json"))
    copy_atomic(tokenizer.vocab_file, os.path.join(output_dir, "vocab.txt"))
