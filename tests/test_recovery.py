"""A fine-tuning run killed with SIGKILL at several points and restarted with the same command ends exactly where an
uninterrupted run ends (issue 13 items 1, 2, 6; issue 11 item 3); a retry with other settings stops before training.

The runs are ``run_ernie_classifier.py`` subprocesses (2 epochs of 4 steps, evaluation each epoch, the resumable
checkpoint written every step, dropout 0 so that the arithmetic is deterministic). Each killed run sends itself
SIGKILL at a chosen checkpoint write (before it, after it, or between MindSpore's write and the rename into place),
so the kill points are exact and the test is repeatable: during epoch 1, right after the first best checkpoint and
before the resumable checkpoint records its score, during epoch 2 once a best checkpoint exists, and after the last
epoch's checkpoint before its evaluation.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from src.checkpoint import read_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt")
CHARS = "一三上下不个中么九也书了京亲人什他价你全公共务包北华去台名吗含和哪喝四回国在城多大太学宫家少开很心怎我房"

# Runs run_ernie_classifier.py; KILL_AT="NAME:STEP:WHEN" SIGKILLs the process at the write of checkpoint NAME (a
# prefix of the file name) that records global step STEP: "before" it, "after" it, or "mid" (MindSpore has written
# the temporary file, the rename into place has not happened).
CHILD = r"""
import os, runpy, signal, sys
sys.path.insert(0, {repo!r})
import src.trainer, src.fileio
name, step, when = os.environ["KILL_AT"].split(":") if os.environ.get("KILL_AT") else ("", "-1", "")
real_save, real_replace = src.trainer.save_checkpoint, src.fileio.os.replace
armed = []

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(source, target):
    if armed:
        die()
    return real_replace(source, target)

def save(save_obj, path, append_dict=None):
    append_dict = append_dict or {{}}
    written_step = append_dict.get("trainer_global_step", append_dict.get("global_step"))
    if written_step is None:  # an epoch checkpoint: NAME-EPOCH_STEP.ckpt
        written_step = os.path.basename(path).rsplit("_", 1)[-1].split(".")[0]
    hit = os.path.basename(path).startswith(name) and int(written_step) == int(step)
    if hit and when == "before":
        die()
    if hit and when == "mid":
        armed.append(True)
    real_save(save_obj, path, append_dict)
    if hit and when == "after":
        die()

src.trainer.save_checkpoint = save
src.fileio.os.replace = replace
sys.argv = [os.path.join({repo!r}, "run_ernie_classifier.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    config = folder / "ernie_config.json"
    config.write_text(json.dumps({"vocab_size": 140, "hidden_size": 16, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "relu",
                                  "max_position_embeddings": 32, "type_vocab_size": 2, "hidden_dropout_prob": 0.0,
                                  "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02}))
    rng = np.random.default_rng(0)
    for name, rows in (("train.tsv", 32), ("dev.tsv", 24), ("other_train.tsv", 32)):
        with open(folder / name, "w", encoding="utf-8") as f:
            f.write("label\ttext_a\n")
            for _ in range(rows):
                label = int(rng.integers(0, 2))
                words = list(rng.choice(list(CHARS), 6))
                words[int(rng.integers(0, 6))] = "好" if label else "错"
                f.write(f"{label}\t{''.join(words)}\n")
    return folder


def command(files, output_dir, *extra):
    return ["--task_type", "chnsenticorp", "--do_train", "true", "--do_eval", "true", "--config",
            str(files / "ernie_config.json"), "--vocab_file", VOCAB, "--device_target", "CPU",
            "--train_data_file_path", str(files / "train.tsv"), "--eval_data_file_path", str(files / "dev.tsv"),
            "--output_dir", str(output_dir), "--epoch_num", "2", "--batch_size", "8", "--eval_batch_size", "24",
            "--max_seq_len", "16", "--learning_rate", "5e-3", "--save_every", "1", "--log_every", "1",
            "--progress_bar", "false", *extra]


def run(arguments, kill_at=""):
    env = dict(os.environ, KILL_AT=kill_at, GLOG_v="3")
    return subprocess.run([sys.executable, "-c", CHILD.format(repo=REPO), *arguments], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


def weights(path):
    return {name: value for name, value in read_checkpoint(str(path)).items()}


def printed(result):
    return [line for line in result.stdout.splitlines() if line.startswith(("acc_num", "total"))]


def assert_same(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        assert np.array_equal(got[name], want[name]), name


def test_kill_9_at_four_points_then_restart_ends_exactly_like_an_uninterrupted_run(files, tmp_path):
    reference = run(command(files, tmp_path / "straight"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    straight = tmp_path / "straight"
    evaluations = [json.loads(line) for line in open(straight / "train_log.jsonl", encoding="utf-8")
                   if '"eval"' in line]
    assert [e["step"] for e in evaluations] == [4, 8]

    killed = tmp_path / "killed"
    kills = ["checkpoint_last:2:mid",       # epoch 1, inside a write: a hidden temporary is left behind
             "chnsenticorp-best:4:after",   # the first best exists, the resumable checkpoint does not know its score
             "checkpoint_last:6:before",    # epoch 2, a best checkpoint exists
             "chnsenticorp-2_8:8:after"]    # the last epoch's weights written, its evaluation not yet run
    stderr = []
    for kill_at in kills:
        result = run(command(files, killed), kill_at)
        stderr.append(result.stderr)
        assert result.returncode == -signal.SIGKILL, (kill_at, result.stderr[-3000:])
        if kill_at.endswith("mid"):
            assert any(name.startswith(".checkpoint_last.ckpt.") for name in os.listdir(killed))
        state = read_checkpoint(str(killed / "checkpoint_last.ckpt"))
        if int(state["trainer_epoch"]) >= 1:  # a restart in epoch 2 knows epoch 1's score exactly (item 1)
            assert state["trainer_best_metric"] == evaluations[0]["accuracy"], kill_at
    finished = run(command(files, killed))
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "removed this leftover temporary of an interrupted run" in stderr[1]  # the restart after "mid"
    assert not any(name.startswith(".") for name in os.listdir(killed))
    assert [line.count("resuming the same run") for line in stderr[1:] + [finished.stderr]] == [1, 1, 1, 1]

    # final weights, optimizer state and loop position; the best checkpoint and its score; the reported metrics
    assert_same(weights(killed / "checkpoint_last.ckpt"), weights(straight / "checkpoint_last.ckpt"))
    assert_same(weights(killed / "chnsenticorp-2_8.ckpt"), weights(straight / "chnsenticorp-2_8.ckpt"))
    assert_same(weights(killed / "chnsenticorp-best.ckpt"), weights(straight / "chnsenticorp-best.ckpt"))
    assert printed(finished) == printed(reference) and printed(reference)
    assert json.load(open(killed / "dev_metrics.json")) == json.load(open(straight / "dev_metrics.json"))
    best_score = read_checkpoint(str(killed / "checkpoint_last.ckpt"))["trainer_best_metric"]
    assert best_score.dtype == np.float64 and best_score == max(e["accuracy"] for e in evaluations)
    # every evaluation the killed runs logged gave the uninterrupted run's score at that step
    for line in open(killed / "train_log.jsonl", encoding="utf-8"):
        record = json.loads(line)
        if record["event"] == "eval":
            assert record["accuracy"] == evaluations[record["step"] // 4 - 1]["accuracy"]


def test_retry_with_other_settings_stops_before_training(files, tmp_path):
    """Other --max_seq_len, --batch_size, data content or world size: one line saying what differs and the two ways
    on, a non-zero exit, the folder untouched; --overwrite_output_dir true then trains afresh."""
    out = tmp_path / "out"
    first = run(command(files, out, "--epoch_num", "1"))
    assert first.returncode == 0, first.stderr[-3000:]

    def contents():
        return {name: (out / name).read_bytes() for name in os.listdir(out) if name.endswith((".ckpt", ".json"))}

    run_file = out / "run.json"
    same_run = run_file.read_text()
    changes = [(["--max_seq_len", "24"], "task: "),
               (["--batch_size", "4"], "batch_size: 8 then, 4 now"),
               (["--train_data_file_path", str(files / "other_train.tsv")], "train_data: "),
               ([], "world_size: 2 then, 1 now")]  # a run with another world size (msrun) wrote the folder
    for extra, differs in changes:
        if not extra:
            run_file.write_text(json.dumps(dict(json.loads(same_run), world_size=2)))
        before = contents()
        retry = run(command(files, out, "--epoch_num", "1", *extra))
        assert retry.returncode != 0
        last_line = retry.stderr.strip().splitlines()[-1]
        assert last_line.startswith(f"error: {out} holds a different run") and differs in last_line, last_line
        assert last_line.endswith("use a new --output_dir, or --overwrite_output_dir true to start afresh there")
        assert "Traceback" not in retry.stderr and "resuming" not in retry.stderr
        assert contents() == before  # task.json, run.json and every checkpoint untouched

    afresh = run(command(files, out, "--epoch_num", "1", "--batch_size", "4", "--overwrite_output_dir", "true"))
    assert afresh.returncode == 0, afresh.stderr[-3000:]
    assert "starting afresh" in afresh.stderr and "resuming" not in afresh.stderr
    state = read_checkpoint(str(out / "checkpoint_last.ckpt"))
    assert int(state["trainer_global_step"]) == 8  # all 8 steps of batch 4, not "resumed" at the old step 4
    assert json.loads(run_file.read_text())["batch_size"] == 4
