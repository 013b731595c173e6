"""Fine-tune a randomly initialised tiny ERNIE on the real task data in ../shared/data and print a results table.

No pre-trained ERNIE weights exist offline, so this measures the toolkit end to end (readers, training loop, metrics)
on real data with ERNIE's real vocabulary, not ERNIE's published accuracy. Each run is a plain command line of the
task scripts; their output folders (under --output_root) keep the logs, checkpoints, predictions and metrics.

    python experiments/finetune_from_scratch.py [--tasks chnsenticorp msra_ner ...] [--output_root output/from_scratch]
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))
VOCAB = os.path.join(DATA, "ernie_1.0", "vocab.txt")
COMMON = ["--config", "tiny", "--vocab_file_path", VOCAB, "--device_target", "CPU", "--warmup_proportion", "0.1",
          "--progress_bar", "false", "--log_every", "50"]

# task -> (entry script, [(split name, eval file)], training flags); budgets chosen to fit ~1 hour on 2 CPU cores
RUNS = {
    "chnsenticorp": ("run_ernie_classifier.py",
                     [("dev", "chnsenticorp_ernie/dev.tsv"), ("test", "chnsenticorp_ernie/test.tsv")],
                     ["--task_type", "chnsenticorp", "--train_data_file_path", "chnsenticorp_ernie/train.tsv",
                      "--max_seq_len", "128", "--batch_size", "32", "--epoch_num", "4", "--learning_rate", "5e-4"]),
    "msra_ner": ("run_ernie_ner.py", [("test", "msra_ner/msra_test_bio.txt")],
                 ["--task_type", "msra_ner", "--train_data_file_path", "msra_ner/msra_train_bio.txt",
                  "--max_train_samples", "20000", "--max_seq_len", "128", "--batch_size", "32", "--epoch_num", "2",
                  "--learning_rate", "1e-3"]),
    "msra_ner_crf": ("run_ernie_ner.py", [("test", "msra_ner/msra_test_bio.txt")],
                     ["--task_type", "msra_ner", "--use_crf", "true",
                      "--train_data_file_path", "msra_ner/msra_train_bio.txt", "--max_train_samples", "20000",
                      "--max_seq_len", "128", "--batch_size", "32", "--epoch_num", "2", "--learning_rate", "1e-3"]),
    "xnli": ("run_ernie_classifier.py", [("test", "xnli_zh_ernie/test.tsv")],
             ["--task_type", "xnli", "--train_data_file_path", "xnli_zh_ernie/dev.tsv", "--max_seq_len", "128",
              "--batch_size", "32", "--epoch_num", "5", "--learning_rate", "5e-4"]),
    "cmrc": ("run_ernie_mrc.py", [("dev", "cmrc2018/cmrc2018_dev.json")],
             ["--task_type", "cmrc", "--train_data_file_path", "cmrc2018/cmrc2018_trial.json",
              "--skip_bad_examples", "true", "--max_seq_len", "256", "--doc_stride", "128", "--max_query_len", "32",
              "--batch_size", "16", "--epoch_num", "6", "--learning_rate", "5e-4"]),
}
PRIMARY = {"chnsenticorp": "accuracy", "xnli": "accuracy", "msra_ner": "f1", "msra_ner_crf": "f1", "cmrc": "f1"}


def data_path(relative):
    return os.path.join(DATA, relative)


def run_task(name, output_root, smoke=False):
    script, evaluations, flags = RUNS[name]
    output_dir = os.path.join(output_root, name)
    flags = [data_path(f) if f.endswith((".tsv", ".txt", ".json")) else f for f in flags]
    if smoke:
        flags += ["--max_steps", "3", "--max_eval_samples", "48"]
    first_split, first_eval = evaluations[0]
    # Only ChnSentiCorp has a dev split to select the best epoch on; the others report their final weights.
    train = [sys.executable, script, *COMMON, *flags, "--output_dir", output_dir, "--do_train", "true",
             "--do_eval", "true", "--eval_data_file_path", data_path(first_eval),
             "--eval_during_training", "true" if first_split == "dev" and len(evaluations) > 1 else "false"]
    print(" ".join(train), flush=True)
    start = time.time()
    subprocess.run(train, cwd=REPO, check=True)
    minutes = (time.time() - start) / 60
    task_type = flags[flags.index("--task_type") + 1]
    results = {}
    for split, eval_file in evaluations:
        stem = os.path.splitext(os.path.basename(eval_file))[0]
        if split != first_split:
            evaluate = [sys.executable, script, *COMMON, *flags, "--output_dir",
                        output_dir, "--do_eval", "true", "--eval_data_file_path", data_path(eval_file),
                        "--load_finetune_checkpoint_path", os.path.join(output_dir, f"{task_type}-best.ckpt")]
            print(" ".join(evaluate), flush=True)
            subprocess.run(evaluate, cwd=REPO, check=True)
        with open(os.path.join(output_dir, f"{stem}_metrics.json"), encoding="utf-8") as f:
            results[split] = json.load(f)
    return results, minutes


def majority_baseline(name):
    """Accuracy of always predicting the most frequent training label (classification tasks)."""
    _, evaluations, flags = RUNS[name]
    if name not in ("chnsenticorp", "xnli"):
        return None
    from collections import Counter
    train_file = data_path(flags[flags.index("--train_data_file_path") + 1])
    with open(train_file, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        labels = Counter(line.rstrip("\n").split("\t")[header.index("label")] for line in f)
    top = labels.most_common(1)[0][0]
    baseline = {}
    for split, eval_file in evaluations:
        with open(data_path(eval_file), encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            gold = [line.rstrip("\n").split("\t")[header.index("label")] for line in f]
        baseline[split] = sum(g == top for g in gold) / len(gold)
    return baseline


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--output_root", default=os.path.join(REPO, "output", "from_scratch"))
    parser.add_argument("--smoke", action="store_true", help="3 steps and 48 eval examples a task: checks the commands")
    args = parser.parse_args()
    if not os.path.isdir(DATA):
        raise SystemExit(f"{DATA} is absent: this experiment needs the real datasets")
    rows = []
    for name in args.tasks:
        results, minutes = run_task(name, args.output_root, args.smoke)
        baseline = majority_baseline(name)
        for split, metrics in results.items():
            key = PRIMARY[name]
            extra = f"EM {metrics['exact_match']:.2f}" if name == "cmrc" else (
                f"P {metrics['precision']:.4f} R {metrics['recall']:.4f}" if "ner" in name else "")
            rows.append(f"| {name} | {split} | {key} {metrics[key]:.4f} | {extra} | "
                        f"{'' if baseline is None else f'{baseline[split]:.4f}'} | {minutes:.1f} |")
    print("\n| task | split | metric | detail | majority-class baseline | train+eval minutes |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
