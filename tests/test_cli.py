"""One flag vocabulary: every entry point accepts each spelling of a flag (the seed's and the model zoo's aliases) for
the same setting, describes every flag in --help, and turns bad input into one line ``error: ...``."""
import argparse
import os
import subprocess
import sys

import pytest

import export
import postprocess
import predict
import preprocess
from src import finetune, finetune_task_reader, inference, pretrain, pretraining_reader, snownlp_data
from src.cli import str2bool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PARSERS = {
    "run_ernie_classifier.py": lambda: finetune.build_parser("classification"),
    "run_ernie_ner.py": lambda: finetune.build_parser("ner"),
    "run_ernie_mrc.py": lambda: finetune.build_parser("mrc"),
    "run_ernie_pretrain.py": pretrain.build_parser,
    "export.py": export.build_parser,
    "predict.py": predict.build_parser,
    "preprocess.py": preprocess.build_parser,
    "postprocess.py": postprocess.build_parser,
    "src.finetune_task_reader": finetune_task_reader.build_parser,
    "src.pretraining_reader": pretraining_reader.build_parser,
    "src.inference": inference.build_parser,
    "src.snownlp_data": snownlp_data.build_parser,
}


def sample_value(action):
    if action.choices:
        return str(list(action.choices)[-1])
    if action.type is int:
        return "7"
    if action.type is float:
        return "0.5"
    if action.type is str2bool:
        return "false" if action.default else "true"
    return "value"


def required_argv(parser, skip=None):
    argv = []
    for action in parser._actions:
        if action is skip:
            continue
        if action.required and action.option_strings:
            argv += [action.option_strings[0]] + [sample_value(action)] * (1 if action.nargs != "+" else 1)
        elif not action.option_strings and action.dest != "help":
            argv.append(sample_value(action))
    return argv


@pytest.mark.parametrize("entry", list(PARSERS))
def test_every_spelling_of_a_flag_sets_the_same_value(entry):
    parser = PARSERS[entry]()
    aliased = [a for a in parser._actions if len(a.option_strings) > 1 and not isinstance(a, argparse._HelpAction)]
    for action in aliased:
        value = sample_value(action)
        results = {getattr(parser.parse_args(required_argv(parser, action) + [spelling, value]), action.dest)
                   for spelling in action.option_strings}
        assert len(results) == 1, (entry, action.option_strings, results)


@pytest.mark.parametrize("entry", list(PARSERS))
def test_help_describes_every_flag(entry):
    parser = PARSERS[entry]()
    undescribed = [a.option_strings or a.dest for a in parser._actions if not a.help]
    assert not undescribed
    assert "(default:" in parser.format_help()


def test_the_seed_and_model_zoo_spellings_are_accepted():
    parser = finetune.build_parser("ner")
    base = ["--do_eval", "true"]
    for spellings, dest, value, parsed in (
            (("--vocab_file_path", "--vocab_path", "--vocab_file"), "vocab_file", "v.txt", "v.txt"),
            (("--num_class", "--number_labels"), "num_class", "3", 3),
            (("--batch_size", "--train_batch_size"), "batch_size", "8", 8),
            (("--label2id_file_path", "--label_map_config"), "label_map_file", "m.json", "m.json")):
        for spelling in spellings:
            assert getattr(parser.parse_args(base + [spelling, value]), dest) == parsed
    assert parser.parse_args(["--use_crf"]).use_crf is True  # a bare boolean flag means true
    assert parser.parse_args(["--use_crf", "false"]).use_crf is False
    assert pretrain.build_parser().parse_args(["--data_dir", "d", "--vocab_path", "v"]).vocab_file == "v"


def run(*argv, timeout=120):
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.tsv")
    result = run("run_ernie_classifier.py", "--do_eval", "true", "--eval_data_file_path", missing,
                 "--load_finetune_checkpoint_path", str(tmp_path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: --eval_data_file_path {missing}: no such file"]
    result = run("run_ernie_classifier.py", "--do_eval", "true", "--eval_data_file_path", missing,
                 "--load_finetune_checkpoint_path", str(tmp_path), "--debug", "true")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_bad_assessment_method_stops_before_training(tmp_path):
    data = tmp_path / "train.tsv"
    data.write_text("label\ttext_a\n1\t好\n0\t差\n", encoding="utf-8")
    result = run("run_ernie_classifier.py", "--task_type", "xnli", "--do_train", "true", "--do_eval", "true",
                 "--train_data_file_path", str(data), "--eval_data_file_path", str(data), "--config", "tiny",
                 "--vocab_file", os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt"),
                 "--assessment_method", "mcc", "--output_dir", str(tmp_path / "out"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == \
        "error: --assessment_method mcc: a xnli evaluation reports accuracy"
    assert not (tmp_path / "out" / "train_log.jsonl").exists()
