"""The three fine-tuning entry points end to end on small generated data in the real file formats.

Each run trains a few steps, evaluates, writes predictions, and the printed metrics are recomputed independently from
the predictions file (seqeval for NER, the CMRC scorer's definition of EM for MRC).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import custom_kernels_unavailable, write_micro_config
from src.finetune import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt")
CHARS = list("一三上下不个中么九也书了京亲人什他价你全公共务包北华去台名吗含和哪喝四回国在城多大太学宫家少开很心怎我房把推放政故料明是有服来校格歌母民江没河治流海理的省第经胜解证话说读贵资车达这都酒里错长问间阅集题首黄")
SURNAMES, PLACES = "张李", ["北京", "上海", "台北"]


@pytest.fixture(scope="module")
def model_config(tmp_path_factory):
    return write_micro_config(tmp_path_factory.mktemp("config"), dropout=0.1)


def common_flags(model_config, output_dir, *extra):
    return ["--config", model_config, "--vocab_file_path", VOCAB, "--output_dir", str(output_dir),
            "--device_target", "CPU", "--max_seq_len", "24", "--batch_size", "8", "--eval_batch_size", "16",
            "--learning_rate", "1e-3", "--log_every", "5", "--progress_bar", "false", *extra]


def printed_metrics(text):
    """``name value`` pairs of the seed-format metric lines (per-entity-type lines, which have a colon, skipped)."""
    pairs = []
    for line in text.splitlines():
        if ":" not in line:
            pairs += re.findall(r"(?:^|, )([A-Za-z_][A-Za-z_0-9]*) (-?[0-9.]+)(?=,|$)", line)
    return {key: float(value) for key, value in pairs}


def sentiment_rows(n, rng):
    rows = []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(CHARS, 8))
        words[int(rng.integers(0, 8))] = "好" if label else "错"
        rows.append((label, "".join(words)))
    return rows


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        f.writelines("\t".join(map(str, row)) + "\n" for row in rows)


def test_classifier_trains_evaluates_predicts_and_reloads(tmp_path, model_config, capsys):
    rng = np.random.default_rng(0)
    write_tsv(tmp_path / "train.tsv", ("label", "text_a"), sentiment_rows(96, rng))
    write_tsv(tmp_path / "dev.tsv", ("label", "text_a"), sentiment_rows(40, rng))
    out = tmp_path / "out"
    main("classification", common_flags(model_config, out, "--task_type", "chnsenticorp", "--do_train", "true",
                                        "--do_eval", "true", "--epoch_num", "15",
                                        "--train_data_file_path", str(tmp_path / "train.tsv"),
                                        "--eval_data_file_path", str(tmp_path / "dev.tsv")))
    metrics = printed_metrics(capsys.readouterr().out)
    predictions = [json.loads(line) for line in open(out / "dev_predictions.jsonl", encoding="utf-8")]
    gold = [line.split("\t")[0] for line in open(tmp_path / "dev.tsv", encoding="utf-8").read().splitlines()[1:]]
    assert len(predictions) == 40  # the last partial batch is evaluated too
    assert metrics["accuracy"] == pytest.approx(np.mean([p["raw_label"] == g for p, g in zip(predictions, gold)]),
                                                abs=1e-6)
    assert {p["label"] for p in predictions} <= {"negative", "positive"}  # readable names, the data's label kept
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in predictions)
    assert metrics["accuracy"] >= 0.8, "the keyword task should be learned in 180 steps"
    assert json.load(open(out / "task.json"))["labels"] == ["0", "1"]
    assert {"chnsenticorp-best.ckpt", "checkpoint_last.ckpt", "train_log.jsonl", "ernie_config.json"} <= set(
        os.listdir(out))

    main("classification", common_flags(model_config, tmp_path / "eval_only", "--task_type", "chnsenticorp",
                                        "--do_eval", "true", "--eval_data_file_path", str(tmp_path / "dev.tsv"),
                                        "--load_finetune_checkpoint_path", str(out / "chnsenticorp-best.ckpt")))
    assert printed_metrics(capsys.readouterr().out) == metrics


def test_dbqa_reports_mrr_by_question(tmp_path, model_config, capsys):
    rng = np.random.default_rng(1)
    rows = []
    for qid in range(24):
        question = "".join(rng.choice(CHARS, 5))
        for candidate in range(3):
            label = int(candidate == qid % 3)
            rows.append((qid, question, "".join(rng.choice(CHARS, 6)) + ("好" if label else "错"), label))
    write_tsv(tmp_path / "train.tsv", ("qid", "text_a", "text_b", "label"), rows)
    main("classification", common_flags(model_config, tmp_path / "out", "--task_type", "dbqa", "--do_train", "true",
                                        "--do_eval", "true", "--epoch_num", "1", "--max_steps", "3",
                                        "--train_data_file_path", str(tmp_path / "train.tsv"),
                                        "--eval_data_file_path", str(tmp_path / "train.tsv")))
    metrics = printed_metrics(capsys.readouterr().out)
    assert {"accuracy", "Precision", "Recall", "F1", "MRR"} <= set(metrics)
    assert 1 / 3 - 1e-9 <= metrics["MRR"] <= 1


def ner_sentences(n, rng):
    sentences = []
    for _ in range(n):
        chars, tags = [], []
        for _ in range(3):
            filler = list(rng.choice(CHARS, int(rng.integers(1, 4))))
            chars += filler
            tags += ["O"] * len(filler)
            if rng.random() < 0.5:
                name = [str(rng.choice(list(SURNAMES)))] + list(rng.choice(CHARS, 1))
                chars += name
                tags += ["B-PER", "I-PER"]
            else:
                place = list(PLACES[int(rng.integers(0, 3))])
                chars += place
                tags += ["B-LOC"] + ["I-LOC"] * (len(place) - 1)
        sentences.append((chars, tags))
    return sentences


def fused_kernels_flag():
    """``--fused_cpu_kernels true`` where the kernels build: dropout then draws the same masks in every run, so a
    score threshold cannot flake (MindSpore's CPU Dropout draws other masks each run)."""
    return [] if custom_kernels_unavailable() else ["--fused_cpu_kernels", "true"]


@pytest.mark.parametrize("use_crf", ["false", "true"])
def test_ner_with_softmax_or_crf_head(tmp_path, model_config, capsys, use_crf):
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = np.random.default_rng(2)
    write_tsv(tmp_path / "train.tsv", ("text_a", "label"),
              [("\x02".join(c), "\x02".join(t)) for c, t in ner_sentences(128, rng)])
    dev = ner_sentences(24, rng)
    with open(tmp_path / "dev.txt", "w", encoding="utf-8") as f:  # the other accepted layout: char TAB tag lines
        f.write("\n\n".join("\n".join(f"{c}\t{t}" for c, t in zip(chars, tags)) for chars, tags in dev) + "\n")
    out = tmp_path / "out"
    main("ner", common_flags(model_config, out, "--task_type", "msra_ner", "--use_crf", use_crf, "--do_train", "true",
                             "--do_eval", "true", "--epoch_num", "15", "--learning_rate", "5e-3",
                             "--train_data_file_path", str(tmp_path / "train.tsv"),
                             "--eval_data_file_path", str(tmp_path / "dev.txt"), *fused_kernels_flag()))
    metrics = printed_metrics(capsys.readouterr().out)
    records = [json.loads(line) for line in open(out / "dev_predictions.jsonl", encoding="utf-8")]
    assert [r["text"] for r in records] == ["".join(chars) for chars, _ in dev]
    predicted_tags = []
    for record in records:
        tags = ["O"] * len(record["text"])
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]
            tags[entity["start"]] = f"B-{entity['type']}"
            tags[entity["start"] + 1:entity["end"]] = [f"I-{entity['type']}"] * (entity["end"] - entity["start"] - 1)
        predicted_tags.append(tags)
    gold_tags = [tags for _, tags in dev]
    assert metrics["F1"] == pytest.approx(seqeval.f1_score(gold_tags, predicted_tags), abs=1e-6)
    assert metrics["F1"] > 0.5, "surname + char and fixed place names are easy entities"


def test_mrc_trains_and_writes_official_prediction_json(tmp_path, model_config, capsys):
    rng = np.random.default_rng(3)
    data, questions = [], 0
    for article in range(12):
        places = [PLACES[int(rng.integers(0, 3))] for _ in range(2)]
        context = "".join(rng.choice(CHARS, 6)) + "在" + places[0] + "".join(rng.choice(CHARS, 20))
        qas = [{"id": f"Q{article}", "question": "在哪里？",
                "answers": [{"text": places[0], "answer_start": context.index("在" + places[0]) + 1}]}]
        questions += 1
        data.append({"paragraphs": [{"context": context, "qas": qas}]})
    (tmp_path / "train.json").write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    main("mrc", common_flags(model_config, out, "--task_type", "cmrc", "--do_train", "true", "--do_eval", "true",
                             "--epoch_num", "2", "--max_query_len", "8", "--doc_stride", "8",
                             "--train_data_file_path", str(tmp_path / "train.json"),
                             "--eval_data_file_path", str(tmp_path / "train.json")))
    metrics = printed_metrics(capsys.readouterr().out)
    answers = json.load(open(out / "train_predictions.json", encoding="utf-8"))
    assert sorted(answers) == sorted(f"Q{i}" for i in range(12))
    gold = {qa["id"]: qa["answers"][0]["text"] for a in data for p in a["paragraphs"] for qa in p["qas"]}
    exact = np.mean([answers[q] == gold[q] for q in gold]) * 100
    assert metrics["EM"] == pytest.approx(exact, abs=1e-4)
    assert os.path.exists(out / "train_predictions_nbest.json")


def test_mindrecord_input_gives_the_same_training_as_raw(tmp_path, model_config, capsys):
    rng = np.random.default_rng(4)
    write_tsv(tmp_path / "train.tsv", ("label", "text_a"), sentiment_rows(32, rng))
    for split in ("train",):
        subprocess.run([sys.executable, "-m", "src.finetune_task_reader", "--task_type", "chnsenticorp",
                        "--vocab_path", VOCAB, "--max_seq_len", "24", "--input_file", str(tmp_path / f"{split}.tsv"),
                        "--output_file", str(tmp_path / f"{split}.mindrecord")], check=True, cwd=REPO,
                       capture_output=True)
    results = {}
    for fmt, suffix in (("raw", "tsv"), ("mindrecord", "mindrecord")):
        main("classification", common_flags(model_config, tmp_path / fmt, "--task_type", "chnsenticorp",
                                            "--do_train", "true", "--do_eval", "true", "--max_steps", "4",
                                            "--dataset_format", fmt, "--train_data_file_path",
                                            str(tmp_path / f"train.{suffix}"),
                                            "--eval_data_file_path", str(tmp_path / f"train.{suffix}")))
        results[fmt] = printed_metrics(capsys.readouterr().out)
    assert results["raw"] == results["mindrecord"]


def test_bad_flags_are_clear_errors(tmp_path, model_config):
    with pytest.raises(SystemExit, match="nothing to do"):
        main("classification", common_flags(model_config, tmp_path))
    with pytest.raises(SystemExit, match="needs --load_finetune_checkpoint_path"):
        main("classification", common_flags(model_config, tmp_path, "--do_eval", "true",
                                            "--eval_data_file_path", "x.tsv"))
    write_tsv(tmp_path / "train.tsv", ("label", "text_a"), [(2, "你好")])
    with pytest.raises(SystemExit, match="--num_class 3 but the label map has 2"):
        main("classification", common_flags(model_config, tmp_path, "--do_train", "true", "--num_class", "3",
                                            "--train_data_file_path", str(tmp_path / "train.tsv")))
    with pytest.raises(SystemExit, match=r"^error: .*train\.tsv:2: .*label"):
        main("classification", common_flags(model_config, tmp_path, "--do_train", "true",
                                            "--train_data_file_path", str(tmp_path / "train.tsv")))
