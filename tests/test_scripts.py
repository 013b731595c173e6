"""The model zoo's shell wrappers as a user runs them, on a tiny task-data folder in ERNIE's layout."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt")
CHARS = list("一三上下不个中么九也书了京亲人什他价你全公共务包北华去台名吗含和哪喝四回国在城多大太学宫家少开很心怎我房把推放政故料明是有服来校格歌")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not available")


@pytest.fixture
def task_data(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "chnsenticorp"
    folder.mkdir(parents=True)
    for split, rows in (("train", 48), ("dev", 16), ("test", 16)):
        with open(folder / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("label\ttext_a\n")
            for _ in range(rows):
                label = int(rng.integers(0, 2))
                words = list(rng.choice(CHARS, 6))
                words[2] = "好" if label else "错"
                f.write(f"{label}\t{''.join(words)}\n")
    return tmp_path


def run_script(args, tmp_path, **env):
    environment = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
                   "DATA_DIR": str(tmp_path / "data"), "SAVE_DIR": str(tmp_path / "save"), "VOCAB_FILE": VOCAB,
                   "PRETRAINED_DIR": str(tmp_path / "no_pretrained"), "DEVICE_TARGET": "CPU",
                   "EXTRA_ARGS": "--config tiny --max_seq_len 16 --batch_size 8 --epoch_num 2 --progress_bar false",
                   **env}
    result = subprocess.run(["bash", *args], cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_standalone_finetune_then_eval_on_test(task_data):
    out = run_script([os.path.join(REPO, "scripts", "run_standalone_finetune.sh"), "chnsenticorp"], task_data)
    assert "training starts from random weights" in out
    assert os.path.exists(task_data / "save" / "chnsenticorp-best.ckpt")
    out = run_script([os.path.join(REPO, "scripts", "run_finetune_eval.sh"), "chnsenticorp"], task_data)
    assert "acc_num" in out and "total_num 16" in out
    assert json.load(open(task_data / "save" / "test_metrics.json"))["total_num"] == 16


def test_mindrecord_conversion_and_training(task_data):
    run_script([os.path.join(REPO, "scripts", "convert_finetune_datasets.sh"), str(task_data / "data"),
                str(task_data / "mindrecord"), "chnsenticorp"], task_data)
    assert sorted(f for f in os.listdir(task_data / "mindrecord") if f.endswith(".mindrecord")) == [
        "chnsenticorp_dev.mindrecord", "chnsenticorp_test.mindrecord", "chnsenticorp_train.mindrecord"]
    out = run_script([os.path.join(REPO, "scripts", "run_standalone_finetune.sh"), "chnsenticorp"], task_data,
                     DATASET_FORMAT="mindrecord", MINDRECORD_DIR=str(task_data / "mindrecord"))
    assert "total_num 16" in out


def test_unknown_task_is_refused(task_data):
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_standalone_finetune.sh"), "sst2"],
                            cwd=task_data, capture_output=True, text=True)
    assert result.returncode != 0 and "unknown task 'sst2'" in result.stderr
