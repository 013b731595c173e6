"""Classification and NER readers, feature conversion, MindRecord round trip and the converter CLI.

Small fixtures in tests/fixtures/ are in the exact layouts of the published files; `tiny_vocab.txt` holds their
characters. Expected ids are spelled out as token lists looked up in that vocabulary. Tests marked `real_data` read
<repo>/../shared/data and check the counts its SOURCE.md files state.
"""
import collections
import os
import re

import numpy as np
import pytest

from src.data.classification import convert_classification_examples, read_classification_file
from src.data.common import InputError, ReaderStats, read_label_map
from src.data.mindrecord import read_mindrecord_columns, write_mindrecord
from src.data.ner import (NerExample, convert_ner_examples, entities_from_tags,
                          ner_tags_from_token_predictions, read_ner_file)
from src.finetune_task_reader import convert as main
from src.tasks.registry import TASKS
from src.tokenizer import ErnieTokenizer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TINY_VOCAB = os.path.join(FIXTURES, "tiny_vocab.txt")
DEFAULT_LABEL_MAPS = {**{name: spec.label_map for name, spec in TASKS.items()}, "lcqmc": {"0": 0, "1": 1}}
NER_MAP = DEFAULT_LABEL_MAPS["msra_ner"]


def fixture(name):
    return os.path.join(FIXTURES, name)


def vocab_ids(tokens):
    vocab = {}
    with open(TINY_VOCAB, encoding="utf-8") as f:
        for line in f:
            token, token_id = line.rstrip("\n").split("\t")
            vocab[token] = int(token_id)
    return [vocab[t] for t in tokens]


@pytest.fixture(scope="module")
def tokenizer():
    return ErnieTokenizer(TINY_VOCAB)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- label maps

def test_read_label_map_real_layout(tmp_path):
    path = write(tmp_path, "label_map.json",
                 '{\n  "contradictory": 0,\n  "contradiction": 0,\n  "entailment": 1,\n  "neutral": 2\n}\n')
    assert read_label_map(path) == DEFAULT_LABEL_MAPS["xnli"]


@pytest.mark.parametrize("text, message", [
    ('{\n  "O": 0,\n  "B-PER" 1\n}', ":3:11: not valid JSON"),
    ('{"O": "zero"}', "expected an integer >= 0"),
    ('["O"]', "expected a non-empty JSON object"),
])
def test_read_label_map_rejects_bad_files(tmp_path, text, message):
    path = write(tmp_path, "label_map.json", text)
    with pytest.raises(InputError, match=message) as error:
        read_label_map(path)
    assert str(error.value).startswith(path)


# ---------------------------------------------------------------- classification

def test_chnsenticorp_rows_duplicates_and_features(tokenizer):
    stats = ReaderStats()
    examples = read_classification_file(fixture("chnsenticorp.tsv"), DEFAULT_LABEL_MAPS["chnsenticorp"], stats=stats)
    assert [e.label for e in examples] == ["1", "0", "1", "0"]
    assert examples[1].text_a == "价格太贵 了，不推荐"  # spaces kept as published
    assert examples[0].guid == fixture("chnsenticorp.tsv") + ":2"
    assert (stats.read, stats.duplicates, stats.skipped_bad) == (4, 1, 0)

    columns = convert_classification_examples(examples, tokenizer, 12, DEFAULT_LABEL_MAPS["chnsenticorp"], stats)
    expected_row1 = vocab_ids(["[CLS]", "价", "格", "太", "贵", "了", "，", "不", "推", "[UNK]", "[SEP]"]) + [0]
    assert columns["input_ids"][1].tolist() == expected_row1  # 荐 is not in the tiny vocab
    assert columns["input_mask"][1].tolist() == [1] * 11 + [0]
    assert columns["input_ids"][3].tolist() == vocab_ids(["[CLS]", "the", "hotel", "is", "ok", "[SEP]"]) + [0] * 6
    # row 0 has 11 tokens: cut to 10 so that [CLS] ... [SEP] fits 12
    assert columns["input_ids"][0].tolist() == vocab_ids(
        ["[CLS]", "房", "间", "很", "好", "，", "服", "务", "也", "不", "错", "[SEP]"])
    assert stats.truncated == 2  # rows 0 and 2 (the duplicate)
    assert not columns["segment_ids"].any()
    assert columns["label_ids"].tolist() == [1, 0, 1, 0]
    assert all(c.dtype == np.int32 for c in columns.values())
    assert columns["input_ids"].shape == (4, 12) and columns["label_ids"].shape == (4,)


def test_xnli_pairs_alias_and_truncation(tokenizer):
    label_map = DEFAULT_LABEL_MAPS["xnli"]
    examples = read_classification_file(fixture("xnli.tsv"), label_map)
    assert [(e.text_b, e.label) for e in examples][:2] == [("他没说话。", "contradiction"), ("他回家了。", "entailment")]
    stats = ReaderStats()
    columns = convert_classification_examples(examples, tokenizer, 16, label_map, stats)
    assert columns["label_ids"].tolist() == [0, 1, 2, 0]  # "contradictory" is an alias of contradiction
    assert columns["input_ids"][0].tolist() == vocab_ids(
        ["[CLS]", "他", "说", "我", "回", "来", "了", "。", "[SEP]", "他", "没", "说", "话", "。", "[SEP]"]) + [0]
    assert columns["segment_ids"][0].tolist() == [0] * 9 + [1] * 6 + [0]
    # 7 + 7 tokens into max_seq_len 12: BERT pops from the longer side, from b on a tie -> 5 + 4
    short = convert_classification_examples(examples[2:3], tokenizer, 12, label_map, stats)
    assert short["input_ids"][0].tolist() == vocab_ids(
        ["[CLS]", "他", "说", "我", "回", "来", "[SEP]", "校", "车", "把", "他", "[SEP]"])
    assert short["segment_ids"][0].tolist() == [0] * 7 + [1] * 5
    assert stats.truncated == 2  # row 2 (7 + 7 + 3 > 16) in the first call, again in the second


def test_dbqa_keeps_qids_for_mrr(tokenizer):
    examples = read_classification_file(fixture("dbqa.tsv"), DEFAULT_LABEL_MAPS["dbqa"])
    assert [e.qid for e in examples] == ["0", "0", "1", "1", "1"]
    columns = convert_classification_examples(examples, tokenizer, 32, DEFAULT_LABEL_MAPS["dbqa"])
    assert columns["qids"].tolist() == [0, 0, 1, 1, 1]
    assert columns["label_ids"].tolist() == [1, 0, 1, 0, 0]
    assert columns["input_ids"][0, :9].tolist() == vocab_ids(
        ["[CLS]", "长", "江", "有", "多", "长", "？", "[SEP]", "长"])


def test_file_without_header_needs_columns(tokenizer, tmp_path):
    path = fixture("lcqmc_no_header.tsv")
    with pytest.raises(InputError, match=r"lcqmc_no_header.tsv:1: first line is not a header.*--columns"):
        read_classification_file(path, DEFAULT_LABEL_MAPS["lcqmc"])
    examples = read_classification_file(path, DEFAULT_LABEL_MAPS["lcqmc"], columns=("text_a", "text_b", "label"))
    assert [(e.text_a, e.label, e.guid.rsplit(":", 1)[1]) for e in examples] == [
        ("怎么开证明？", "1", "1"), ("这是什么歌", "0", "2")]
    unlabeled = write(tmp_path, "test.tsv", "怎么开证明？\t证明怎么开？\n这是什么歌\t你喝酒吗\n")
    stats = ReaderStats()
    examples = read_classification_file(unlabeled, DEFAULT_LABEL_MAPS["lcqmc"], ("text_a", "text_b"), stats=stats)
    assert [e.label for e in examples] == [None, None] and stats.unlabeled == 2
    columns = convert_classification_examples(examples, tokenizer, 16, DEFAULT_LABEL_MAPS["lcqmc"])
    assert columns["label_ids"].tolist() == [-1, -1] and columns["qids"].tolist() == [-1, -1]


def test_header_that_contradicts_columns_is_an_error():
    with pytest.raises(InputError, match=r"xnli.tsv:1: header .* differs from the given columns"):
        read_classification_file(fixture("xnli.tsv"), columns=("text_b", "text_a", "label"))


BAD_ROWS = "label\ttext_a\n1\t好\n1\t好\t多\n2\t很好\n0\t\n0\t不好\n"


@pytest.mark.parametrize("line, message", [
    (3, "expected 2 tab-separated columns"),
    (4, "label '2' is not in the label map"),
    (5, "empty text_a"),
])
def test_bad_rows_name_file_and_line(tmp_path, line, message):
    lines = BAD_ROWS.split("\n")
    good_only = "\n".join(lines[:2] + [lines[line - 1]] + lines[5:])  # header, one good row, the bad row, the rest
    path = write(tmp_path, "train.tsv", good_only)
    with pytest.raises(InputError, match="^" + re.escape(f"{path}:3: {message}")):
        read_classification_file(path, DEFAULT_LABEL_MAPS["chnsenticorp"])


def test_skip_bad_examples_counts_them(tmp_path):
    path = write(tmp_path, "train.tsv", BAD_ROWS)
    stats = ReaderStats()
    examples = read_classification_file(path, DEFAULT_LABEL_MAPS["chnsenticorp"], skip_bad_examples=True,
                                        stats=stats)
    assert [e.guid.rsplit(":", 1)[1] for e in examples] == ["2", "6"]
    assert (stats.read, stats.skipped_bad) == (2, 3)
    assert stats.summary() == "read=2 skipped_bad=3"


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("label\ttext_a\n1\t好\n".encode() + b"0\t\xff\xfe\n")
    with pytest.raises(InputError, match=r"train.tsv:3: not valid UTF-8"):
        read_classification_file(str(path))


def test_crlf_and_bom_are_accepted(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("\ufefflabel\ttext_a\r\n1\t好\r\n".encode())
    [example] = read_classification_file(str(path), DEFAULT_LABEL_MAPS["chnsenticorp"])
    assert (example.label, example.text_a) == ("1", "好")


# ---------------------------------------------------------------- NER reading

NER_SENTENCES = [
    (list("张三在北京大学读书。"), "B-PER I-PER O B-ORG I-ORG I-ORG I-ORG O O O".split()),
    (list("李四去上海。"), "B-PER I-PER O B-LOC I-LOC O".split()),
]


@pytest.mark.parametrize("name, columns", [
    ("msra_ner_ernie.tsv", None),                                      # ERNIE task_data: header, \x02-joined
    ("msra_ner_sample_no_header.tsv", ("qid", "text_a", "label")),    # ERNIE repo sample: no header
    ("msra_ner_bio.txt", None),                                        # char<TAB>tag per line
    ("peoples_daily_ner.txt", None),                                   # char<SPACE>tag per line
])
def test_every_ner_layout_reads_the_same_sentences(name, columns):
    stats = ReaderStats()
    examples = read_ner_file(fixture(name), NER_MAP, columns=columns, stats=stats)
    assert [(e.chars, e.tags) for e in examples] == NER_SENTENCES
    assert stats.read == 2


def test_headerless_ernie_ner_needs_columns():
    with pytest.raises(InputError, match=r"msra_ner_sample_no_header.tsv:1: first line is not a header"):
        read_ner_file(fixture("msra_ner_sample_no_header.tsv"), NER_MAP)


def test_conll_sentence_lines(tmp_path):
    path = write(tmp_path, "x.txt", "\n张\tB-PER\n三\tI-PER\n\n\n去\tO\n")  # extra blank lines, no final blank
    examples = read_ner_file(path, NER_MAP)
    assert [(e.chars, e.guid.rsplit(":", 1)[1]) for e in examples] == [(["张", "三"], "2"), (["去"], "6")]


@pytest.mark.parametrize("text, message", [
    ("text_a\tlabel\n张\x02三\tB-PER\x02I-PER\n张\x02三\x02去\tB-PER\x02I-PER\n", ":3: 3 characters but 2 tags"),
    ("text_a\tlabel\n张\x02三\tB-PER\x02I-PER\n张\x02三\tB-PER\x02I-XXX\n", ":3: tag 'I-XXX' (position 1) is not in"),
    ("text_a\tlabel\n张\x02三\tB-PER\x02I-PER\n张\x02\x02三\tB-PER\x02O\x02I-PER\n", ":3: empty character"),
    ("text_a\tlabel\n张\x02三\tB-PER\x02I-PER\n张\x02三\n", ":3: expected 2 tab-separated columns"),
    ("张\tB-PER\n三\tI-PER\n\n去\n", ":4: expected 'char<TAB>tag' or 'char tag'"),
    ("张 B-PER\n三 I-PER\n\n去 O extra\n", ":4: expected 'char<TAB>tag' or 'char tag'"),
    ("张\tB-PER\n\n三\tB-XYZ\n", ":3: tag 'B-XYZ' is not in the label map"),
])
def test_bad_ner_lines_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "ner.txt", text)
    with pytest.raises(InputError, match="^" + re.escape(path + message)):
        read_ner_file(path, NER_MAP)
    stats = ReaderStats()
    examples = read_ner_file(path, NER_MAP, skip_bad_examples=True, stats=stats)
    assert (len(examples), stats.skipped_bad, stats.read) == (1, 1, 1)


# ---------------------------------------------------------------- NER features and the way back

def test_ner_token_labels_and_round_trip(tokenizer):
    # "ab" is one labelled item that WordPiece splits into a ##b; U+3000 produces no token at all
    chars = ["张", "ab", "\u3000", "北", "京", "去"]
    tags = ["B-PER", "B-PER", "O", "B-LOC", "I-LOC", "O"]
    stats = ReaderStats()
    columns, [alignment] = convert_ner_examples([NerExample("t:1", chars, tags)], tokenizer, 10, NER_MAP, stats)
    assert columns["input_ids"][0].tolist() == vocab_ids(
        ["[CLS]", "张", "a", "##b", "北", "京", "去", "[SEP]"]) + [0, 0]
    names = {v: k for k, v in NER_MAP.items()}
    assert [names[i] for i in columns["label_ids"][0]] == [
        "O", "B-PER", "B-PER", "I-PER", "B-LOC", "I-LOC", "O", "O", "O", "O"]
    assert alignment.token_to_char == [-1, 0, 1, 1, 3, 4, 5, -1]
    assert stats.no_token_chars == 1 and stats.truncated == 0
    back = ner_tags_from_token_predictions(alignment, columns["label_ids"][0], names)
    assert back == tags
    assert entities_from_tags(chars, back) == [("PER", 0, 1), ("PER", 1, 3), ("LOC", 4, 6)]
    assert "".join(chars)[1:3] == "ab" and "".join(chars)[4:6] == "北京"


def test_ner_truncation_predicts_o_for_cut_chars(tokenizer):
    example = NerExample("t:1", list("李四去上海"), "B-PER I-PER O B-LOC I-LOC".split())
    stats = ReaderStats()
    columns, [alignment] = convert_ner_examples([example], tokenizer, 5, NER_MAP, stats)
    assert stats.truncated == 1
    assert columns["input_ids"][0].tolist() == vocab_ids(["[CLS]", "李", "四", "去", "[SEP]"])
    names = {v: k for k, v in NER_MAP.items()}
    assert ner_tags_from_token_predictions(alignment, columns["label_ids"][0], names) == [
        "B-PER", "I-PER", "O", "O", "O"]


def test_unlabeled_ner_gets_minus_one(tokenizer, tmp_path):
    path = write(tmp_path, "predict.tsv", "text_a\n李\x02四\n")
    [example] = read_ner_file(path, NER_MAP)
    assert example.tags is None
    columns, _ = convert_ner_examples([example], tokenizer, 6, NER_MAP)
    assert columns["label_ids"].tolist() == [[-1] * 6]


def test_entities_from_tags_conventions():
    chars = list("ABCDEFG")
    tags = ["I-PER", "I-PER", "B-LOC", "I-ORG", "O", "B-PER", "B-PER"]
    # an I- without a matching open entity starts one; B- always starts one
    assert entities_from_tags(chars, tags) == [("PER", 0, 2), ("LOC", 2, 3), ("ORG", 3, 4), ("PER", 5, 6),
                                              ("PER", 6, 7)]
    # chunked as the entity F1 counts them, IOBES included
    assert entities_from_tags(["张", "三", "北京"], ["S-PER", "B-PER", "E-PER"]) == [("PER", 0, 1), ("PER", 1, 4)]


# ---------------------------------------------------------------- MindRecord and the CLI

@pytest.mark.parametrize("shard_num", [1, 2])
def test_mindrecord_round_trip(tmp_path, shard_num):
    rng = np.random.default_rng(0)
    columns = {"input_ids": rng.integers(0, 18000, (7, 5)).astype(np.int32),
               "label_ids": rng.integers(0, 3, 7).astype(np.int32)}
    path = str(tmp_path / "out" / "train.mindrecord")
    write_mindrecord(columns, path, shard_num=shard_num)
    for source in (path, str(tmp_path / "out")):  # the file (or its shards), or their directory
        back = read_mindrecord_columns(source)
        assert set(back) == set(columns)
        for name in columns:
            np.testing.assert_array_equal(back[name], columns[name])
    expected = ["train.mindrecord", "train.mindrecord.db"] if shard_num == 1 else [
        "train.mindrecord0", "train.mindrecord0.db", "train.mindrecord1", "train.mindrecord1.db"]
    assert sorted(os.listdir(tmp_path / "out")) == expected  # no temporary folder left behind


def test_mindrecord_rejects_ragged_columns(tmp_path):
    with pytest.raises(ValueError, match="equal length"):
        write_mindrecord({"a": np.zeros((2, 3), np.int32), "b": np.zeros(3, np.int32)}, str(tmp_path / "x"))


def test_cli_writes_what_the_converters_return(tmp_path, tokenizer):
    out = str(tmp_path / "dbqa.mindrecord")
    main(["--task_type", "dbqa", "--vocab_path", TINY_VOCAB, "--max_seq_len", "24",
          "--input_file", fixture("dbqa.tsv"), "--output_file", out])
    written = read_mindrecord_columns(out)
    expected = convert_classification_examples(
        read_classification_file(fixture("dbqa.tsv"), DEFAULT_LABEL_MAPS["dbqa"]), tokenizer, 24,
        DEFAULT_LABEL_MAPS["dbqa"])
    assert sorted(written) == ["input_ids", "input_mask", "label_ids", "qids", "segment_ids"]
    for name in expected:
        np.testing.assert_array_equal(written[name], expected[name])

    out = str(tmp_path / "ner.mindrecord")
    main(["--task_type", "msra_ner", "--vocab_path", TINY_VOCAB, "--max_seq_len", "16", "--input_file",
          fixture("msra_ner_sample_no_header.tsv"), "--columns", "qid,text_a,label", "--output_file", out])
    written = read_mindrecord_columns(out)
    assert sorted(written) == ["input_ids", "input_mask", "label_ids", "segment_ids"]
    assert written["label_ids"].shape == (2, 16)

    out = str(tmp_path / "xnli.mindrecord")
    main(["--task_type", "xnli", "--vocab_path", TINY_VOCAB, "--max_seq_len", "16", "--input_file",
          fixture("xnli.tsv"), "--output_file", out])
    assert "qids" not in read_mindrecord_columns(out)


def test_cli_stops_at_bad_input_unless_told(tmp_path):
    bad = write(tmp_path, "train.tsv", BAD_ROWS)
    args = ["--task_type", "chnsenticorp", "--vocab_path", TINY_VOCAB, "--input_file", bad,
            "--output_file", str(tmp_path / "out.mindrecord")]
    with pytest.raises(InputError, match=r"train.tsv:3:"):
        main(args)
    assert not os.path.exists(tmp_path / "out.mindrecord")
    main(args + ["--skip_bad_examples"])
    assert read_mindrecord_columns(str(tmp_path / "out.mindrecord"))["label_ids"].tolist() == [1, 0]


# ---------------------------------------------------------------- real data

def bert_reference_features(hf_tokenizer, example, max_seq_len):
    """google-research/bert's feature recipe over Hugging Face's independent WordPiece implementation."""
    tokens_a = hf_tokenizer.tokenize(example.text_a)
    tokens_b = hf_tokenizer.tokenize(example.text_b) if example.text_b is not None else []
    room = max_seq_len - (3 if example.text_b is not None else 2)
    while len(tokens_a) + len(tokens_b) > room:  # bert's _truncate_seq_pair
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"] + (tokens_b + ["[SEP]"] if example.text_b is not None else [])
    segments = [0] * (len(tokens_a) + 2) + [1] * (len(tokens) - len(tokens_a) - 2)
    ids = hf_tokenizer.convert_tokens_to_ids(tokens)
    pad = max_seq_len - len(ids)
    return ids + [0] * pad, [1] * len(ids) + [0] * pad, segments + [0] * pad


CLASSIFICATION_FILES = [  # path, columns, task, rows, label counts (SOURCE.md)
    ("chnsenticorp_ernie/train.tsv", None, "chnsenticorp", 9600, {"0": 4801, "1": 4799}),
    ("chnsenticorp_ernie/dev.tsv", None, "chnsenticorp", 1200, {"0": 607, "1": 593}),
    ("chnsenticorp_ernie/test.tsv", None, "chnsenticorp", 1200, {"0": 592, "1": 608}),
    ("chnsenticorp/train.tsv", None, "chnsenticorp", 9583, {"0": 4791, "1": 4792}),
    ("nlpcc14-sc/train.tsv", None, "chnsenticorp", 10000, {"0": 5000, "1": 5000}),
    ("xnli_zh_ernie/dev.tsv", None, "xnli", 2490, {"contradiction": 830, "entailment": 830, "neutral": 830}),
    ("xnli_zh_ernie/test.tsv", None, "xnli", 5010, {"contradiction": 1670, "entailment": 1670, "neutral": 1670}),
    ("lcqmc/dev.tsv", ("text_a", "text_b", "label"), "lcqmc", 8802, {"1": 4402, "0": 4400}),
    ("lcqmc/test.tsv", ("text_a", "text_b"), "lcqmc", 12500, {None: 12500}),
]


@pytest.mark.real_data
def test_real_classification_files(shared_data, ernie_vocab):
    from transformers import BertTokenizer
    from src.tokenizer import load_vocab
    tokenizer = ErnieTokenizer(ernie_vocab)
    hf_tokenizer = BertTokenizer(vocab=load_vocab(ernie_vocab), do_lower_case=True)
    for name, columns, task, rows, label_counts in CLASSIFICATION_FILES:
        path = os.path.join(shared_data, name)
        stats = ReaderStats()
        examples = read_classification_file(path, DEFAULT_LABEL_MAPS[task], columns, stats=stats)
        assert len(examples) == rows == stats.read, name
        assert collections.Counter(e.label for e in examples) == label_counts, name
        if name == "chnsenticorp_ernie/train.tsv":
            assert stats.duplicates == 1327  # SOURCE.md: rows that repeat an earlier train row
        # Features of the first 300 rows equal BERT's recipe on HF's tokenizer, exactly; a short max_seq_len
        # makes many of them truncate.
        subset = examples[:300]
        features = convert_classification_examples(subset, tokenizer, 24, DEFAULT_LABEL_MAPS[task], stats)
        assert stats.truncated > 50, name
        for i, example in enumerate(subset):
            ids, mask, segments = bert_reference_features(hf_tokenizer, example, 24)
            assert features["input_ids"][i].tolist() == ids, example.guid
            assert features["input_mask"][i].tolist() == mask, example.guid
            assert features["segment_ids"][i].tolist() == segments, example.guid


NER_FILES = [  # path, columns, sentences, characters, B-PER, B-ORG, B-LOC (SOURCE.md)
    ("msra_ner/msra_train_bio.txt", None, 45000, 2171573, 17615, 20584, 36860),
    ("msra_ner/msra_test_bio.txt", None, 3442, 172601, 1973, 1331, 2886),
    ("msra_ner_ernie/dev.tsv", None, 2318, 109870, 884, 984, 1951),
    ("msra_ner_ernie/test.tsv", None, 4636, 219197, 1864, 2185, 3658),
    ("peoples_daily_ner/example.dev", None, 2318, 109870, 884, 984, 1951),
    ("peoples_daily_ner/example.test", None, 4636, 219197, 1864, 2185, 3658),
    ("msra_ner_ernie/ernie_repo_sample/train.tsv", ("qid", "text_a", "label"), 800, 37230, None, None, None),
    ("msra_ner_ernie/ernie_repo_sample/dev.tsv", ("qid", "text_a", "label"), 500, 23663, None, None, None),
    ("msra_ner_ernie/ernie_repo_sample/test.tsv", ("qid", "text_a", "label"), 500, 21616, None, None, None),
]


@pytest.mark.real_data
def test_real_ner_files_and_round_trip(shared_data, ernie_vocab):
    tokenizer = ErnieTokenizer(ernie_vocab)
    id_to_label = {v: k for k, v in NER_MAP.items()}
    assert read_label_map(os.path.join(shared_data, "msra_ner_ernie/label_map.json")) == NER_MAP
    read_back = {}
    for name, columns, sentences, chars, *entity_counts in NER_FILES:
        stats = ReaderStats()
        examples = read_ner_file(os.path.join(shared_data, name), NER_MAP, stats=stats, columns=columns)
        read_back[name] = examples
        assert (len(examples), sum(len(e.chars) for e in examples)) == (sentences, chars), name
        if entity_counts[0] is not None:
            found = collections.Counter(kind for e in examples for kind, _, _ in entities_from_tags(e.chars, e.tags))
            assert [found["PER"], found["ORG"], found["LOC"]] == entity_counts, name
        # Round trip char tags -> token label ids -> char tags: the identity on every sentence that fits, and on
        # the kept chars of a truncated one (the rest predict "O"). MSRA train: its first 10,000 sentences only.
        subset = examples[:10000]
        features, alignments = convert_ner_examples(subset, tokenizer, 512, NER_MAP, stats)
        assert stats.no_token_chars == 0, name  # every published char produces a token
        assert stats.truncated == sum(len(e.chars) > 510 for e in subset), name  # one token per char here
        for example, alignment, label_ids in zip(subset, alignments, features["label_ids"]):
            back = ner_tags_from_token_predictions(alignment, label_ids, id_to_label)
            kept = max(alignment.token_to_char) + 1
            assert back == example.tags[:kept] + ["O"] * (len(example.chars) - kept), example.guid
    # ERNIE's msra_ner dev/test are exactly the People's Daily files in another layout
    for ernie, conll in [("msra_ner_ernie/dev.tsv", "peoples_daily_ner/example.dev"),
                         ("msra_ner_ernie/test.tsv", "peoples_daily_ner/example.test")]:
        assert [(e.chars, e.tags) for e in read_back[ernie]] == [(e.chars, e.tags) for e in read_back[conll]]


@pytest.mark.real_data
def test_real_weibo_ner_format(shared_data):
    # Another tag set (PER/ORG/LOC/GPE x NAM/NOM) and items "<char><position>": read only as a format check.
    for split, sentences, chars in [("train", 1350, 73778), ("dev", 270, 14509), ("test", 270, 14842)]:
        examples = read_ner_file(os.path.join(shared_data, f"weibo_ner/weiboNER_2nd_conll.{split}"))
        assert (len(examples), sum(len(e.chars) for e in examples)) == (sentences, chars)
        assert {t for e in examples for t in e.tags} <= {"O"} | {f"{p}-{k}.{n}" for p in "BI"
                                                          for k in ("PER", "ORG", "LOC", "GPE")
                                                          for n in ("NAM", "NOM")}


@pytest.mark.real_data
def test_real_cli_conversion(shared_data, ernie_vocab, tmp_path):
    out = str(tmp_path / "dev.mindrecord")
    main(["--task_type", "msra_ner", "--vocab_path", ernie_vocab, "--max_seq_len", "256", "--input_file",
          os.path.join(shared_data, "msra_ner_ernie/dev.tsv"), "--label_map_config",
          os.path.join(shared_data, "msra_ner_ernie/label_map.json"), "--output_file", out])
    written = read_mindrecord_columns(out)
    assert written["input_ids"].shape == (2318, 256) and written["label_ids"].shape == (2318, 256)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_mindrecord_files_get_the_mode_open_would_give(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_mindrecord({"a": np.zeros((2, 3), np.int32)}, str(tmp_path / "x.mindrecord"))
    finally:
        os.umask(previous)
    for name in ("x.mindrecord", "x.mindrecord.db"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask, name
