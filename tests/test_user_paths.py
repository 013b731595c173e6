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
from src import convert_checkpoint, finetune, finetune_task_reader, inference, pretrain, pretraining_reader
from src.assessment_method import metric_key
from src.data import classification as classification_data, ner as ner_data
from src.data.mindrecord import read_mindrecord_columns
from src.serving.runtime import trained_task_info
from src.tasks.base import EvalOptions
from src.tasks.registry import build_task, default_task_info, label_map_of
from src.tokenizer import SPECIAL_TOKENS
from src.tokenizer import _main as tokenizer_cli

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
    """The two trained folders and their consoles: CMRC with the default settings, ChnSentiCorp with GLOG_v=2
    (MindSpore's warnings on)."""
    root = tmp_path_factory.mktemp("trained")
    common = ["--config", files["config"], "--vocab_file", files["vocab"], "--device_target", "CPU", "--do_train",
              "true", "--do_eval", "true", "--batch_size", "8", "--learning_rate", "1e-3"]
    cmrc = start(["run_ernie_mrc.py", "--task_type", "cmrc", *common, "--train_data_file_path", files["cmrc_train"],
                  "--eval_data_file_path", files["cmrc_dev"], "--max_seq_len", "32", "--max_query_len", "12",
                  "--doc_stride", "8", "--epoch_num", "2", "--output_dir", str(root / "cmrc")], user_env(files))
    senti = start(["run_ernie_classifier.py", "--task_type", "chnsenticorp", *common, "--train_data_file_path",
                   files["senti_train"], "--eval_data_file_path", files["senti_dev"], "--columns", "label,text_a",
                   "--max_seq_len", "16", "--max_steps", "4", "--output_dir", str(root / "senti")],
                  user_env(files, GLOG_v="2"))
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
    assert during_training["f1"] > 0  # a score that can differ (F1 52.8 and 75 in two runs)
    evaluation = cmrc_evaluations["trained"]  # no --task_type either: the script's default is drcd
    assert f"task cmrc from {task_json}: max_seq_len 32" in evaluation["stderr"]
    assert evaluation["metrics"] == during_training  # one checkpoint, one score
    override = cmrc_evaluations["override"]
    assert f"max_seq_len 48 instead of the trained 32 ({task_json})" in override["stderr"]
    assert "max_seq_len 48," in override["stderr"]


def test_item4_export_predict_and_the_310_chain_score_the_trained_folder_the_same(files, trained, tmp_path, capsys):
    folder = trained["cmrc"]["folder"]
    during_training = json.load(open(os.path.join(folder, "cmrc_dev_metrics.json")))
    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "cmrc")])
    assert json.load(open(mindir + ".json"))["max_seq_len"] == 32
    for model in (folder, mindir):
        metrics = predict.main(["--model", model, "--eval_data_file_path", files["cmrc_dev"], "--progress_bar",
                                "false"])
        assert metrics == pytest.approx(during_training, abs=1e-9), model
    prep, results = str(tmp_path / "prep"), str(tmp_path / "results")
    capsys.readouterr()
    preprocess.main(["--model_path", mindir, "--eval_data_file_path", files["cmrc_dev"], "--result_path", prep])
    assert f"rows of max_seq_len 32 (the model's, from {mindir}.json)" in capsys.readouterr().out
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


# ------------------------------------------------------------------------------------------------ items 7, 8, 12

def error_cases(files, out):
    """name -> (argv, a fragment the one error line must hold, whether it is item 8's "before training")."""
    missing = str(files["root"] / "missing")
    model = ["--config", files["config"], "--vocab_file", files["vocab"], "--device_target", "CPU"]
    senti = ["--task_type", "chnsenticorp", "--do_train", "true", "--train_data_file_path", files["senti_header"],
             "--max_seq_len", "16", *model]
    (files["root"] / "names.json").write_text(json.dumps({"negative": 0, "positive": 1}))
    (files["root"] / "gaps.json").write_text(json.dumps({"0": 0, "1": 2}))
    return {
        "missing vocabulary": (["run_ernie_classifier.py", *senti, "--vocab_file", missing + ".txt"],
                               f"{missing}.txt: vocabulary file not found", False),
        "missing data file": (["run_ernie_ner.py", "--do_train", "true", "--train_data_file_path", missing + ".tsv",
                               *model], f"--train_data_file_path {missing}.tsv: no such file", False),
        "Ascend not available": (["run_ernie_mrc.py", "--do_train", "true", "--train_data_file_path",
                                  files["cmrc_train"], *model, "--device_target", "Ascend"],
                                 "device target Ascend is not available", False),
        "float16 on CPU": (["run_ernie_classifier.py", *senti, "--compute_dtype", "float16"],
                           "compute_dtype float16 is not supported on CPU", False),
        "bad assessment method": (["run_ernie_classifier.py", *senti, "--assessment_method", "bleu", "--output_dir",
                                   str(out / "bleu")], "--assessment_method bleu", True),
        "missing eval file": (["run_ernie_classifier.py", *senti, "--do_eval", "true", "--eval_data_file_path",
                               missing + ".tsv", "--output_dir", str(out / "eval")],
                              f"--eval_data_file_path {missing}.tsv: no such file", True),
        "label map that does not fit the data": (
            ["run_ernie_classifier.py", *senti, "--label_map_file", str(files["root"] / "names.json"),
             "--output_dir", str(out / "names")], "label '0' is not in the label map ['negative', 'positive']", True),
        "label map with a gap": (["run_ernie_classifier.py", *senti, "--label_map_file",
                                  str(files["root"] / "gaps.json"), "--output_dir", str(out / "gaps")],
                                 "gaps.json: label ids must be 0..N-1", True),
        "max_seq_len beyond the positions": (["run_ernie_classifier.py", *senti, "--max_seq_len", "128",
                                              "--output_dir", str(out / "long")], "128", True),
        "headerless TSV": (["run_ernie_classifier.py", *senti, "--train_data_file_path", files["senti_train"]],
                           "pass --columns, e.g. --columns text_a,text_b,label", False),
        "missing label map": (["run_ernie_classifier.py", *senti, "--label_map_file", missing + ".json"],
                              f"--label_map_file {missing}.json: no such file", False),
        "pretraining data missing": (["run_ernie_pretrain.py", "--data_dir", missing, *model], missing, False),
        "export of a missing folder": (["export.py", "--ckpt_file", missing], missing, False),
        "predict with a missing model": (["predict.py", "--model", missing, "--text", "好"], missing, False),
        "preprocess without a sidecar": (["preprocess.py", "--model_path", missing + ".mindir",
                                          "--eval_data_file_path", files["senti_header"]], "no sidecar JSON", False),
        "postprocess before preprocess": (["postprocess.py", "--preprocess_path", missing], missing, False),
        "converter: headerless TSV": (["-m", "src.finetune_task_reader", "--task_type", "chnsenticorp", "--vocab_file",
                                       files["vocab"], "--input_file", files["senti_train"], "--output_file",
                                       str(out / "x.mindrecord")], "pass --columns", False),
        "converter: missing label map": (["-m", "src.finetune_task_reader", "--task_type", "chnsenticorp",
                                          "--vocab_file", files["vocab"], "--input_file", files["senti_header"],
                                          "--label_map_file", missing + ".json", "--output_file",
                                          str(out / "y.mindrecord")], missing + ".json", False),
        "pretraining reader: missing input": (["-m", "src.pretraining_reader", "--input_file", missing,
                                               "--vocab_file", files["vocab"], "--output_file",
                                               str(out / "p.mindrecord")], missing, False),
        "checkpoint converter: missing input": (["-m", "src.convert_checkpoint", "--format", "pdparams", "--input",
                                                 missing, "--output", str(out / "e.ckpt")], missing, False),
        "tokenizer: missing vocabulary": (["-m", "src.tokenizer", "tokenize", "--vocab_file", missing + ".txt",
                                           "--text", "好"], missing + ".txt", False),
    }


@pytest.fixture(scope="module")
def user_errors(files, tmp_path_factory):
    """Every case's console, three processes at a time."""
    out = tmp_path_factory.mktemp("errors")
    cases = error_cases(files, out)
    records = {name: out / f"{index}.glog" for index, name in enumerate(cases)}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = {name: pool.submit(run, argv, user_env(files, GLOG_RECORD=str(records[name])), 120)
                   for name, (argv, _, _) in cases.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, record in records.items():
        results[name]["glog_at_import"] = record.read_text() if record.exists() else None
    return cases, results


PROJECT_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d [\d:,]+ (INFO|WARNING) src\.")


def test_item7_every_user_error_is_one_line(user_errors):
    """The error is the one line ``error: ...`` (after the project's own log lines, if any), with a non-zero exit:
    no traceback, no MindSpore line."""
    cases, results = user_errors
    wrong = []
    for name, (_, fragment, _) in cases.items():
        result = results[name]
        lines = result["stderr"].strip().splitlines()
        if result["rc"] == 0 or not lines or not lines[-1].startswith("error: ") or fragment not in lines[-1] \
                or not all(PROJECT_LOG_LINE.match(line) for line in lines[:-1]):
            wrong.append(f"{name}: rc {result['rc']}, stderr {result['stderr'][-800:]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("main, argv, error", [
    (lambda a: finetune.main("classification", a), ["--do_eval", "true", "--eval_data_file_path", "{missing}",
                                                    "--load_finetune_checkpoint_path", "{missing}"], FileNotFoundError),
    (pretrain.main, ["--data_dir", "{missing}", "--vocab_file", "{missing}"], FileNotFoundError),
    (export.main, ["--ckpt_file", "{missing}"], FileNotFoundError),
    (predict.main, ["--model", "{missing}", "--text", "好"], FileNotFoundError),
    (preprocess.main, ["--model_path", "{missing}", "--eval_data_file_path", "{missing}"], FileNotFoundError),
    (postprocess.main, ["--preprocess_path", "{missing}"], FileNotFoundError),
    (finetune_task_reader.main, ["--task_type", "xnli", "--vocab_file", "{missing}", "--input_file", "{missing}",
                                 "--output_file", "{missing}"], FileNotFoundError),
    (pretraining_reader.main, ["--input_file", "{missing}", "--vocab_file", "{missing}", "--output_file",
                               "{missing}"], FileNotFoundError),
    (convert_checkpoint.main, ["--format", "pdparams", "--input", "{missing}", "--output", "{missing}.ckpt"],
     FileNotFoundError),
    (tokenizer_cli, ["tokenize", "--vocab_file", "{missing}", "--text", "好"], FileNotFoundError),
], ids=["run_ernie_*.py", "run_ernie_pretrain.py", "export.py", "predict.py", "preprocess.py", "postprocess.py",
        "src.finetune_task_reader", "src.pretraining_reader", "src.convert_checkpoint", "src.tokenizer"])
def test_item7_debug_true_shows_the_traceback(main, argv, error, tmp_path, capsys):
    argv = [arg.format(missing=tmp_path / "missing") for arg in argv]
    with pytest.raises(error):  # the exception itself, which Python prints as a traceback
        main(argv + ["--debug", "true"])
    try:
        code, message = main(argv), capsys.readouterr().err.strip()  # the checkpoint converter returns its status
    except SystemExit as exit_:
        code, message = (1, exit_.code) if isinstance(exit_.code, str) else (exit_.code, capsys.readouterr().err)
    assert code not in (0, None) and message.startswith("error: ") and str(tmp_path / "missing") in message


def test_item13_every_entry_point_quiets_mindspore_before_importing_it(user_errors):
    _, results = user_errors
    recorded = {name: result["glog_at_import"] for name, result in results.items() if not name.endswith("--debug")}
    assert {name for name, value in recorded.items() if value is None} == {"tokenizer: missing vocabulary"}
    assert {value for value in recorded.values() if value is not None} == {"3"}


def test_item8_flags_and_files_are_checked_before_training_starts(user_errors):
    cases, results = user_errors
    for name, (argv, _, before_training) in cases.items():
        if not before_training:
            continue
        output_dir = argv[argv.index("--output_dir") + 1]
        made = glob.glob(os.path.join(output_dir, "*.ckpt")) + glob.glob(os.path.join(output_dir, "train_log.jsonl"))
        assert results[name]["rc"] != 0 and not made, name
        assert "training examples" not in results[name]["stderr"], name  # the trainer's first line
        assert results[name]["seconds"] < 60, (name, results[name]["seconds"])  # a MindSpore import, no graph
    assert metric_key("spearman_correlation") == "spearman"  # the seed's name


def test_item12_the_columns_option_the_error_names_works_in_the_scripts(files, trained, tmp_path):
    assert "--columns" in error_cases(files, tmp_path)["headerless TSV"][1]
    senti = trained["senti"]
    assert f"{files['senti_train']}: read=32" in senti["stderr"]  # trained from the header-less file
    assert f"{files['senti_dev']}: read=16" in senti["stderr"]
    output = str(tmp_path / "senti.mindrecord")
    finetune_task_reader.main(["--task_type", "chnsenticorp", "--vocab_file", files["vocab"], "--input_file",
                               files["senti_train"], "--columns", "label,text_a", "--output_file", output,
                               "--max_seq_len", "16"])
    columns = read_mindrecord_columns(output)
    assert len(columns["input_ids"]) == 32
    assert list(columns["label_ids"]) == [i % 2 for i in range(32)]


# ------------------------------------------------------------------------------------------------ item 13

def test_item13_a_default_fine_tuning_console_has_no_mindspore_line(trained):
    console = trained["cmrc"]["stdout"] + trained["cmrc"]["stderr"]
    assert "F1 " in console and not mindspore_warnings(console) and "[INFO]" not in console


def test_item13_no_isolated_side_effect_nodes_in_our_graphs(trained, cmrc_evaluations):
    """The classification and span heads, their loss cells and TrainStep compiled with GLOG_v=2 (warnings shown)."""
    for console in (trained["senti"]["stderr"], cmrc_evaluations["trained"]["stderr"]):
        assert "ClearIsolatedNodes" not in console and "eliminated by mistake" not in console


def test_item13_glog_v_turns_mindspore_logging_back_on(files):
    result = run(["export.py", "--ckpt_file", str(files["root"] / "missing")], user_env(files, GLOG_v="1"))
    assert result["rc"] != 0 and re.search(r"^\[INFO\] [A-Z_]+\(", result["stderr"], re.M)
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    assert "GLOG_v=1" in readme


# ------------------------------------------------------------------------------------------------ item 14

def test_item14_chnsenticorp_predictions_use_readable_names_and_keep_the_raw_label(trained, capsys):
    folder = trained["senti"]["folder"]
    with open(os.path.join(folder, "senti_dev_predictions.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 16
    for row in rows:
        assert {"negative": "0", "positive": "1"}[row["label"]] == row["raw_label"]
        assert set(row["probabilities"]) == {"negative", "positive"}
    texts = ["房间很干净，服务很好", "很贵，不推荐"]
    answers = predict.main(["--model", folder, "--text", texts[0], "--text", texts[1]])
    printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == answers and [a["text"] for a in printed] == texts  # each output line echoes its input
    assert all(a["label"] in ("negative", "positive") and a["raw_label"] in ("0", "1") for a in printed)


def scored_predictions(args, data_file, logits_for, tmp_path, files):
    """The task that training would describe in task.json, scoring ``data_file`` with given logits."""
    parsed = finetune.build_parser("classification").parse_args(args)
    info = finetune.task_info(parsed)
    info.vocab_file = files["vocab"]
    task = build_task(info, EvalOptions(), label_map_of(info, parsed.label_map_file))
    data = task.load(data_file, is_training=False)
    path = tmp_path / "predictions.jsonl"
    task.score(data, (logits_for(data),), str(path))
    return info, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_item14_dbqa_predictions_name_answers(tmp_path, files):
    info, rows = scored_predictions(["--task_type", "dbqa", "--do_train", "true"], os.path.join(FIXTURES, "dbqa.tsv"),
                                    lambda data: np.tile([0.0, 1.0], (len(data.columns["input_ids"]), 1)), tmp_path,
                                    files)
    assert info.labels == ["0", "1"]
    assert rows and all(row["label"] == "answer" and row["raw_label"] == "1" for row in rows)
    assert all(set(row["probabilities"]) == {"not_answer", "answer"} for row in rows)


def test_item14_xnli_trained_with_ernies_label_map_predicts_the_datas_spelling(tmp_path, files):
    label_map = tmp_path / "label_map.json"  # ERNIE's XNLI label_map.json, as published
    label_map.write_text(json.dumps({"contradictory": 0, "contradiction": 0, "entailment": 1, "neutral": 2}))
    info, rows = scored_predictions(
        ["--task_type", "xnli", "--do_train", "true", "--label_map_file", str(label_map)],
        os.path.join(FIXTURES, "xnli.tsv"),
        lambda data: np.tile([3.0, 0.0, 0.0], (len(data.columns["input_ids"]), 1)), tmp_path, files)
    assert info.labels == ["contradiction", "entailment", "neutral"]  # what task.json will hold
    assert rows and all(row["label"] == "contradiction" and "raw_label" not in row for row in rows)
    assert all(set(row["probabilities"]) == {"contradiction", "entailment", "neutral"} for row in rows)


# ------------------------------------------------------------------------------------------------ item 15

def on_a_terminal(argv, env, timeout=300):
    """Runs ``argv`` with stdout and stderr on a pseudo-terminal; returns (status, everything it wrote)."""
    master, slave = os.openpty()
    process = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout), b"".join(chunks).decode("utf-8", "replace")


def test_item15_progress_bars_on_a_terminal_and_none_in_a_log_file(files, trained, cmrc_evaluations, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("很好\n不好\n", encoding="utf-8")
    commands = {
        "evaluation": (["run_ernie_classifier.py", "--do_eval", "true", "--load_finetune_checkpoint_path",
                        trained["senti"]["folder"], "--eval_data_file_path", files["senti_header"], "--output_dir",
                        str(tmp_path / "eval")], "predicting"),
        "prediction": (["predict.py", "--model", trained["senti"]["folder"], "--input_file", str(texts),
                        "--output_file", str(tmp_path / "out.jsonl")], "predicting"),
        "conversion": (["-m", "src.finetune_task_reader", "--task_type", "chnsenticorp", "--vocab_file",
                        files["vocab"], "--input_file", files["senti_header"], "--output_file",
                        str(tmp_path / "senti.mindrecord"), "--max_seq_len", "16"], "tokenising"),
    }
    for name, (argv, bar) in commands.items():
        status, output = on_a_terminal(argv, user_env(files))
        if name != "conversion":  # issue 10: what the trained folder's task.json gave is in the log
            assert f"task chnsenticorp from {trained['senti']['folder']}/task.json: max_seq_len 16" in output
        # a bar redraws itself with a bare "\r" (the terminal turns each "\n" into "\r\n")
        assert status == 0 and re.search(bar + r":.*\|", output) and re.search("\r(?!\n)", output), \
            (name, output[-2000:])
    # the same commands into files: the evaluation run above, and prediction and conversion again
    logged = [cmrc_evaluations["trained"]["stderr"]]
    for name in ("prediction", "conversion"):
        argv = [arg.replace("out.jsonl", "out2.jsonl").replace("senti.mindrecord", "senti2.mindrecord")
                for arg in commands[name][0]]
        result = run(argv, user_env(files))
        assert result["rc"] == 0, result["stderr"][-2000:]
        logged.append(result["stdout"] + result["stderr"])
    for text in logged:
        assert "\r" not in text and "predicting:" not in text and "tokenising:" not in text


def test_item15_max_train_samples_tokenises_only_what_it_needs(tmp_path, files, monkeypatch):
    tokenised = []

    def counting(iterable, desc, total=None, unit="it"):
        for item in iterable:
            tokenised.append(desc)
            yield item

    monkeypatch.setattr(classification_data, "progress", counting)
    monkeypatch.setattr(ner_data, "progress", counting)
    big_tsv = sentiment_tsv(tmp_path / "big.tsv", 45000, 5, header=True)
    big_ner = tmp_path / "big_ner.tsv"
    sentence = "\x02".join("张三住在北京") + "\t" + "\x02".join(["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"])
    big_ner.write_text("text_a\tlabel\n" + (sentence + "\n") * 45000, encoding="utf-8")
    for task_type, path in (("chnsenticorp", big_tsv), ("msra_ner", str(big_ner))):
        info = default_task_info(task_type, 16)
        info.vocab_file = files["vocab"]
        task = build_task(info, EvalOptions(max_train_samples=7))
        tokenised.clear()
        started = time.monotonic()
        data = task.load(path, is_training=True)
        assert len(data.columns["input_ids"]) == 7 and len(tokenised) == 7, task_type
        assert time.monotonic() - started < 10, task_type  # reading 45,000 lines, tokenising 7


# ------------------------------------------------------------------------------------------------ item 17

def test_item17_int8_export_without_onnx_says_which_package_to_install(files, trained, tmp_path):
    target = tmp_path / "senti"
    result = run(["export.py", "--ckpt_file", trained["senti"]["folder"], "--file_name", str(target),
                  "--file_format", "ONNX", "--quantize", "int8"], user_env(files, HIDE_ONNX="1"))
    assert result["rc"] != 0
    assert result["stderr"].strip().splitlines() == [
        "error: int8 quantization needs the onnx package, which requirements.txt does not install: pip install onnx "
        "(No module named 'onnx')"]
    assert not os.path.exists(str(target) + ".onnx")  # refused before exporting
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    export_command = readme.index("--file_format ONNX --quantize int8")
    assert "pip install onnx" in readme[export_command - 300:export_command]
