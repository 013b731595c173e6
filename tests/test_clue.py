"""CLUE benchmark files (src/data/clue.py): CLUENER2020 and CLUE classification readers, submission writers, and
the CLUENER official score against hand counts and seqeval.

Every file is written by the test in the published layouts (JSON lines; CLUENER spans [start, end] with an inclusive
end; test files with an "id" and no label). Expected tags and counts are spelled out by hand.
"""
import json
import random

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from src.data.clue import (
    CLUE_CLASSIFICATION_LABEL_MAPS, CLUENER_LABEL_MAP, CLUENER_TYPES, ClueClassificationExample, CluenerExample,
    cluener_gold_records, cluener_label, cluener_prf, read_clue_classification_file, read_clue_labels_file,
    read_clue_ner_submission, read_cluener_file, write_clue_classification_submission, write_clue_ner_submission)
from src.data.classification import ClassificationExample, convert_classification_examples
from src.data.common import InputError, ReaderStats
from src.data.ner import NerExample, convert_ner_examples, entities_from_tags, ner_tags_from_token_predictions
from src.tokenizer import ErnieTokenizer

# the README's example line, and one with an entity text at two places and two adjacent entities of one type
NER_LINES = [
    {"text": "北京勘察设计协会副会长兼秘书长周荫如",
     "label": {"organization": {"北京勘察设计协会": [[0, 7]]}, "name": {"周荫如": [[15, 17]]},
               "position": {"副会长": [[8, 10]], "秘书长": [[12, 14]]}}},
    {"text": "台湾游客去台湾张三李四",
     "label": {"address": {"台湾": [[0, 1], [5, 6]]}, "name": {"张三": [[7, 8]], "李四": [[9, 10]]}}},
]
NER_TAGS = [
    ["B-organization"] + ["I-organization"] * 7 + ["B-position", "I-position", "I-position", "O",
                                                   "B-position", "I-position", "I-position",
                                                   "B-name", "I-name", "I-name"],
    ["B-address", "I-address", "O", "O", "O", "B-address", "I-address", "B-name", "I-name", "B-name", "I-name"],
]


def write_lines(path, lines, bom=False, newline="\n", trailing="\n"):
    text = newline.join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines)
    path.write_bytes((("\ufeff" if bom else "") + text + trailing).encode("utf-8"))
    return str(path)


def tokenizer_for(tmp_path, texts):
    chars = sorted({c for text in texts for c in text})
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + chars
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{token}\t{i}\n" for i, token in enumerate(vocab)), encoding="utf-8")
    return ErnieTokenizer(str(path))


# ---------------------------------------------------------------- CLUENER reader

def test_cluener_reader_gives_bio_tags_through_bom_crlf_and_blank_lines(tmp_path):
    path = write_lines(tmp_path / "dev.json", NER_LINES, bom=True, newline="\r\n", trailing="\r\n\r\n\n")
    stats = ReaderStats()
    examples = read_cluener_file(path, CLUENER_LABEL_MAP, stats=stats)
    assert [e.chars for e in examples] == [list(line["text"]) for line in NER_LINES]
    assert [e.tags for e in examples] == NER_TAGS
    assert [e.record_id for e in examples] == [0, 1]  # no "id" in the file: the record's position
    assert [e.guid for e in examples] == [f"{path}:1", f"{path}:2"]
    assert isinstance(examples[0], NerExample) and examples[0].text == NER_LINES[0]["text"]
    assert stats.read == 2 and stats.unlabeled == 0


def test_cluener_test_file_keeps_ids_and_has_no_tags(tmp_path):
    path = write_lines(tmp_path / "test.json", [{"id": 0, "text": "四川敦煌学"}, "", {"id": 7, "text": "尼日利亚"}])
    stats = ReaderStats()
    examples = read_cluener_file(path, CLUENER_LABEL_MAP, stats=stats)
    assert [(e.record_id, e.text, e.tags) for e in examples] == [(0, "四川敦煌学", None), (7, "尼日利亚", None)]
    assert examples[1].guid == f"{path}:3" and stats.unlabeled == 2


def test_default_cluener_label_map():
    assert len(CLUENER_TYPES) == 10 and len(CLUENER_LABEL_MAP) == 21
    assert sorted(CLUENER_LABEL_MAP.values()) == list(range(21)) and CLUENER_LABEL_MAP["O"] == 20
    assert {tag for tag in CLUENER_LABEL_MAP if tag != "O"} == {f"{p}-{t}" for t in CLUENER_TYPES for p in "BI"}


GOOD = {"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}}}
NER_DAMAGE = [
    ('{"text": "张三", "label": {}', "not valid JSON"),
    ('["张三"]', "expected a JSON object, got list"),
    ({"label": {}}, "'text' must be a non-empty string, got missing"),
    ({"text": 5, "label": {}}, "'text' must be a non-empty string, got 5"),
    ({"text": "   ", "label": {}}, "'text' must be a non-empty string"),
    ({"text": "张三", "label": [["name", 0, 1]]}, "'label' must be an object"),
    ({"text": "张三", "label": {"name": [[0, 1]]}}, "label['name'] must be an object"),
    ({"text": "张三", "label": {"name": {"张三": [0, 1]}}}, "span 0 is not [start, end]"),
    ({"text": "张三", "label": {"name": {"张三": []}}}, "expected a non-empty list of [start, end]"),
    ({"text": "张三", "label": {"name": {"张三": [[0, "1"]]}}}, "is not [start, end] (two integers)"),
    ({"text": "张三", "label": {"name": {"张三": [[0, True]]}}}, "is not [start, end] (two integers)"),
    ({"text": "张三", "label": {"name": {"张三": [[1, 0]]}}}, "is not 0 <= start <= end"),
    ({"text": "张三", "label": {"name": {"张三": [[-1, 0]]}}}, "is not 0 <= start <= end"),
    ({"text": "张三", "label": {"name": {"张三": [[0, 2]]}}}, "span [0, 2] is outside the text (length 2"),
    ({"text": "张三李四", "label": {"name": {"张三": [[1, 2]]}}},
     "span [1, 2] covers '三李', not the entity text"),
    ({"text": "张三", "label": {"name": {"": [[0, 1]]}}}, "empty entity text"),
    ({"text": "北京大学", "label": {"organization": {"北京大学": [[0, 3]]}, "address": {"北京": [[0, 1]]}}},
     "spans overlap: address/'北京' [0, 1] and organization/'北京大学' [0, 3]"),
    ({"text": "北京北京", "label": {"address": {"北京": [[0, 1], [0, 1]]}}}, "spans overlap"),
    ({"text": "张三丰", "label": {"name": {"张三": [[0, 1]]}, "position": {"三丰": [[1, 2]]}}},
     "spans overlap: name/'张三' [0, 1] and position/'三丰' [1, 2]"),
    ('{"text": "张三", "label": {"name": {"张三": [[0, 1]]}, "name": {}}}',
     "key 'name' appears twice"),
    ({"text": "张三", "label": {"person": {"张三": [[0, 1]]}}},
     "entity type 'person' is not in the label map"),
    ({"text": "张三"}, "has no 'label', but line 1 (the first record) has a 'label'"),
    ({"id": 1.5, "text": "张三", "label": {}}, "'id' must be an integer or a string"),
    ({"id": 0, "text": "张三", "label": {}}, "id 0 repeats line 1"),  # line 1 has no id: its id is its position 0
]


@pytest.mark.parametrize("bad_line,message", NER_DAMAGE, ids=[m for _, m in NER_DAMAGE])
def test_cluener_damage_is_a_one_line_error_naming_file_and_line_or_a_counted_skip(tmp_path, bad_line, message):
    path = write_lines(tmp_path / "train.json", [GOOD, bad_line, dict(GOOD, text="张三在上海")])
    with pytest.raises(InputError) as error:
        read_cluener_file(path, CLUENER_LABEL_MAP)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)
    assert "\n" not in str(error.value)
    stats = ReaderStats()
    examples = read_cluener_file(path, CLUENER_LABEL_MAP, skip_bad_examples=True, stats=stats)
    assert [e.text for e in examples] == ["张三在北京", "张三在上海"] and [e.record_id for e in examples] == [0, 2]
    assert stats.skipped_bad == 1 and stats.read == 2


def test_cluener_empty_or_non_utf8_file(tmp_path):
    empty = write_lines(tmp_path / "empty.json", ["", ""])
    with pytest.raises(InputError, match=f"^{empty}:1: file is empty$"):
        read_cluener_file(empty)
    latin = tmp_path / "latin.json"
    good_line = json.dumps(GOOD, ensure_ascii=False).encode("utf-8")
    latin.write_bytes(good_line + b"\n" + '{"text": "é"}'.encode("latin-1"))
    with pytest.raises(InputError, match=f"^{latin}:2: not valid UTF-8"):
        read_cluener_file(str(latin))


# ---------------------------------------------------------------- CLUENER submission

def test_ner_submission_lines_have_inclusive_ends_and_round_trip(tmp_path):
    text = "台湾游客去台湾张三李四"
    entities = [("name", 9, 11), ("address", 0, 2), ("address", 5, 7), ("name", 7, 9)]  # end exclusive, any order
    path = str(tmp_path / "cluener_predict.json")
    assert write_clue_ner_submission([(0, text, entities), (1, "没有实体", [])], path) == 2
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert lines == [{"id": 0, "label": NER_LINES[1]["label"]}, {"id": 1, "label": {}}]
    assert read_clue_ner_submission(path) == lines


def test_cluener_file_round_trips_through_features_predictions_and_submission(tmp_path):
    """dev file -> features -> (gold ids as the "prediction") -> char tags -> entities -> submission == dev labels."""
    path = write_lines(tmp_path / "dev.json", NER_LINES)
    examples = read_cluener_file(path, CLUENER_LABEL_MAP)
    tokenizer = tokenizer_for(tmp_path, [line["text"] for line in NER_LINES])
    columns, alignments = convert_ner_examples(examples, tokenizer, 32, CLUENER_LABEL_MAP)
    id_to_label = {label_id: tag for tag, label_id in CLUENER_LABEL_MAP.items()}
    records = []
    for example, alignment, token_labels in zip(examples, alignments, columns["label_ids"]):
        tags = ner_tags_from_token_predictions(alignment, token_labels, id_to_label)
        records.append((example.record_id, example.text, entities_from_tags(example.chars, tags)))
    submission = str(tmp_path / "submission.json")
    write_clue_ner_submission(records, submission)
    predicted = read_clue_ner_submission(submission)
    assert [record["label"] for record in predicted] == [line["label"] for line in NER_LINES]
    assert cluener_gold_records(examples) == predicted
    score = cluener_prf(cluener_gold_records(examples), predicted)
    assert score["f1"] == 1.0 and score["macro_f1"] == pytest.approx(4 / 10)  # 4 of the 10 types occur


def test_submission_writer_and_reader_refuse_damage(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"entity name \[3, 5\) is outside the text \(length 4\)"):
        write_clue_ner_submission([(0, "张三李四", [("name", 3, 5)])], str(path))
    with pytest.raises(ValueError, match="submission id 0 appears twice"):
        write_clue_ner_submission([(0, "张三", []), (0, "李四", [])], str(path))
    assert path.read_text(encoding="utf-8") == "old\n"  # nothing half-written
    for line, message in [({"id": 0, "label": {"name": {"张三": [[0, 2]]}}}, "has 3 characters, the entity 2"),
                          ({"id": 0}, "no 'label'"),
                          ({"id": 5, "label": {}}, "id 5 repeats line 1")]:
        bad = write_lines(tmp_path / "bad.json", [{"id": 5, "label": {}}, line])
        with pytest.raises(InputError, match=f"^{bad}:2: .*{json.dumps(message)[1:-1].replace('[', '.')}"):
            read_clue_ner_submission(bad)
    with pytest.raises(ValueError, match="ids but"):
        write_clue_classification_submission([0, 1], ["0"], str(path))


def test_cluener_gold_records_need_labels(tmp_path):
    path = write_lines(tmp_path / "test.json", [{"id": 0, "text": "张三"}])
    with pytest.raises(ValueError, match=f"{path}:1: no gold labels"):
        cluener_gold_records(read_cluener_file(path))


# ---------------------------------------------------------------- CLUENER score

def test_cluener_prf_hand_counted_with_repeats_and_positions_ignored():
    gold = [
        {"id": 0, "label": {"address": {"台湾": [[0, 1], [5, 6]]}, "name": {"张三": [[7, 8]], "李四": [[9, 10]]}}},
        {"id": 1, "label": {"company": {"新东方": [[0, 2]]}}},
        {"id": 2, "label": {}},
    ]
    pred = [
        # one "台湾" (elsewhere than either gold span) matches the entity text: TP 1, no miss; "李四" is missed
        {"id": 0, "label": {"address": {"台湾": [[20, 21]]}, "name": {"张三": [[7, 8]], "王五": [[0, 1]]}}},
        # right text, wrong type: FN for company, FP for organization
        {"id": 1, "label": {"organization": {"新东方": [[0, 2]]}}},
        {"id": 2, "label": {"game": {"魔兽": [[0, 1]]}}},
    ]
    result = cluener_prf(gold, pred)
    per_type = {t: (s["tp"], s["fp"], s["fn"]) for t, s in result["per_type"].items()}
    assert per_type == {"address": (1, 0, 0), "name": (1, 1, 1), "company": (0, 0, 1), "organization": (0, 1, 0),
                        "game": (0, 1, 0), "book": (0, 0, 0), "government": (0, 0, 0), "movie": (0, 0, 0),
                        "position": (0, 0, 0), "scene": (0, 0, 0)}
    assert result["per_type"]["address"]["f1"] == 1.0 and result["per_type"]["name"]["f1"] == 0.5
    assert result["macro_f1"] == pytest.approx((1.0 + 0.5) / 10)  # every other type scores 0
    assert (result["tp"], result["fp"], result["fn"]) == (2, 3, 2)
    assert result["precision"] == pytest.approx(2 / 5) and result["recall"] == pytest.approx(2 / 4)
    assert result["f1"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 2))


def test_cluener_prf_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="1 gold records but 0 predicted"):
        cluener_prf([{"label": {}}], [])
    with pytest.raises(ValueError, match="record 0: gold id 3 but predicted id 4"):
        cluener_prf([{"id": 3, "label": {}}], [{"id": 4, "label": {}}])
    with pytest.raises(ValueError, match=r"record 0: predicted entity types \['person'\] are not among"):
        cluener_prf([{"label": {}}], [{"label": {"person": {"张三": [[0, 1]]}}}])


def random_spans(rng, length):
    """Non-overlapping (type, start, end_exclusive) spans."""
    spans, position = [], 0
    while position < length:
        position += rng.randint(0, 3)
        size = rng.randint(1, 4)
        if position + size > length:
            break
        spans.append((rng.choice(CLUENER_TYPES), position, position + size))
        position += size
    return spans


def bio(length, spans):
    tags = ["O"] * length
    for entity_type, start, end in spans:
        tags[start:end] = [f"B-{entity_type}"] + [f"I-{entity_type}"] * (end - start - 1)
    return tags


def test_cluener_prf_equals_seqeval_where_the_definitions_agree():
    """In texts of distinct characters an entity text fixes its span, so CLUENER's entity-text sets are seqeval's
    span sets: micro P/R/F1, per-type F1 and (with all 10 types in the gold) the macro F1 must be equal."""
    rng = random.Random(12)
    alphabet = [chr(0x4E00 + i) for i in range(3000)]
    gold_records, pred_records, gold_tags, pred_tags = [], [], [], []
    for n in range(300):
        text = "".join(rng.sample(alphabet, rng.randint(1, 30)))
        gold_spans = random_spans(rng, len(text))
        # predictions: most gold spans kept, some retyped or moved, some new ones
        pred_spans = [s for s in gold_spans if rng.random() < 0.7]
        pred_spans = [(rng.choice(CLUENER_TYPES), s, e) if rng.random() < 0.1 else (t, s, e)
                      for t, s, e in pred_spans]
        if rng.random() < 0.5:
            pred_spans = random_spans(rng, len(text))
        gold_records.append({"id": n, "label": cluener_label(text, gold_spans)})
        pred_records.append({"id": n, "label": cluener_label(text, pred_spans)})
        gold_tags.append(bio(len(text), gold_spans))
        pred_tags.append(bio(len(text), pred_spans))
        assert entities_from_tags(list(text), gold_tags[-1]) == sorted(gold_spans, key=lambda s: s[1])
    result = cluener_prf(gold_records, pred_records)
    assert 0.2 < result["f1"] < 0.9  # a mix of hits and misses, not a degenerate case
    assert result["precision"] == pytest.approx(precision_score(gold_tags, pred_tags), abs=1e-12)
    assert result["recall"] == pytest.approx(recall_score(gold_tags, pred_tags), abs=1e-12)
    assert result["f1"] == pytest.approx(f1_score(gold_tags, pred_tags), abs=1e-12)
    report = classification_report(gold_tags, pred_tags, output_dict=True, zero_division=0)
    assert set(CLUENER_TYPES) <= set(report)
    for entity_type in CLUENER_TYPES:
        assert result["per_type"][entity_type]["f1"] == pytest.approx(report[entity_type]["f1-score"], abs=1e-12)
        assert result["per_type"][entity_type]["tp"] + result["per_type"][entity_type]["fn"] == \
            report[entity_type]["support"]
    assert result["macro_f1"] == pytest.approx(f1_score(gold_tags, pred_tags, average="macro"), abs=1e-12)


def test_cluener_prf_differs_from_span_f1_where_an_entity_text_repeats():
    text = "台湾和台湾"
    gold = [{"label": cluener_label(text, [("address", 0, 2), ("address", 3, 5)])}]
    pred = [{"label": cluener_label(text, [("address", 0, 2)])}]
    assert cluener_prf(gold, pred)["per_type"]["address"]["recall"] == 1.0  # the text "台湾" counts once
    gold_tags, pred_tags = [bio(5, [("address", 0, 2), ("address", 3, 5)])], [bio(5, [("address", 0, 2)])]
    assert recall_score(gold_tags, pred_tags) == 0.5


# ---------------------------------------------------------------- CLUE classification

TNEWS_LABELS = [{"label": str(label), "label_desc": desc} for label, desc in [
    (100, "news_story"), (101, "news_culture"), (102, "news_entertainment"), (103, "news_sports"),
    (104, "news_finance"), (106, "news_house"), (107, "news_car"), (108, "news_edu"), (109, "news_tech"),
    (110, "news_military"), (112, "news_travel"), (113, "news_world"), (114, "news_stock"),
    (115, "news_agriculture"), (116, "news_game")]]


def test_clue_labels_file_gives_the_builtin_tnews_map(tmp_path):
    path = write_lines(tmp_path / "labels.json", TNEWS_LABELS, trailing="")  # CLUE's file has no final newline
    assert read_clue_labels_file(path) == CLUE_CLASSIFICATION_LABEL_MAPS["tnews"]
    iflytek = write_lines(tmp_path / "iflytek_labels.json", [{"label": "0", "label_des": "打车"},
                                                             {"label": "1", "label_des": "地图导航"}])
    assert read_clue_labels_file(iflytek) == {"0": 0, "1": 1}
    assert CLUE_CLASSIFICATION_LABEL_MAPS["iflytek"] == {str(i): i for i in range(119)}
    twice = write_lines(tmp_path / "twice.json", TNEWS_LABELS[:2] + TNEWS_LABELS[:1])
    with pytest.raises(InputError, match=f"^{twice}:3: label '100' appears twice$"):
        read_clue_labels_file(twice)


def test_clue_single_sentence_and_pair_files_convert_like_the_tsv_readers(tmp_path):
    tnews = write_lines(tmp_path / "tnews.json", [
        {"label": "102", "label_desc": "news_entertainment", "sentence": "江疏影甜甜圈自拍",
         "keywords": "江疏影,美少女"},
        {"label": 116, "label_desc": "news_game", "sentence": "以前的游戏"}], newline="\r\n")
    afqmc = write_lines(tmp_path / "afqmc.json",
                        [{"sentence1": "花呗怎么还", "sentence2": "花呗如何还款", "label": "1"}])
    test = write_lines(tmp_path / "test.json", [{"id": 10, "sentence1": "借呗", "sentence2": "花呗"},
                                                {"id": 11, "sentence1": "借", "sentence2": "还"}], bom=True)
    examples = read_clue_classification_file(tnews, CLUE_CLASSIFICATION_LABEL_MAPS["tnews"])
    assert [(e.text_a, e.text_b, e.label, e.record_id) for e in examples] == [
        ("江疏影甜甜圈自拍", None, "102", 0), ("以前的游戏", None, "116", 1)]
    assert isinstance(examples[0], ClassificationExample) and examples[0].guid == f"{tnews}:1"
    (pair,) = read_clue_classification_file(afqmc, CLUE_CLASSIFICATION_LABEL_MAPS["afqmc"])
    assert (pair.text_a, pair.text_b, pair.label) == ("花呗怎么还", "花呗如何还款", "1")
    stats = ReaderStats()
    unlabeled = read_clue_classification_file(test, CLUE_CLASSIFICATION_LABEL_MAPS["afqmc"], stats=stats)
    assert [(e.record_id, e.label) for e in unlabeled] == [(10, None), (11, None)] and stats.unlabeled == 2

    texts = [e.text_a + (e.text_b or "") for e in examples + [pair]]
    tokenizer = tokenizer_for(tmp_path, texts)
    columns = convert_classification_examples(examples, tokenizer, 16, CLUE_CLASSIFICATION_LABEL_MAPS["tnews"])
    assert columns["label_ids"].tolist() == [2, 14]
    columns = convert_classification_examples([pair] + unlabeled, tokenizer, 16,
                                              CLUE_CLASSIFICATION_LABEL_MAPS["afqmc"])
    assert columns["label_ids"].tolist() == [1, -1, -1]
    assert columns["segment_ids"][0].tolist() == [0] * 7 + [1] * 7 + [0] * 2  # [CLS] a [SEP] b [SEP], padded


GOOD_SENTENCE = {"sentence": "今天天气好", "label": "100"}
CLASSIFICATION_DAMAGE = [
    ('{"sentence": "好", "label": "100"', "not valid JSON"),
    ("7", "expected a JSON object, got int"),
    ({"label": "100"}, "'sentence' must be a non-empty string, got missing"),
    ({"sentence": ["好"], "label": "100"}, "'sentence' must be a non-empty string"),
    ({"sentence": "好", "label": "105"}, "label '105' is not in the label map"),
    ({"sentence": "好", "label": True}, "'label' must be a non-empty string or an integer"),
    ({"sentence": "好", "label": ""}, "'label' must be a non-empty string or an integer"),
    ({"sentence": "好"}, "has no 'label', but line 1 (the first record) has a 'label'"),
    ({"sentence1": "好", "sentence2": "坏", "label": "100"},
     "is a sentence pair ('sentence1', 'sentence2'), but line 1 (the first record) is a single 'sentence'"),
    ({"id": None, "sentence": "好", "label": "100"}, "'id' must be an integer or a string"),
    ({"id": 0, "sentence": "好", "label": "100"}, "id 0 repeats line 1"),
    ('{"sentence": "好", "label": "100", "label": "101"}', "key 'label' appears twice"),
]


@pytest.mark.parametrize("bad_line,message", CLASSIFICATION_DAMAGE, ids=[m for _, m in CLASSIFICATION_DAMAGE])
def test_clue_classification_damage_is_a_one_line_error_or_a_counted_skip(tmp_path, bad_line, message):
    path = write_lines(tmp_path / "train.json", [GOOD_SENTENCE, bad_line, GOOD_SENTENCE])
    label_map = CLUE_CLASSIFICATION_LABEL_MAPS["tnews"]
    with pytest.raises(InputError) as error:
        read_clue_classification_file(path, label_map)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)
    assert "\n" not in str(error.value)
    stats = ReaderStats()
    examples = read_clue_classification_file(path, label_map, skip_bad_examples=True, stats=stats)
    assert [e.record_id for e in examples] == [0, 2] and stats.skipped_bad == 1 and stats.read == 2


def test_clue_pair_missing_its_second_sentence(tmp_path):
    path = write_lines(tmp_path / "afqmc.json", [{"sentence1": "花呗", "label": "0"}])
    with pytest.raises(InputError, match=f"^{path}:1: 'sentence2' must be a non-empty string, got missing$"):
        read_clue_classification_file(path, CLUE_CLASSIFICATION_LABEL_MAPS["afqmc"])
    with pytest.raises(ValueError, match="a CLUE label map is needed"):
        read_clue_classification_file(path, None)


def test_classification_submission_round_trips(tmp_path):
    test = write_lines(tmp_path / "test.json", [{"id": 0, "sentence": "一"}, {"id": 1, "sentence": "二"},
                                                {"id": 2, "sentence": "三"}])
    examples = read_clue_classification_file(test, CLUE_CLASSIFICATION_LABEL_MAPS["tnews"])
    assert all(isinstance(e, ClueClassificationExample) for e in examples)
    labels = ["102", "100", "116"]
    path = str(tmp_path / "tnews11_predict.json")
    assert write_clue_classification_submission([e.record_id for e in examples], labels, path) == 3
    with open(path, encoding="utf-8") as f:
        assert f.read() == ('{"id": 0, "label": "102"}\n{"id": 1, "label": "100"}\n{"id": 2, "label": "116"}\n')
    with pytest.raises(ValueError, match="submission id 1 appears twice"):
        write_clue_classification_submission([1, 1], ["0", "1"], path)
    with pytest.raises(ValueError, match="id 1: label 1 is not a label string"):
        write_clue_classification_submission([0, 1], ["0", 1], path)


def test_cluener_example_is_a_ner_example_carrying_its_id():
    example = CluenerExample("f:1", list("张三"), ["B-name", "I-name"], "x")
    assert example.text == "张三" and example.record_id == "x" and isinstance(example, NerExample)
