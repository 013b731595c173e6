"""The paths between the parts, walked as a user walks them (issue 11's Python-side items, each test names its item).

Two tiny models are trained once per module through the real entry scripts in subprocesses (their console is what a
user sees): CMRC at ``--max_seq_len 32`` and ChnSentiCorp from header-less TSV files read with ``--columns``. The
user-error cases run as subprocesses of the real entry points, concurrently, in one fixture. Subprocesses start
without the ``GLOG_v`` that importing ``src`` put into this process's environment, as a user's shell does, with a
``sitecustomize`` shim that records ``GLOG_v`` when ``mindspore`` is first imported (and can hide the ``onnx``
package, item 17).
"""
import concurrent.futures
import glob
import json
import os
import pty
import random
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import export
import predict
import preprocess
import postprocess
from src import finetune, finetune_task_reader, inference
from src.assessment_method import metric_key
from src.serving.runtime import trained_task_info
from src.tasks.base import EvalOptions
from src.tasks.registry import build_task
from src.tokenizer import SPECIAL_TOKENS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
NAMES = "张李王赵刘陈杨黄"
PLACES = ["北京", "上海", "台北", "南京", "广州", "天津"]
CONTEXT = "北京大学创建于1898年，是中国近代第一所国立综合性大学。"
QUESTION = "北京大学创建于哪一年？"
SENTIMENT = "好错很不酒店房间干净服务贵推荐"
SHIM = '''
import os, sys
class _Watch:
    """Records GLOG_v when mindspore is first imported; with HIDE_ONNX=1, `import onnx` fails as if not installed."""
    recorded = False
    def find_spec(self, name, path=None, target=None):
        if name == "mindspore" and not self.recorded and os.environ.get("GLOG_RECORD"):
            self.recorded = True
            with open(os.environ["GLOG_RECORD"], "w") as f:
                f.write(str(os.environ.get("GLOG_v")))
        if os.environ.get("HIDE_ONNX") and (name == "onnx" or name.startswith("onnx.")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Watch())
'''


# ------------------------------------------------------------------------------------------------ data and runs

def squad(path, n, seed):
    rng = random.Random(seed)
    data = []
    for i in range(n):
        a, b = rng.sample(NAMES, 2)
        place_a, place_b = rng.sample(PLACES, 2)
        context = f"{a}先生住在{place_a}。{b}女士住在{place_b}。"
        who, where = rng.choice([(a, place_a), (b, place_b)])
        data.append({"title": str(i), "paragraphs": [{"context": context, "qas": [
            {"id": f"q{i}", "question": f"{who}住在哪里？", "answers": [
                {"text": where, "answer_start": context.index(where)}]}]}]})
    path.write_text(json.dumps({"version": "v1.0", "data": data}, ensure_ascii=False), encoding="utf-8")
    return str(path)


def sentiment_tsv(path, n, seed, header=False):
    rng = random.Random(seed)
    lines = ["label\ttext_a"] if header else []
    for i in range(n):
        lines.append(f"{i % 2}\t{'很好' if i % 2 else '不好'}{''.join(rng.sample(SENTIMENT, 5))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("user_paths")
    chars = sorted(set(NAMES + "".join(PLACES) + "先生住在女士哪里。？" + CONTEXT + QUESTION + SENTIMENT
                       + "长江有多全公里是中第一大河他说我回来了没话家" + "0123456789"))
    tokens = list(SPECIAL_TOKENS) + chars + ["##" + d for d in "0123456789"]
    (root / "vocab.txt").write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens)), encoding="utf-8")
    (root / "config.json").write_text(json.dumps({
        "vocab_size": len(tokens), "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 64, "hidden_act": "relu", "max_position_embeddings": 64, "type_vocab_size": 2,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}))
    (root / "shim").mkdir()
    (root / "shim" / "sitecustomize.py").write_text(SHIM)
    return {"root": root, "vocab": str(root / "vocab.txt"), "config": str(root / "config.json"),
            "cmrc_train": squad(root / "cmrc_train.json", 48, 0), "cmrc_dev": squad(root / "cmrc_dev.json", 16, 1),
            "senti_train": sentiment_tsv(root / "senti_train.tsv", 32, 2),
            "senti_dev": sentiment_tsv(root / "senti_dev.tsv", 16, 3),
            "senti_header": sentiment_tsv(root / "senti_header.tsv", 16, 4, header=True)}


def user_env(files, **extra):
    """A user's shell: no GLOG_v (this process has the one `import src` set), the recording shim on the path."""
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}
    env["PYTHONPATH"] = os.pathsep.join([str(files["root"] / "shim"), REPO])
    env.update(extra)
    return env


def start(argv, env):
    process = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.started = time.monotonic()
    return process


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    return {"rc": process.returncode, "stdout": out, "stderr": err, "seconds": time.monotonic() - process.started}


def run(argv, env, timeout=300):
    return finish(start(argv, env), timeout)


def mindspore_warnings(text):
    return [line for line in text.splitlines() if re.match(r"\[(WARNING|ERROR)\] [A-Z_]+\(", line)]


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    """The two trained folders and their consoles: CMRC with GLOG_v=2 (MindSpore's warnings on), ChnSentiCorp with
    the defaults."""
    root = tmp_path_factory.mktemp("trained")
    common = ["--config", files["config"], "--vocab_file", files["vocab"], "--device_target", "CPU", "--do_train",
              "true", "--do_eval", "true", "--batch_size", "8", "--learning_rate", "1e-3"]
    cmrc = start(["run_ernie_mrc.py", "--task_type", "cmrc", *common, "--train_data_file_path", files["cmrc_train"],
                  "--eval_data_file_path", files["cmrc_dev"], "--max_seq_len", "32", "--max_query_len", "12",
                  "--doc_stride", "8", "--epoch_num", "2", "--output_dir", str(root / "cmrc")],
                 user_env(files, GLOG_v="2"))
    senti = start(["run_ernie_classifier.py", "--task_type", "chnsenticorp", *common, "--train_data_file_path",
                   files["senti_train"], "--eval_data_file_path", files["senti_dev"], "--columns", "label,text_a",
                   "--max_seq_len", "16", "--max_steps", "4", "--output_dir", str(root / "senti")], user_env(files))
    runs = {"cmrc": finish(cmrc), "senti": finish(senti)}
    for name, result in runs.items():
        assert result["rc"] == 0, (name, result["stderr"][-3000:])
        result["folder"] = str(root / name)
    return runs


# ------------------------------------------------------------------------------------------------ item 4 and issue 10

@pytest.fixture(scope="module")
def cmrc_evaluations(files, trained, tmp_path_factory):
    """``run_ernie_mrc.py --do_eval`` on the trained folder, without and with ``--max_seq_len``, run together."""
    root = tmp_path_factory.mktemp("cmrc_eval")
    base = ["run_ernie_mrc.py", "--do_eval", "true", "--load_finetune_checkpoint_path", trained["cmrc"]["folder"],
            "--eval_data_file_path", files["cmrc_dev"], "--device_target", "CPU"]
    processes = {"trained": start(base + ["--output_dir", str(root / "trained")], user_env(files, GLOG_v="2")),
                 "override": start(base + ["--output_dir", str(root / "override"), "--max_seq_len", "48"],
                                   user_env(files))}
    results = {name: finish(p) for name, p in processes.items()}
    for name, result in results.items():
        assert result["rc"] == 0, (name, result["stderr"][-3000:])
        result["metrics"] = json.loads((root / name / "cmrc_dev_metrics.json").read_text())
    return results


def test_item4_evaluating_a_trained_folder_uses_its_max_seq_len_and_says_so(trained, cmrc_evaluations):
    task_json = os.path.join(trained["cmrc"]["folder"], "task.json")
    assert json.load(open(task_json))["max_seq_len"] == 32
    during_training = json.load(open(os.path.join(trained["cmrc"]["folder"], "cmrc_dev_metrics.json")))
    evaluation = cmrc_evaluations["trained"]
    assert f"task cmrc from {task_json}: max_seq_len 32" in evaluation["stderr"]
    assert evaluation["metrics"] == during_training  # one checkpoint, one score
    override = cmrc_evaluations["override"]
    assert f"max_seq_len 48 instead of the trained 32 ({task_json})" in override["stderr"]
    assert "max_seq_len 48," in override["stderr"]


def test_item4_export_predict_and_the_310_chain_score_the_trained_folder_the_same(files, trained, tmp_path):
    folder = trained["cmrc"]["folder"]
    during_training = json.load(open(os.path.join(folder, "cmrc_dev_metrics.json")))
    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "cmrc")])
    assert json.load(open(mindir + ".json"))["max_seq_len"] == 32
    for model in (folder, mindir):
        metrics = predict.main(["--model", model, "--eval_data_file_path", files["cmrc_dev"], "--progress_bar",
                                "false"])
        assert metrics == pytest.approx(during_training, abs=1e-9), model
    prep, results = str(tmp_path / "prep"), str(tmp_path / "results")
    preprocess.main(["--model_path", mindir, "--eval_data_file_path", files["cmrc_dev"], "--result_path", prep])
    inference.main(["--mindir_path", mindir, "--input0_path", os.path.join(prep, "00_data"), "--input1_path",
                    os.path.join(prep, "01_data"), "--input2_path", os.path.join(prep, "02_data"),
                    "--result_path", results])
    assert postprocess.main(["--preprocess_path", prep, "--result_dir", results]) == \
        pytest.approx(during_training, abs=1e-9)


def test_issue10_labels_and_crf_come_from_task_json_unless_a_flag_overrides(tmp_path, caplog):
    (tmp_path / "msra_ner-best.ckpt").write_bytes(b"")
    labels = ["B-PER", "I-PER", "O"]
    (tmp_path / "task.json").write_text(json.dumps({"task_type": "msra_ner", "kind": "ner", "labels": labels,
                                                    "max_seq_len": 24, "use_crf": True}))
    ckpt = str(tmp_path / "msra_ner-best.ckpt")
    caplog.set_level("INFO")
    info = trained_task_info(ckpt)
    assert (info.labels, info.use_crf, info.max_seq_len) == (labels, True, 24)
    assert f"task msra_ner from {tmp_path / 'task.json'}: max_seq_len 24, labels {labels}, CRF" in caplog.text
    assert trained_task_info(ckpt, max_seq_len=40).max_seq_len == 40
    assert "max_seq_len 40 instead of the trained 24" in caplog.text
    with pytest.raises(ValueError, match="trained with a CRF"):
        trained_task_info(ckpt, use_crf=False)  # the weights hold a CRF: not a setting to override silently
    with pytest.raises(ValueError, match="lists 3"):
        trained_task_info(ckpt, num_class=7)


# ------------------------------------------------------------------------------------------------ item 6

def test_item6_mrc_answer_lies_in_the_context_with_its_share_of_the_candidates(trained, capsys):
    answer = predict.main(["--model", trained["cmrc"]["folder"], "--context", CONTEXT, "--question", QUESTION])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == answer and answer["context"] == CONTEXT and answer["question"] == QUESTION
    assert answer["answer"] and 0 <= answer["start"] < answer["end"] <= len(CONTEXT)
    assert CONTEXT[answer["start"]:answer["end"]] == answer["answer"]
    assert 0 < answer["probability"] < 1
