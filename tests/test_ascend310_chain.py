"""The Ascend 310 chain on CPU: preprocess.py -> the Python stand-in for ascend310_infer (the very same .bin files,
run with the exported MindIR) -> postprocess.py reproduces the metrics that src/finetune.py's evaluate computes with
the checkpoint on the same data; the file layout on both sides; the C++ build script's missing-toolkit message."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import export
import postprocess
import preprocess
from src import inference
from src.finetune_task_reader import main as convert_to_mindrecord
from src.serving.predictor import Predictor
from src.serving.runtime import load_task_model, resolve_checkpoint
from src.tasks.base import EvalOptions
from src.tasks.registry import build_task
from src.tokenizer import ErnieTokenizer
from test_export import FIXTURES, MSRA_LABELS, TINY_VOCAB, make_finetuned

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ_LEN = 16
BATCH = 2  # the last .bin file of an odd number of rows is padded

CLASSIFICATION_ROWS = ["1\t房间很好，服务也不错。", "0\t价格太贵 了，不推荐", "1\t" + "北京的酒店很好，服务也不错，我很喜欢。" * 2,
                       "0\tThe hotel is OK", "1\t很好", "0\t不好不推荐。"]
NER_ROWS = [("张三在北京大学读书。", "B-PER I-PER O B-ORG I-ORG I-ORG I-ORG O O O"),
            ("李四去上海。", "B-PER I-PER O B-LOC I-LOC O"),
            ("北京 很好", "B-LOC I-LOC O O O"),
            ("张三说李四在北京大学读书，李四去上海。", "B-PER I-PER O B-PER I-PER O B-ORG I-ORG I-ORG I-ORG O O O "
                                               "B-PER I-PER O B-LOC I-LOC O"),
            ("hotel 在 北京", "O O O O O O O O B-LOC I-LOC")]
CASES = {  # name -> (task_type, use_crf, dataset_format)
    "classification": ("chnsenticorp", False, "raw"),
    "classification_mindrecord": ("chnsenticorp", False, "mindrecord"),
    "ner": ("msra_ner", False, "raw"),
    "ner_crf": ("msra_ner", True, "raw"),
    "mrc": ("cmrc", False, "raw"),
}


pytestmark = pytest.mark.usefixtures("graph_mode")


def model_tags(model_folder, text):
    """BIO tags per char of what the model predicts, so that the random model scores F1 > 0 on such rows."""
    (result,) = Predictor.from_path(model_folder).predict([{"text": text}])
    tags = ["O"] * len(text)
    for entity in result["entities"]:
        tags[entity["start"]:entity["end"]] = ["I-" + entity["type"]] * (entity["end"] - entity["start"])
        tags[entity["start"]] = "B-" + entity["type"]
    return " ".join(tags)


def write_dataset(folder, task_type, model_folder=None):
    if task_type == "cmrc":  # the first question's reference is the model's answer, so that F1 > 0
        with open(os.path.join(FIXTURES, "mrc_squad.json"), encoding="utf-8") as f:
            squad = json.load(f)
        paragraph = squad["data"][0]["paragraphs"][0]
        if model_folder:
            question = paragraph["qas"][0]
            (result,) = Predictor.from_path(model_folder).predict(
                [{"context": paragraph["context"], "question": question["question"]}])
            question["answers"] = [{"text": result["answer"], "answer_start": result["start"]}]
        path = os.path.join(folder, "dev.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(squad, f, ensure_ascii=False)
        return path
    path = os.path.join(folder, "dev.tsv")
    with open(path, "w", encoding="utf-8") as f:
        if task_type == "chnsenticorp":
            f.write("label\ttext_a\n" + "\n".join(CLASSIFICATION_ROWS) + "\n")
        else:
            f.write("text_a\tlabel\n")
            for i, (text, tags) in enumerate(NER_ROWS):
                if model_folder and i < 2:
                    tags = model_tags(model_folder, text)
                f.write("\x02".join(text) + "\t" + "\x02".join(tags.split()) + "\n")
    return path


def finetune_evaluate(folder, data_file, kind):
    """What the fine-tuning driver reports for the checkpoint on ``data_file``: the independent reference."""
    ckpt, info, config = resolve_checkpoint(folder)
    task = build_task(info, EvalOptions(eval_batch_size=3))
    return task.evaluate(load_task_model(task, ckpt, config), task.load(data_file, is_training=False))


def assert_same_metrics(got, want):
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, dict):
            assert_same_metrics(got[key], value)
        else:
            np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("name", list(CASES))
def test_chain_reproduces_finetune_evaluate(tmp_path, name):
    task_type, use_crf, dataset_format = CASES[name]
    folder = make_finetuned(str(tmp_path / "run"), task_type, use_crf, max_seq_len=SEQ_LEN, seed=7)
    data_file = write_dataset(str(tmp_path), task_type, model_folder=folder)
    kind = {"chnsenticorp": "classification", "msra_ner": "ner", "cmrc": "mrc"}[task_type]
    want = finetune_evaluate(folder, data_file, kind)
    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "export" / task_type),
                          "--batch_size", str(BATCH)])

    source, extra = data_file, []
    if dataset_format == "mindrecord":  # the converter's MindRecord of the same file, checked against a schema
        source = str(tmp_path / "dev.mindrecord")
        convert_to_mindrecord(["--task_type", task_type, "--vocab_path", TINY_VOCAB, "--max_seq_len", str(SEQ_LEN),
                               "--input_file", data_file, "--output_file", source])
        schema = tmp_path / "schema.json"
        schema.write_text(json.dumps({"columns": {"input_ids": {}, "input_mask": {}, "segment_ids": {},
                                                  "label_ids": {}}}))
        extra = ["--dataset_format", "mindrecord", "--schema_file_path", str(schema)]
    prep = str(tmp_path / "preprocess_Result")
    preprocess.main(["--model_path", mindir, "--eval_data_file_path", source, "--result_path", prep, *extra])
    results = str(tmp_path / "result_files")
    inference.main(["--mindir_path", mindir, "--input0_path", os.path.join(prep, "00_data"), "--input1_path",
                    os.path.join(prep, "01_data"), "--input2_path", os.path.join(prep, "02_data"),
                    "--result_path", results])
    got = postprocess.main(["--preprocess_path", prep, "--result_dir", results])
    assert_same_metrics(got, want)
    # metrics that say something (the NER file has two rows labelled as the model tags them; MRC F1 is x100)
    assert 0 < got.get("accuracy", got.get("exact_match", got.get("f1"))) < (100 if kind == "mrc" else 1)


def test_bin_file_layout(tmp_path):
    """The files are what the C++ app reads and writes: raw little-endian int32 inputs, B rows a file, the last one
    padded with zero rows; result <name>_<k>.bin holds output k as raw float32 (or int32 CRF tags)."""
    folder = make_finetuned(str(tmp_path / "run"), "msra_ner", use_crf=True, max_seq_len=SEQ_LEN)
    data_file = write_dataset(str(tmp_path), "msra_ner")
    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "ner"), "--batch_size", str(BATCH)])
    prep = str(tmp_path / "prep")
    labels = tmp_path / "label_map.json"
    labels.write_text(json.dumps({label: i for i, label in enumerate(MSRA_LABELS)}))
    preprocess.main(["--model_path", mindir, "--eval_data_file_path", data_file, "--result_path", prep,
                     "--label_map_config", str(labels), "--use_crf", "true", "--task_type", "msra_ner"])
    meta = json.load(open(os.path.join(prep, "preprocess_meta.json"), encoding="utf-8"))
    assert meta["num_examples"] == 5 and meta["files"] == ["msra_ner_0.bin", "msra_ner_1.bin", "msra_ner_2.bin"]
    assert sorted(os.listdir(prep)) == ["00_data", "01_data", "02_data", "03_data", "preprocess_meta.json"]

    # row 5 "hotel 在 北京" and a padding row: each char tokenized alone, the spaces give no token
    tokenizer = ErnieTokenizer(TINY_VOCAB)
    tokens = [i for c in "hotel在北京" for i in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(c))]
    expected = np.zeros((BATCH, SEQ_LEN), np.int32)
    expected[0, :len(tokens) + 2] = [tokenizer.cls_token_id, *tokens, tokenizer.sep_token_id]
    ids = np.fromfile(os.path.join(prep, "00_data", "msra_ner_2.bin"), dtype="<i4").reshape(BATCH, SEQ_LEN)
    np.testing.assert_array_equal(ids, expected)
    mask = np.fromfile(os.path.join(prep, "01_data", "msra_ner_2.bin"), dtype="<i4").reshape(BATCH, SEQ_LEN)
    np.testing.assert_array_equal(mask, (expected > 0).astype(np.int32))
    assert not np.fromfile(os.path.join(prep, "02_data", "msra_ner_2.bin"), dtype="<i4").any()
    labels = np.fromfile(os.path.join(prep, "03_data", "msra_ner_2.bin"), dtype="<i4").reshape(BATCH, SEQ_LEN)
    assert labels[0, 7:9].tolist() == [MSRA_LABELS.index("B-LOC"), MSRA_LABELS.index("I-LOC")]

    results = str(tmp_path / "results")
    inference.main(["--mindir_path", mindir, "--input0_path", os.path.join(prep, "00_data"), "--input1_path",
                    os.path.join(prep, "01_data"), "--input2_path", os.path.join(prep, "02_data"),
                    "--result_path", results])
    assert sorted(os.listdir(results)) == [f"msra_ner_{k}_{j}.bin" for k in range(3) for j in range(2)]
    emissions = np.fromfile(os.path.join(results, "msra_ner_0_0.bin"), dtype="<f4")
    tags = np.fromfile(os.path.join(results, "msra_ner_0_1.bin"), dtype="<i4")
    assert emissions.size == BATCH * SEQ_LEN * len(MSRA_LABELS) and tags.size == BATCH * SEQ_LEN
    assert set(np.unique(tags)) <= set(range(len(MSRA_LABELS)))

    os.remove(os.path.join(results, "msra_ner_1_1.bin"))
    with pytest.raises(SystemExit, match=r"msra_ner_1_1\.bin: result file missing"):
        postprocess.main(["--preprocess_path", prep, "--result_dir", results])


def test_preprocess_checks_the_model(tmp_path):
    folder = make_finetuned(str(tmp_path / "run"), "msra_ner", max_seq_len=SEQ_LEN)
    data_file = write_dataset(str(tmp_path), "msra_ner")
    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "ner")])
    labels = tmp_path / "label_map.json"
    labels.write_text(json.dumps({label: i for i, label in enumerate(reversed(MSRA_LABELS))}))
    base = ["--model_path", mindir, "--eval_data_file_path", data_file, "--result_path", str(tmp_path / "p")]
    with pytest.raises(SystemExit, match="differ from the model's"):
        preprocess.main(base + ["--label_map_config", str(labels)])
    with pytest.raises(SystemExit, match="exported with use_crf=False"):
        preprocess.main(base + ["--use_crf", "true"])
    with pytest.raises(SystemExit, match="is a msra_ner model"):
        preprocess.main(base + ["--task_type", "chnsenticorp"])
    aliases = tmp_path / "aliases.json"  # ERNIE's XNLI map names a label twice; the first name is the label's
    aliases.write_text(json.dumps({**{label: i for i, label in enumerate(MSRA_LABELS)}, "OTHER": 0}))
    preprocess.main(base + ["--label_map_config", str(aliases)])
    (tmp_path / "other").mkdir()
    with pytest.raises(SystemExit, match="is not an earlier preprocess.py output"):
        preprocess.main(base[:-1] + [str(tmp_path / "other")])
    # records converted at another length than the export's are refused before any .bin file is written
    records = str(tmp_path / "longer.mindrecord")
    convert_to_mindrecord(["--task_type", "msra_ner", "--vocab_path", TINY_VOCAB, "--max_seq_len", str(2 * SEQ_LEN),
                           "--input_file", data_file, "--output_file", records])
    with pytest.raises(SystemExit, match=rf"rows of {2 * SEQ_LEN} tokens, but .* was exported for {SEQ_LEN}; "
                                         rf"convert the data with --max_seq_len {SEQ_LEN}"):
        preprocess.main(["--model_path", mindir, "--eval_data_file_path", records, "--dataset_format", "mindrecord",
                         "--result_path", str(tmp_path / "p_longer")])
    assert not os.path.exists(tmp_path / "p_longer")


def test_stand_in_has_the_flags_of_the_cpp_app():
    with open(os.path.join(REPO, "ascend310_infer", "src", "main.cc"), encoding="utf-8") as f:
        cpp_flags = set(re.findall(r"DEFINE_\w+\((\w+),", f.read()))
    assert cpp_flags == {"mindir_path", "input0_path", "input1_path", "input2_path", "result_path", "device_id"}
    with pytest.raises(SystemExit):  # argparse: every C++ flag is known, the required ones are required
        inference.main([])
    parser_flags = set(re.findall(r'add_argument\("--(\w+)"', open(inference.__file__, encoding="utf-8").read()))
    assert cpp_flags <= parser_flags


@pytest.mark.skipif(os.path.isdir("/usr/local/Ascend"), reason="an Ascend toolkit is installed here")
def test_build_script_reports_the_missing_toolkit():
    env = {k: v for k, v in os.environ.items() if k not in ("ASCEND_HOME_PATH", "MINDSPORE_PATH")}
    done = subprocess.run(["bash", os.path.join(REPO, "ascend310_infer", "build.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "no Ascend toolkit found" in done.stderr and "python -m src.inference" in done.stderr
    assert not os.path.exists(os.path.join(REPO, "ascend310_infer", "out"))


def test_run_infer_310_script_end_to_end(tmp_path):
    """scripts/run_infer_310.sh as a user runs it: without a toolkit it says so and uses the CPU stand-in."""
    folder = make_finetuned(str(tmp_path / "run"), "chnsenticorp", max_seq_len=SEQ_LEN, seed=7)
    data_file = write_dataset(str(tmp_path), "chnsenticorp")
    want = finetune_evaluate(folder, data_file, "classification")
    mindir = export.main(["--ckpt_file", folder, "--file_name", str(tmp_path / "cls")])
    env = {k: v for k, v in os.environ.items() if k not in ("ASCEND_HOME_PATH", "MINDSPORE_PATH")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_infer_310.sh"), mindir, "none", data_file, "raw",
                           "", "false", "y", "0"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    if not os.path.isdir("/usr/local/Ascend"):
        assert "Python stand-in" in done.stderr
    accuracy = re.search(r"acc_num (\d+), total_num (\d+), accuracy ([0-9.]+)", done.stdout)
    assert accuracy and int(accuracy[1]) == want["acc_num"] and int(accuracy[2]) == want["total_num"] == 6
    assert abs(float(accuracy[3]) - want["accuracy"]) < 1e-6
    assert os.path.isfile(work / "acc.log") and len(os.listdir(work / "result_files")) == 6
