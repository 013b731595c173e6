"""The seed's remaining features end to end on tiny models: TFRecord input (same metric as raw files), the CLUE
benchmark formats and submission files, the config table (--train_config) and the seed's per-step log line."""
import json
import os
import re

import numpy as np
import pytest

from src import finetune_task_reader
from conftest import write_micro_config
from src.finetune import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt")
CHARS = list("一三上下不个中么九也书了京亲人什他价你全公共务包北华去台名吗含和哪喝四回国在城多大太学宫家少开很心怎我房把")


@pytest.fixture(scope="module")
def model_config(tmp_path_factory):
    """Dropout 0, so two runs on the same data give the same weights."""
    return write_micro_config(tmp_path_factory.mktemp("config"), dropout=0.0)


def flags(model_config, output_dir, *extra):
    return ["--config", model_config, "--vocab_file", VOCAB, "--output_dir", str(output_dir), "--device_target", "CPU",
            "--max_seq_len", "24", "--batch_size", "8", "--eval_batch_size", "16", "--learning_rate", "1e-3",
            "--progress_bar", "false", *extra]


def sentiment_tsv(path, n, seed):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("label\ttext_a\n")
        for _ in range(n):
            label = int(rng.integers(0, 2))
            words = list(rng.choice(CHARS, 8))
            words[int(rng.integers(0, 8))] = "好" if label else "错"
            f.write(f"{label}\t{''.join(words)}\n")
    return str(path)


def test_fine_tuning_on_tfrecord_equals_raw_files(tmp_path, model_config):
    train, dev = sentiment_tsv(tmp_path / "train.tsv", 64, 0), sentiment_tsv(tmp_path / "dev.tsv", 24, 1)
    records = {}
    for split, path in (("train", train), ("dev", dev)):
        records[split] = str(tmp_path / f"{split}.tfrecord")
        finetune_task_reader.convert(["--task_type", "chnsenticorp", "--vocab_file", VOCAB, "--max_seq_len", "24",
                                      "--input_file", path, "--output_file", records[split],
                                      "--output_format", "tfrecord"])
    assert os.path.isfile(records["train"] + ".schema.json")
    common = ["--task_type", "chnsenticorp", "--do_train", "true", "--do_eval", "true", "--epoch_num", "2"]
    raw = main("classification", flags(model_config, tmp_path / "raw", *common, "--train_data_file_path", train,
                                       "--eval_data_file_path", dev))
    tfrecord = main("classification", flags(
        model_config, tmp_path / "tf", *common, "--dataset_format", "tfrecord",
        "--schema_file_path", records["train"] + ".schema.json", "--train_data_file_path", records["train"],
        "--eval_data_file_path", records["dev"]))
    assert tfrecord == raw


CLUENER_TRAIN = [
    {"text": "张三在北京工作", "label": {"name": {"张三": [[0, 1]]}, "address": {"北京": [[3, 4]]}}},
    {"text": "李四去上海读书", "label": {"name": {"李四": [[0, 1]]}, "address": {"上海": [[3, 4]]}}},
    {"text": "我们在北京", "label": {"address": {"北京": [[3, 4]]}}},
    {"text": "张三很好", "label": {"name": {"张三": [[0, 1]]}}},
] * 4


def write_lines(path, records):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return str(path)


def test_cluener_trains_scores_officially_and_writes_the_submission(tmp_path, model_config, capsys):
    train = write_lines(tmp_path / "train.json", CLUENER_TRAIN)
    test = write_lines(tmp_path / "test.json", [{"id": 7, "text": "张三在上海"}, {"id": 8, "text": "北京很好"}])
    out = tmp_path / "out"
    metrics = main("ner", flags(model_config, out, "--task_type", "cluener", "--do_train", "true", "--do_eval",
                                "true", "--epoch_num", "1", "--train_data_file_path", train,
                                "--eval_data_file_path", train))
    assert {"macro_f1", "precision", "recall", "f1", "per_type"} <= set(metrics)
    submission = [json.loads(line) for line in open(out / "cluener_predict.json", encoding="utf-8")]
    assert [line["id"] for line in submission] == list(range(len(CLUENER_TRAIN)))  # the records' positions
    capsys.readouterr()
    assert main("ner", flags(model_config, tmp_path / "test_out", "--task_type", "cluener", "--do_eval", "true",
                             "--eval_data_file_path", test, "--load_finetune_checkpoint_path", str(out))) == {}
    submission = [json.loads(line) for line in open(tmp_path / "test_out" / "cluener_predict.json", encoding="utf-8")]
    assert [line["id"] for line in submission] == [7, 8]
    assert all(isinstance(line["label"], dict) for line in submission)


def test_an_unlabelled_file_is_scored_only_as_a_clue_submission(tmp_path, model_config):
    train = sentiment_tsv(tmp_path / "train.tsv", 16, 0)
    unlabelled = tmp_path / "test.tsv"
    unlabelled.write_text("lable\ttext_a\n1\t好\n", encoding="utf-8")  # a misspelt label column
    with pytest.raises(SystemExit, match="no 'label' column"):
        main("classification", flags(model_config, tmp_path / "out", "--task_type", "chnsenticorp", "--do_train",
                                     "true", "--train_data_file_path", str(unlabelled)))
    with pytest.raises(SystemExit, match="no 'label' column"):
        main("classification", flags(model_config, tmp_path / "out", "--task_type", "chnsenticorp", "--do_train",
                                     "true", "--do_eval", "true", "--train_data_file_path", train,
                                     "--eval_data_file_path", str(unlabelled)))
    assert not os.path.exists(tmp_path / "out" / "train_log.jsonl")


def test_clue_classification_reads_and_writes_clue_json(tmp_path, model_config):
    records = [{"sentence1": "".join(np.random.default_rng(i).choice(CHARS, 6)) + ("好" if i % 2 else "错"),
                "sentence2": "很好", "label": str(i % 2)} for i in range(24)]
    train = write_lines(tmp_path / "train.json", records)
    test = write_lines(tmp_path / "test.json", [{"id": 3, "sentence1": "好", "sentence2": "好"}])
    out = tmp_path / "out"
    metrics = main("classification", flags(model_config, out, "--task_type", "afqmc", "--do_train", "true",
                                           "--do_eval", "true", "--max_steps", "3", "--train_data_file_path", train,
                                           "--eval_data_file_path", train))
    assert "accuracy" in metrics
    main("classification", flags(model_config, tmp_path / "test_out", "--task_type", "afqmc", "--do_eval", "true",
                                 "--eval_data_file_path", test, "--load_finetune_checkpoint_path", str(out)))
    [line] = [json.loads(line) for line in open(tmp_path / "test_out" / "afqmc_predict.json", encoding="utf-8")]
    assert line["id"] == 3 and line["label"] in ("0", "1")


def test_config_table_reaches_the_optimizer_and_is_recorded(tmp_path, model_config):
    train = sentiment_tsv(tmp_path / "train.tsv", 32, 0)
    table = tmp_path / "train_config.yaml"
    table.write_text("optimizer: Momentum\nMomentum: {learning_rate: 0.01, momentum: 0.5, end_learning_rate: 1.0e-4,"
                     " power: 2.0}\n", encoding="utf-8")
    out = tmp_path / "out"
    main("classification", flags(model_config, out, "--task_type", "chnsenticorp", "--do_train", "true",
                                 "--train_data_file_path", train, "--epoch_num", "1", "--log_every", "1",
                                 "--train_config", str(table)))
    run = json.load(open(out / "run.json", encoding="utf-8"))["schedule"]
    assert (run["optimizer"], run["momentum"], run["power"], run["end_learning_rate"]) == ("Momentum", 0.5, 2.0, 1e-4)
    # --learning_rate 1e-3 wins over the file's 0.01; the last of 4 steps (no warm-up) follows the power-2 decay
    assert run["learning_rate"] == 1e-3
    log = [json.loads(line) for line in open(out / "train_log.jsonl", encoding="utf-8")]
    assert log[-1]["learning_rate"] == pytest.approx((1e-3 - 1e-4) * (1 - 3 / 4) ** 2 + 1e-4, rel=1e-6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Momentum: {momentun: 0.5}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad\.yaml.*momentun.*momentum"):
        main("classification", flags(model_config, tmp_path / "bad", "--task_type", "chnsenticorp", "--do_train",
                                     "true", "--train_data_file_path", train, "--train_config", str(bad)))


def test_the_seed_log_line_is_written_every_step(tmp_path, model_config):
    train = sentiment_tsv(tmp_path / "train.tsv", 32, 0)
    out = tmp_path / "out"
    main("classification", flags(model_config, out, "--task_type", "chnsenticorp", "--do_train", "true",
                                 "--train_data_file_path", train, "--epoch_num", "1"))
    lines = open(out / "training_log.txt", encoding="utf-8").read().splitlines()
    pattern = re.compile(r"epoch: 0, current epoch percent: (\d\.\d{3}), step: (\d+), outputs are "
                         r"\(Tensor\(shape=\[\], dtype=Float32, value= [0-9.e+-]+\), Tensor\(shape=\[\], "
                         r"dtype=Bool, value= False\), Tensor\(shape=\[\], dtype=Float32, value= 1\)\)")
    assert [pattern.fullmatch(line).group(1, 2) for line in lines] == \
        [("0.250", "1"), ("0.500", "2"), ("0.750", "3"), ("1.000", "4")]
