"""Every reader and config file against damaged and odd input (issue 13 items 7, 8, 9).

Each case is a generated file and what must come of it: a one-line error naming the file and the line or key (through
the CLI's ``run_cli`` where that is the user's path: ``SystemExit("error: FILE...")``, no traceback), a counted skip
in skip mode, or a correct read of valid odd input (BOM, CRLF, trailing blank lines, emoji, CJK extension B, a 1 MB
line). Damage kinds: truncation, wrong JSON types, non-UTF-8 bytes, wrong column counts, header-only and empty files,
huge ids, negative numbers, strings where numbers go. Only the CLI cases build a (tiny, uncompiled) model.
"""
import json
import os
import re

import numpy as np
import pytest

import export
import predict
from src.checkpoint import read_checkpoint, save_checkpoint
from src.data.classification import read_classification_file
from src.data.clue import read_clue_classification_file, read_cluener_file
from src.data.common import InputError, ReaderStats, read_label_map
from src.data.mindrecord import read_mindrecord_columns, write_mindrecord
from src.data.mrc import read_mrc_file
from src.data.ner import read_ner_file
from src.data.pretraining import read_documents, read_ernie_samples
from src.data.tfrecord import read_tfrecord_columns, write_tfrecord
from src.ernie_model import load_config
from src.finetune import main as finetune_main
from src.tasks.registry import MSRA_TAGS
from src.tokenizer import ErnieTokenizer, load_vocab
from src.train_config import load_train_config

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
VOCAB = os.path.join(FIXTURES, "tiny_vocab.txt")
BINARY = {"0": 0, "1": 1}
ODD = "好😀𠀀"  # an emoji and a CJK extension B character (outside the BMP: 4 UTF-8 bytes, 2 UTF-16 units)
BIG_LINE = "好" * 350_000  # a 1 MB line


@pytest.fixture(scope="module")
def tokenizer():
    return ErnieTokenizer(VOCAB)


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def one_line_error(call, path, where, error=(ValueError, OSError)):
    """``call()`` raises a one-line error that names ``path`` and then ``where`` (a line ':N:' or a key)."""
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(path), message
    assert re.search(where, message[len(path):]), message
    return message


def cli_error(capsys, main, argv, path, where):
    """The CLI path: ``SystemExit("error: PATH...")`` and no traceback."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    message = str(caught.value.code)
    assert message.startswith(f"error: {path}") and "\n" not in message, message
    assert re.search(where, message), message
    assert "Traceback" not in capsys.readouterr().err
    return message


# ------------------------------------------------------------------ classification TSV
def test_classification_tsv(tmp_path):
    read = lambda p, **kw: read_classification_file(p, BINARY, **kw)  # noqa: E731
    odd = write(tmp_path, "odd.tsv", "\ufefflabel\ttext_a\r\n1\t" + ODD + "\r\n0\t" + BIG_LINE + "\r\n\r\n\n")
    examples = read(odd)
    assert [(e.label, e.text_a) for e in examples] == [("1", ODD), ("0", BIG_LINE)]
    for name, content, where in [
        ("truncated.tsv", "label\ttext_a\n1\t好\n0", r"^:3: expected 2 tab-separated columns"),
        ("columns.tsv", "label\ttext_a\n1\t好\t多\n", r"^:2: expected 2"),
        ("utf8.tsv", b"label\ttext_a\n1\t\xff\xfe\n", r"^:2: not valid UTF-8"),
        ("empty.tsv", "", r"^:1: file is empty"),
        ("header.tsv", "label\ttext_a\n", r"^:1: no examples"),
        ("negative.tsv", "label\ttext_a\n-1\t好\n", r"^:2: .*'-1'"),
        ("huge.tsv", "label\ttext_a\n99999999999999999999\t好\n", r"^:2: .*99999999999999999999"),
        ("string.tsv", "label\ttext_a\nabc\t好\n", r"^:2: .*'abc'"),
    ]:
        one_line_error(lambda: read(write(tmp_path, name, content)), str(tmp_path / name), where)
    stats = ReaderStats()
    mixed = write(tmp_path, "mixed.tsv", "label\ttext_a\n1\t好\n7\t好\n0\t多\n1\t好\t多\n1\t大\n")
    assert len(read(mixed, skip_bad_examples=True, stats=stats)) == 3 and stats.skipped_bad == 2


# ------------------------------------------------------------------ NER TSV and CoNLL
def test_ner_tsv_and_conll(tmp_path):
    read = lambda p, **kw: read_ner_file(p, MSRA_TAGS, **kw)  # noqa: E731
    odd = write(tmp_path, "odd.tsv", "\ufefftext_a\tlabel\r\n" + "\x02".join(ODD) + "\tO\x02O\x02O\r\n\r\n")
    assert [e.chars for e in read(odd)] == [list(ODD)]
    conll = write(tmp_path, "odd.conll", "\ufeff北 B-LOC\r\n京 I-LOC\r\n\r\n😀 O\r\n𠀀 O\r\n\r\n\r\n")
    assert [(e.chars, e.tags) for e in read(conll)] == [(["北", "京"], ["B-LOC", "I-LOC"]), (["😀", "𠀀"], ["O", "O"])]
    for name, content, where in [
        ("count.tsv", "text_a\tlabel\n北\x02京\tB-LOC\n", r"^:2: "),
        ("unknown.tsv", "text_a\tlabel\n北\x02京\tB-LOC\x02I-XYZ\n", r"^:2: .*I-XYZ"),
        ("utf8.tsv", b"text_a\tlabel\n\xc3\tO\n", r"^:2: not valid UTF-8"),
        ("empty.tsv", "", r"^:1: file is empty"),
        ("header.tsv", "text_a\tlabel\n", r"^:1: no examples"),
        ("columns.conll", "北 B-LOC x\n京 I-LOC\n", r"^:1: "),
        ("tag.conll", "北 B-LOC\n京 9\n", r"^:2: .*'9'"),
        ("truncated.conll", "北 B-LOC\n京", r"^:2: "),
    ]:
        one_line_error(lambda: read(write(tmp_path, name, content)), str(tmp_path / name), where)
    stats = ReaderStats()
    mixed = write(tmp_path, "mixed.tsv", "text_a\tlabel\n北\x02京\tB-LOC\x02I-LOC\n北\tX\n京\tO\n")
    assert len(read(mixed, skip_bad_examples=True, stats=stats)) == 2 and stats.skipped_bad == 1


# ------------------------------------------------------------------ SQuAD JSON (MRC)
def squad(qas, context="北京是首都。" + ODD):
    return {"data": [{"paragraphs": [{"context": context, "qas": qas}]}]}


def test_squad_json(tmp_path):
    question = {"id": "q1", "question": "首都？", "answers": [{"text": "北京", "answer_start": 0}]}
    odd = write(tmp_path, "odd.json", "\ufeff" + json.dumps(squad([question]), ensure_ascii=False).replace(
        ",", ",\r\n") + "\r\n\r\n")
    assert [(e.qas_id, e.answers) for e in read_mrc_file(odd, True)] == [("q1", question["answers"])]
    repaired = dict(question, answers=[{"text": "北京", "answer_start": 10 ** 30}])  # a huge start: repaired
    assert read_mrc_file(write(tmp_path, "huge.json", json.dumps(squad([repaired]))), True)[0].answers == [
        {"text": "北京", "answer_start": 0}]
    for name, document, where in [
        ("data.json", {"data": "abc"}, r"^: data: expected a JSON list, got str"),
        ("article.json", {"data": ["abc"]}, r"^: data\[0\]: expected a JSON object"),
        ("paragraphs.json", {"data": [{"paragraphs": {"a": 1}}]}, r"^: data\[0\].paragraphs: expected a JSON list"),
        ("paragraph.json", {"data": [{"paragraphs": ["abc"]}]}, r"^: data\[0\].paragraphs\[0\]: expected a JSON obj"),
        ("qas.json", {"data": [{"paragraphs": [{"context": "北京", "qas": "abc"}]}]}, r"paragraphs\[0\].qas: expected"),
        ("qa.json", squad([5]), r"qas\[0\]: expected a JSON object, got int"),
        ("answers.json", squad([dict(question, answers="北京")]), r"^:\d+: question q1: 'answers' must be a JSON list"),
        ("start.json", squad([dict(question, answers=[{"text": "北京", "answer_start": "0"}])]),
         r"^:\d+: question q1: answer 0 needs .* an integer 'answer_start'"),
        ("list.json", [1, 2], r"^:1: expected a SQuAD-style object"),
    ]:
        path = write(tmp_path, name, json.dumps(document, ensure_ascii=False))
        one_line_error(lambda: read_mrc_file(path, True), path, where, InputError)
    for name, content, where in [("truncated.json", json.dumps(squad([question]))[:-7], r"^:1:\d+: not valid JSON"),
                                 ("utf8.json", b'{"data": [\n"\xff"]}', r"^:2: not valid UTF-8"),
                                 ("empty.json", "", r"^:1:1: not valid JSON")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: read_mrc_file(path, False), path, where, InputError)
    stats = ReaderStats()
    bad = dict(question, id="q2", answers=[{"text": "上海", "answer_start": 0}])
    path = write(tmp_path, "skip.json", json.dumps(squad([question, bad]), ensure_ascii=False))
    assert len(read_mrc_file(path, True, skip_bad_examples=True, stats=stats)) == 1 and stats.skipped_bad == 1


# ------------------------------------------------------------------ ERNIE pre-training samples, raw and tagged text
def test_pretraining_inputs(tmp_path, tokenizer):
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    a, b = tokenizer.vocab["北"], tokenizer.vocab["京"]
    good = f"{cls} {a} {sep} {b} {sep};0 0 0 1 1;0 1 2 3 4;-1 0 -1 0 -1;1"
    samples = write(tmp_path, "samples.txt", "\ufeff" + good + "\r\n" + good + "\r\n\r\n")
    assert len(read_ernie_samples(samples, tokenizer)) == 2
    for name, line, where in [
        ("fields.txt", good.rsplit(";", 1)[0], r"^:1: expected 5 ';'-separated fields"),
        ("truncated.txt", good[:-9], r"^:1: "),
        ("huge.txt", good.replace(f"{cls} {a}", f"{cls} 99999999999999999999", 1), r"^:1: token id 9{20} is not in"),
        ("negative.txt", good.replace(f"{cls} {a}", f"{cls} -5", 1), r"^:1: token id -5 is not in"),
        ("string.txt", good.replace("0 1 2 3 4", "0 1 x 3 4"), r"^:1: position_ids has a non-integer value 'x'"),
        ("label.txt", good[:-1] + "7", r"^:1: next_sentence_label must be 0 or 1"),
    ]:
        path = write(tmp_path, name, line + "\n")
        one_line_error(lambda: read_ernie_samples(path, tokenizer), path, where, InputError)
    path = write(tmp_path, "utf8.txt", good.encode() + b"\n\xff\n")
    one_line_error(lambda: read_ernie_samples(path, tokenizer), path, r"^:2: not valid UTF-8", InputError)
    stats_path = write(tmp_path, "mixed.txt", f"{good}\nbad\n{good}\n")
    from src.data.pretraining import PretrainingStats
    stats = PretrainingStats()
    assert len(read_ernie_samples(stats_path, tokenizer, stats, skip_bad_lines=True)) == 2
    assert stats.skipped_bad_lines == 1

    text = write(tmp_path, "raw.txt", "\ufeff北京是首都。" + ODD + "\r\n上海很大。\r\n\r\n" + BIG_LINE[:3000] + "\r\n\n\n")
    assert [len(document) for document in read_documents(text, "text", tokenizer)] == [2, 1]
    tagged = write(tmp_path, "tagged.txt", "\ufeff北京/ns 是/v 首都/n\r\n上海/ns 大/a\r\n\r\n\r\n")
    assert [len(document) for document in read_documents(tagged, "tagged", tokenizer)] == [2]
    for name, content, data_format, where in [("utf8.txt", b"\xe4\xb8\n", "text", r"^:1: not valid UTF-8"),
                                              ("tags.txt", "北京/ns 是\n", "tagged", r"^:1: ")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: read_documents(path, data_format, tokenizer), path, where)


# ------------------------------------------------------------------ label maps, vocabularies, configs
def test_label_maps(tmp_path):
    assert read_label_map(write(tmp_path, "bom.json", '\ufeff{"好": 0, "😀": 1}\r\n\r\n')) == {"好": 0, "😀": 1}
    for name, content, where in [("list.json", "[1, 2]", r"^:1: expected a non-empty JSON object"),
                                 ("empty_object.json", "{}", r"^:1: expected a non-empty"),
                                 ("negative.json", '{"a": -1}', r"^:1: label 'a' has id -1"),
                                 ("string.json", '{"a": "0"}', r"^:1: label 'a' has id '0'"),
                                 ("truncated.json", '{"a": 0,\n "b"', r"^:2:\d+: not valid JSON"),
                                 ("utf8.json", b'{"\xff": 0}', r"^:1: not valid UTF-8"),
                                 ("empty.json", "", r"^:1:1: not valid JSON")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: read_label_map(path), path, where, InputError)


def test_vocabularies(tmp_path):
    assert load_vocab(write(tmp_path, "odd.txt", "\ufeff[PAD]\t0\r\n😀\t1\r\n𠀀\t2\r\n\r\n\n")) == {
        "[PAD]": 0, "😀": 1, "𠀀": 2}
    for name, content, where in [("empty.txt", "", r"empty|no tokens"),
                                 ("utf8.txt", b"a\t0\n\xff\t1\n", r"^:2: not valid UTF-8"),
                                 ("string.txt", "a\t0\nb\tx\n", r"^:2: bad id 'x'"),
                                 ("negative.txt", "a\t0\nb\t-1\n", r"^:2: bad id '-1'"),
                                 ("columns.txt", "a\t0\nb\t1\t2\n", r"^:2: expected 'token<TAB>id'"),
                                 ("duplicate.txt", "a\t0\nb\t0\n", r"^:2: duplicate id 0")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: load_vocab(path), path, where)


CONFIG = {"vocab_size": 140, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
          "intermediate_size": 64, "hidden_act": "relu", "max_position_embeddings": 64, "type_vocab_size": 2}


def test_model_configs(tmp_path):
    config = load_config(write(tmp_path, "bom.json", "\ufeff" + json.dumps(CONFIG).replace(",", ",\r\n") + "\r\n\n"))
    assert config.hidden_size == 32
    for name, change, where in [("string.json", {"hidden_size": "128"}, "hidden_size"),
                                ("float.json", {"num_hidden_layers": 2.5}, "num_hidden_layers"),
                                ("negative.json", {"layer_norm_eps": -1e-5}, "layer_norm_eps"),
                                ("huge.json", {"num_attention_heads": 10 ** 30}, "num_attention_heads"),
                                ("zero.json", {"vocab_size": 0}, "vocab_size")]:
        path = write(tmp_path, name, json.dumps(dict(CONFIG, **change)))
        one_line_error(lambda: load_config(path), path, where)
    for name, content, where in [("truncated.json", json.dumps(CONFIG)[:-5], r"^:1:\d+: not valid JSON"),
                                 ("utf8.json", b'{"hidden_size": 32,\n"\xff": 1}', r"^:2: not valid UTF-8"),
                                 ("list.json", "[]", r"object|dict"), ("empty.json", "", r"^:1:1: not valid JSON")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: load_config(path), path, where)
    small_path = write(tmp_path, "small.json", json.dumps(CONFIG))  # checked against the run's settings and data
    with pytest.raises(ValueError, match=f"max_position_embeddings 64 in {re.escape(small_path)}$"):
        load_config(small_path).check_sequence_length(128, "--max_seq_len")
    single_path = write(tmp_path, "single.json", json.dumps(dict(CONFIG, type_vocab_size=1)))
    with pytest.raises(ValueError, match=f"^pairs.tsv needs 2 token types .* in {re.escape(single_path)}$"):
        load_config(single_path).check_type_vocab(2, "pairs.tsv")


def test_train_configs(tmp_path):
    table = load_train_config(write(tmp_path, "odd.yaml", "\ufeffoptimizer: Lamb\r\nLamb: {learning_rate: 1.0e-4}"
                                                            "\r\n\r\n\r\n"))
    assert table.optimizer == "Lamb"
    for name, content, where in [("string.yaml", "AdamWeightDecay: {learning_rate: fast}\n", "learning_rate"),
                                 ("negative.yaml", "scale_window: -5\n", "scale_window"),
                                 ("huge.json", '{"AdamWeightDecay": {"warmup_steps": 1e400}}', "warmup_steps"),
                                 ("type.json", '{"AdamWeightDecay": [1, 2]}', "AdamWeightDecay"),
                                 ("truncated.json", '{"optimizer": "Lamb",', r"^:1"),
                                 ("utf8.yaml", b"optimizer: \xff\n", r"^:1.*UTF-8|^: .*UTF-8"),
                                 ("empty.yaml", "", r"empty|mapping|object")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: load_train_config(path), path, where)


# ------------------------------------------------------------------ CLUE JSON lines
def test_clue_json(tmp_path):
    ner = write(tmp_path, "odd.json", '\ufeff{"text": "北京' + ODD + '", "label": {"address": {"北京": [[0, 1]]}}}\r\n\r\n')
    assert [e.chars for e in read_cluener_file(ner)] == [list("北京" + ODD)]
    for name, content, where in [("span.json", '{"text": "北京", "label": {"address": {"北京": [[0, 99]]}}}\n', r"^:1"),
                                 ("negative.json", '{"text": "北京", "label": {"address": {"北京": [[-1, 1]]}}}\n',
                                  r"^:1"),
                                 ("string.json", '{"text": "北京", "label": {"address": {"北京": [["0", 1]]}}}\n',
                                  r"^:1"),
                                 ("truncated.json", '{"text": "北京", "label"\n', r"^:1"),
                                 ("type.json", '{"text": 5}\n', r"^:1"),
                                 ("utf8.json", b'{"text": "\xff"}\n', r"^:1"),
                                 ("empty.json", "", r"empty|no ")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: read_cluener_file(path), path, where)
    labels = {"100": 0, "101": 1}
    classification = write(tmp_path, "tnews.json", '{"sentence": "' + ODD + '", "label": "100"}\r\n\r\n')
    assert [e.text_a for e in read_clue_classification_file(classification, labels)] == [ODD]
    for name, content, where in [("label.json", '{"sentence": "好", "label": "999"}\n', r"^:1"),
                                 ("number.json", '{"sentence": "好", "label": [100]}\n', r"^:1"),
                                 ("columns.json", '{"sentence": "好", "label": "100"}\n{"sentence1": "好", '
                                                  '"sentence2": "多", "label": "100"}\n', r"^:2")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: read_clue_classification_file(path, labels), path, where)


# ------------------------------------------------------------------ TFRecord, MindRecord, checkpoints
def columns(rows=3):
    ids = np.arange(rows * 4, dtype=np.int32).reshape(rows, 4)
    return {"input_ids": ids, "label_ids": np.arange(rows, dtype=np.int32)}


def test_record_files(tmp_path):
    tfrecord = str(tmp_path / "data.tfrecord")
    write_tfrecord(columns(), tfrecord)
    assert np.array_equal(read_tfrecord_columns(tfrecord)["input_ids"], columns()["input_ids"])
    raw = open(tfrecord, "rb").read()
    for name, content, where in [("truncated.tfrecord", raw[:-7], r"record 2 at byte \d+: file ends inside"),
                                 ("flipped.tfrecord", raw[:20] + bytes([raw[20] ^ 1]) + raw[21:], r"CRC mismatch"),
                                 ("empty.tfrecord", b"", r"empty file")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: read_tfrecord_columns(path), path, where)
    mindrecord = str(tmp_path / "data.mindrecord")
    write_mindrecord(columns(), mindrecord)
    assert np.array_equal(read_mindrecord_columns(mindrecord)["label_ids"], columns()["label_ids"])
    raw = open(mindrecord, "rb").read()
    for content in (raw[:len(raw) // 2], b"not a MindRecord file\n", b""):  # damaged in place, beside its index
        write(tmp_path, "data.mindrecord", content)
        one_line_error(lambda: read_mindrecord_columns(mindrecord), mindrecord, r"^: cannot be read as MindRecord: "
                                                                                r"not a MindRecord file, or damaged")
    os.remove(mindrecord + ".db")
    one_line_error(lambda: read_mindrecord_columns(mindrecord), mindrecord, r"its index file .*\.db is missing")


def test_checkpoints(tmp_path):
    path = str(tmp_path / "model.ckpt")
    save_checkpoint([{"name": "w", "data": np.arange(64, dtype=np.float32)}], path)
    raw = open(path, "rb").read()
    for name, content, where in [("truncated.ckpt", raw[:-9], r"not a MindSpore checkpoint, or truncated"),
                                 ("flipped.ckpt", raw[:40] + bytes([raw[40] ^ 4]) + raw[41:], r"damaged: its CRC-32"),
                                 ("empty.ckpt", b"", r"not a MindSpore checkpoint, or truncated"),
                                 ("text.ckpt", b"hello\n", r"not a MindSpore checkpoint, or truncated")]:
        damaged = write(tmp_path, name, content)
        one_line_error(lambda: read_checkpoint(damaged), damaged, where)


# ------------------------------------------------------------------ predict.py input files
def test_predict_input_files(tmp_path):
    records = predict.read_records(write(tmp_path, "odd.txt", "\ufeff" + ODD + "\r\n" + BIG_LINE + "\r\n\r\n\n"),
                                   ("text",))
    assert [r["text"] for _, r in records] == [ODD, BIG_LINE]
    json_records = predict.read_records(write(tmp_path, "odd.jsonl", '\ufeff{"text": "' + ODD + '"}\r\n\r\n'),
                                        ("text",))
    assert [r["text"] for _, r in json_records] == [ODD]
    for name, content, where in [("utf8.txt", b"ok\n\xff\n", r"^:2: not valid UTF-8"),
                                 ("blank.txt", "a\n\nb\n", r"^:2: empty line"),
                                 ("truncated.jsonl", '{"text": "a"}\n{"text": "b\n', r"^:2: not valid JSON"),
                                 ("type.jsonl", '{"text": 5}\n', r"^:1: needs the text field"),
                                 ("list.jsonl", '[1, 2]\n', r"^:1: needs the text field"),
                                 ("empty.txt", "", r"^: no inputs")]:
        path = write(tmp_path, name, content)
        one_line_error(lambda: predict.read_records(path, ("text",)), path, where, InputError)


# ------------------------------------------------------------------ through the CLIs
@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    (folder / "ernie_config.json").write_text(json.dumps(CONFIG))
    return folder


def finetune_argv(model_files, tmp_path, train, dev):
    return ["--task_type", "chnsenticorp", "--config", str(model_files / "ernie_config.json"), "--vocab_file", VOCAB,
            "--device_target", "CPU", "--do_train", "true", "--do_eval", "true", "--train_data_file_path", train,
            "--eval_data_file_path", dev, "--output_dir", str(tmp_path / "out"), "--max_seq_len", "16",
            "--batch_size", "2", "--progress_bar", "false"]


def test_finetune_cli_header_only_files(tmp_path, model_files, capsys):
    good = write(tmp_path, "good.tsv", "label\ttext_a\n1\t好\n0\t错\n1\t好\n0\t错\n")
    header = write(tmp_path, "header.tsv", "label\ttext_a\n")
    message = cli_error(capsys, lambda a: finetune_main("classification", a),
                        finetune_argv(model_files, tmp_path, good, header), header, r"no examples")
    assert "unpack" not in message
    message = cli_error(capsys, lambda a: finetune_main("classification", a),
                        finetune_argv(model_files, tmp_path, header, good), header, r"no examples")
    assert "batch_size" not in message
    all_bad = write(tmp_path, "all_bad.tsv", "label\ttext_a\n7\t好\n9\t错\n")
    cli_error(capsys, lambda a: finetune_main("classification", a),
              finetune_argv(model_files, tmp_path, all_bad, good) + ["--skip_bad_examples", "true"], all_bad,
              r"no examples to train on")
    broken = write(tmp_path, "broken.json", '{"data": "abc"}')
    cli_error(capsys, lambda a: finetune_main("mrc", a),
              ["--task_type", "cmrc", "--config", str(model_files / "ernie_config.json"), "--vocab_file", VOCAB,
               "--device_target", "CPU", "--do_train", "true", "--train_data_file_path", broken, "--output_dir",
               str(tmp_path / "mrc"), "--max_seq_len", "32", "--progress_bar", "false"], broken, r"data: expected")


def test_export_and_predict_refuse_a_vocabulary_larger_than_the_model(tmp_path, capsys):
    """Item 8: the check comes before any graph is built or kernel runs."""
    from src.heads import ErnieForSequenceClassification
    config = load_config("tiny", vocab_size=100, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    folder = tmp_path / "model"
    folder.mkdir()
    save_checkpoint(ErnieForSequenceClassification(config, 2), str(folder / "chnsenticorp-best.ckpt"))
    config.to_json_file(str(folder / "ernie_config.json"))
    (folder / "vocab.txt").write_text(open(VOCAB, encoding="utf-8").read(), encoding="utf-8")  # 133 tokens
    (folder / "task.json").write_text(json.dumps({"task_type": "chnsenticorp", "kind": "classification",
                                                  "labels": ["0", "1"], "max_seq_len": 16}))
    vocab = str(folder / "vocab.txt")
    cli_error(capsys, export.main, ["--model", str(folder), "--file_name", str(tmp_path / "exported")], vocab,
              r"id 132, which does not fit vocab_size=100")
    assert not os.path.exists(tmp_path / "exported.mindir")
    cli_error(capsys, predict.main, ["--model", str(folder), "--text", "好"], vocab,
              r"id 132, which does not fit vocab_size=100")


CLI_CASES = {  # flag -> (file name, content, what the message must say after the file name)
    "--config": ("config.json", json.dumps(dict(CONFIG, hidden_size="128")), r"hidden_size"),
    "--train_config": ("train.yaml", b"optimizer: Lamb\nLamb: {learning_rate: \xff}\n", r"^:2: not valid UTF-8"),
    "--label_map_file": ("labels.json", '{"0": 0, "1": -1}', r"^:1: label '1' has id -1"),
    "--vocab_file": ("vocab.txt", b"[PAD]\t0\n\xff\t1\n", r"^:2: not valid UTF-8"),
    "--train_data_file_path": ("train.tsv", "label\ttext_a\n1\t\xe5\xa5\xbd\n1\n", r"^:3: expected 2 tab-separated"),
    "--eval_data_file_path": ("dev.tsv", b"label\ttext_a\n1\t\xe5\xa5\n", r"^:2: not valid UTF-8"),
}


@pytest.mark.parametrize("flag", sorted(CLI_CASES))
def test_finetune_cli_names_the_bad_file(tmp_path, model_files, capsys, flag):
    name, content, where = CLI_CASES[flag]
    good = write(tmp_path, "good.tsv", "label\ttext_a\n1\t好\n0\t错\n1\t好\n0\t错\n")
    argv = finetune_argv(model_files, tmp_path, good, good)
    bad = write(tmp_path, name, content)
    argv += [flag, bad]
    message = cli_error(capsys, lambda a: finetune_main("classification", a), argv, bad, ".")
    assert re.search(where, message[len(f"error: {bad}"):]), message


def test_pretraining_cli_names_the_bad_line(tmp_path, model_files, capsys, tokenizer):
    from src.pretrain import main as pretrain_main
    samples = write(tmp_path, "samples.txt", f"{tokenizer.cls_token_id} 5 {tokenizer.sep_token_id};0 0 0;0 1 2;-1 0 -1;x\n")
    cli_error(capsys, pretrain_main, ["--data_dir", samples, "--data_format", "ernie", "--vocab_file", VOCAB,
                                      "--config", str(model_files / "ernie_config.json"), "--device_target", "CPU",
                                      "--output_dir", str(tmp_path / "out")], samples, r":1: ")
