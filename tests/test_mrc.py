"""MRC: SQuAD-style reading with answer repair, sliding-window features, n-best answer extraction.

Fixture tests use tests/fixtures/mrc_squad.json and tiny_vocab.txt (every CJK character is one token, so token
indices equal character indices there). Tests marked `real_data` use CMRC2018 and DRCD from <repo>/../shared/data.
"""
import collections
import json
import os
import re

import numpy as np
import pytest

from src.data.common import InputError, ReaderStats
from src.data.mindrecord import read_mindrecord_columns
from src.data.mrc import FIRST_UNIQUE_ID, MrcExample, convert_mrc_examples, extract_answers, read_mrc_file
from src.finetune_task_reader import convert as main
from src.tokenizer import ErnieTokenizer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TINY_VOCAB = os.path.join(FIXTURES, "tiny_vocab.txt")
SQUAD = os.path.join(FIXTURES, "mrc_squad.json")
EDGE = "token span differs from the answer text (whitespace or a token edge)"
CONTEXT = "北京是中华人民共和国的首都，也是全国的政治中心。北京有故宫和长城。"


@pytest.fixture(scope="module")
def tokenizer():
    return ErnieTokenizer(TINY_VOCAB)


def write_squad(tmp_path, qas, context=CONTEXT):
    path = tmp_path / "squad.json"
    data = {"version": "v1.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return str(path)


def one_hot_logits(columns, positions_from):
    """Start/end logits of 10 at the given positions of every row, 0 elsewhere."""
    start = np.zeros(columns["input_ids"].shape, np.float32)
    end = np.zeros_like(start)
    rows = np.arange(len(start))
    start[rows, positions_from["start_positions"]] = 10
    end[rows, positions_from["end_positions"]] = 10
    return start, end


# ---------------------------------------------------------------- reading

def test_read_fixture_and_repair_answer_starts():
    stats = ReaderStats()
    examples = read_mrc_file(SQUAD, is_training=False, stats=stats)
    assert [e.qas_id for e in examples] == ["Q1", "Q2", "Q3", "Q4"]
    assert examples[0].context == CONTEXT and examples[0].question == "中国的首都是哪里？"
    # Q2: answer_start -1 -> the only occurrence; Q3: 22 is off -> nearest of the occurrences 0 and 24
    assert examples[1].answers == [{"text": "故宫和长城", "answer_start": CONTEXT.index("故宫和长城")}]
    assert examples[2].answers == [{"text": "北京", "answer_start": 24}, {"text": "北京", "answer_start": 24}]
    assert (stats.read, stats.answer_repaired, stats.answer_not_in_context) == (4, 2, 0)
    for example in examples:
        for answer in example.answers:
            start = answer["answer_start"]
            assert example.context[start:start + len(answer["text"])] == answer["text"]


def test_answer_not_in_context(tmp_path):
    qas = [{"question": "首都？", "id": "ok", "answers": [{"text": "北京", "answer_start": 0}]},
           {"question": "名胜？", "id": "bad", "answers": [{"text": "天安门", "answer_start": 5},
                                                          {"text": "故宫", "answer_start": 27}]}]
    path = write_squad(tmp_path, qas)
    line = 22
    assert '"id": "bad"' in open(path, encoding="utf-8").read().split("\n")[line - 1]
    # training needs the first answer: an error naming file, line and question id
    with pytest.raises(InputError, match="^" + re.escape(f"{path}:{line}: question bad: answer text '天安门' does not "
                                                         "occur in the context")):
        read_mrc_file(path, is_training=True)
    stats = ReaderStats()
    assert [e.qas_id for e in read_mrc_file(path, True, skip_bad_examples=True, stats=stats)] == ["ok"]
    assert (stats.read, stats.skipped_bad) == (1, 1)
    # evaluation keeps it as a scoring reference (CMRC2018 dev has 193 such answers)
    stats = ReaderStats()
    examples = read_mrc_file(path, is_training=False, stats=stats)
    assert examples[1].answers == [{"text": "天安门", "answer_start": -1}, {"text": "故宫", "answer_start": 27}]
    assert (stats.read, stats.answer_not_in_context) == (2, 1)


@pytest.mark.parametrize("qas, message", [
    ([{"question": "", "id": "q1", "answers": [{"text": "北京", "answer_start": 0}]}], "question q1: empty or missing question"),
    ([{"question": "首都？", "id": "q1", "answers": []}], "question q1: no answer (training needs one)"),
    ([{"question": "首都？", "id": "q1", "answers": [{"text": "北京"}]}], "question q1: answer 0 needs a non-empty"),
    ([{"question": "首都？", "id": "q1", "answers": [{"text": "北京", "answer_start": 0}]},
      {"question": "首都?", "id": "q1", "answers": [{"text": "北京", "answer_start": 0}]}], "question q1: duplicate"),
    ([{"question": "首都？", "answers": [{"text": "北京", "answer_start": 0}]}], "question (no id): missing 'id'"),
])
def test_bad_questions(tmp_path, qas, message):
    path = write_squad(tmp_path, qas)
    with pytest.raises(InputError, match=re.escape(message)) as error:
        read_mrc_file(path, is_training=True)
    assert str(error.value).startswith(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.json:2:19: not valid JSON"):
        read_mrc_file(str(path), is_training=False)


# ---------------------------------------------------------------- features

def test_sliding_windows_and_max_context(tokenizer):
    example = MrcExample("q", "哪里有故宫？", CONTEXT, [{"text": "故宫和长城", "answer_start": 27}])
    stats = ReaderStats()
    columns, features = convert_mrc_examples([example], tokenizer, 20, 64, 4, True, stats)
    # 33 context tokens, 20 - 6 (question) - 3 = 11 per window, step 4, until a window reaches the end
    assert [(f.token_spans[0][0], len(f.token_spans)) for f in features] == [
        (0, 11), (4, 11), (8, 11), (12, 11), (16, 11), (20, 11), (24, 9)]
    assert [f.unique_id for f in features] == list(range(FIRST_UNIQUE_ID, FIRST_UNIQUE_ID + 7))
    assert columns["unique_ids"].tolist() == [f.unique_id for f in features]
    assert columns["input_ids"][6].tolist() == tokenizer.convert_tokens_to_ids(
        ["[CLS]", *"哪里有故宫？", "[SEP]", *CONTEXT[24:], "[SEP]"]) + [0] * 2
    assert columns["segment_ids"][6].tolist() == [0] * 8 + [1] * 10 + [0] * 2
    assert columns["input_mask"][6].tolist() == [1] * 18 + [0] * 2
    # The answer (chars 27..31) is whole only in the last window: positions 8 + 27 - 24 = 11 .. 15
    assert columns["start_positions"].tolist() == [0] * 6 + [11]
    assert columns["end_positions"].tolist() == [0] * 6 + [15]
    assert (stats.windows, stats.answer_outside_window) == (7, 6)
    # Each token is scored in exactly one window: where min(left, right) + 0.01 * length is largest (BERT)
    for token in range(33):
        scores = {}
        for f in features:
            start, length = f.token_spans[0][0], len(f.token_spans)
            if start <= token < start + length:
                scores[f.window_index] = min(token - start, start + length - 1 - token) + 0.01 * length
        chosen = [f.window_index for f in features if f.token_spans[0][0] <= token < f.token_spans[0][0] + len(
            f.token_spans) and f.token_is_max_context[token - f.token_spans[0][0]]]
        assert chosen == [max(scores, key=lambda w: (scores[w], -w))], token
    assert [f.token_is_max_context[10 - f.token_spans[0][0]] for f in features[:3]] == [False, True, False]


def test_query_truncation_and_token_offsets(tokenizer):
    examples = read_mrc_file(SQUAD, is_training=True)
    stats = ReaderStats()
    columns, features = convert_mrc_examples(examples, tokenizer, 40, 3, 128, True, stats)
    assert stats.query_truncated == 4  # every fixture question is longer than 3 tokens
    assert columns["segment_ids"][0, :5].tolist() == [0] * 5 and columns["segment_ids"][0, 5] == 1
    # "DRCD 是台达..." : the Latin word and the number are single tokens whose offsets skip the spaces
    drcd = features[3]
    context = examples[3].context
    assert [context[s:e] for s, e in drcd.token_spans[:6]] == ["DRCD", "是", "台", "达", "阅", "读"]
    start, end = columns["start_positions"][3], columns["end_positions"][3]
    first = drcd.context_start
    answer = context[drcd.token_spans[start - first][0]:drcd.token_spans[end - first][1]]
    assert answer == "30,000 多个" == examples[3].answers[0]["text"]


def test_answer_inside_a_token_is_widened_and_counted(tokenizer):
    example = MrcExample("q", "多少？", "包含30,000个", [{"text": "0,0", "answer_start": 3}])
    stats = ReaderStats()
    columns, [feature] = convert_mrc_examples([example], tokenizer, 32, 8, 8, True, stats)
    start, end = columns["start_positions"][0] - 5, columns["end_positions"][0] - 5
    assert example.context[feature.token_spans[start][0]:feature.token_spans[end][1]] == "30,000"
    assert stats.answer_not_token_aligned == 1


# ---------------------------------------------------------------- answers

def test_one_hot_gold_logits_give_the_gold_text(tokenizer):
    examples = read_mrc_file(SQUAD, is_training=True)
    columns, features = convert_mrc_examples(examples, tokenizer, 24, 64, 4, True)
    predictions, nbest = extract_answers(examples, features, *one_hot_logits(columns, columns))
    assert predictions == {e.qas_id: e.answers[0]["text"] for e in examples}
    for entries in nbest.values():
        assert abs(sum(e["probability"] for e in entries) - 1) < 1e-6
        assert [e["start_logit"] + e["end_logit"] for e in entries] == sorted(
            (e["start_logit"] + e["end_logit"] for e in entries), reverse=True)
        assert len({e["text"] for e in entries}) == len(entries) <= 20
        assert set(entries[0]) == {"text", "start", "end", "probability", "start_logit", "end_logit"}


def test_invalid_spans_are_skipped(tokenizer):
    example = MrcExample("q", "哪里有故宫？", CONTEXT, [{"text": "故宫和长城", "answer_start": 27}])
    columns, features = convert_mrc_examples([example], tokenizer, 20, 64, 4, False)
    shape = columns["input_ids"].shape
    first = features[0].context_start  # 8

    def predict(feature_index, start, end, max_answer_len=100):
        start_logits, end_logits = np.zeros(shape), np.zeros(shape)
        start_logits[feature_index, start] = end_logits[feature_index, end] = 10
        predictions, nbest = extract_answers([example], features, start_logits, end_logits, n_best_size=1,
                                             max_answer_len=max_answer_len)
        return predictions["q"], nbest["q"][0]

    assert predict(1, first + 6, first + 8)[0] == CONTEXT[10:13]   # token 10 is max-context in window 1
    # Spans that are not allowed give way to the best allowed one among the context tokens (never "", never a
    # span outside the context): the start is not max-context in window 0; the end comes before the start; the
    # span lies in the question; it is longer than max_answer_len.
    for args in ((0, first + 10, first + 10), (1, first + 8, first + 6), (1, first + 2, first + 1), (1, 1, 3),
                 (1, first + 6, first + 8, 2)):
        text, entry = predict(*args)
        assert text and text == CONTEXT[entry["start"]:entry["end"]] and text != CONTEXT[10:13]
    text, entry = predict(1, first + 6, first + 8, max_answer_len=3)
    assert (text, entry["start"], entry["end"], entry["probability"]) == (CONTEXT[10:13], 10, 13, 1.0)


def test_extract_answers_checks_logit_rows(tokenizer):
    examples = read_mrc_file(SQUAD, is_training=False)
    columns, features = convert_mrc_examples(examples, tokenizer, 24, 64, 4, False)
    with pytest.raises(ValueError, match="features but"):
        extract_answers(examples, features[1:], np.zeros((len(features) - 1, 24)), np.zeros((len(features), 24)))


def test_cli_mrc(tmp_path):
    out = str(tmp_path / "train.mindrecord")
    main(["--task_type", "cmrc", "--vocab_path", TINY_VOCAB, "--max_seq_len", "24", "--max_query_len", "8",
          "--doc_stride", "4", "--input_file", SQUAD, "--output_file", out, "--is_training", "true"])
    written = read_mindrecord_columns(out)
    assert sorted(written) == ["end_positions", "input_ids", "input_mask", "segment_ids", "start_positions",
                               "unique_ids"]
    out = str(tmp_path / "dev.mindrecord")
    main(["--task_type", "drcd", "--vocab_path", TINY_VOCAB, "--max_seq_len", "24", "--input_file", SQUAD,
          "--output_file", out])
    assert sorted(read_mindrecord_columns(out)) == ["input_ids", "input_mask", "segment_ids", "unique_ids"]


# ---------------------------------------------------------------- real data

MRC_FILES = [  # path, questions, answers, repaired answer_starts, answers not in their context (SOURCE.md)
    ("cmrc2018/cmrc2018_dev.json", 3219, 9657, 7, 193),
    ("drcd/DRCD_dev.json", 3524, 7048, 0, 0),
    ("drcd/DRCD_test.json", 3493, 6986, 0, 0),
    ("drcd/ernie_simplified/dev.json", 3524, 7048, 0, 0),
    ("drcd/ernie_simplified/test.json", 3493, 6986, 0, 0),
]


@pytest.mark.real_data
def test_real_mrc_counts(shared_data):
    for name, questions, answers, repaired, not_in_context in MRC_FILES:
        stats = ReaderStats()
        examples = read_mrc_file(os.path.join(shared_data, name), is_training=False, stats=stats)
        assert (len(examples), sum(len(e.answers) for e in examples)) == (questions, answers), name
        # SOURCE.md: 200 of CMRC dev's 9,657 answer_starts are wrong; 193 of them (all -1) belong to answers
        # that are not in the context at all, the other 7 are found by their text
        assert (stats.answer_repaired, stats.answer_not_in_context) == (repaired, not_in_context), name
    # the trial file has 2 questions with an empty question text: bad input, reported with file and line
    stats = ReaderStats()
    path = os.path.join(shared_data, "cmrc2018/cmrc2018_trial.json")
    with pytest.raises(InputError, match=r"cmrc2018_trial.json:9738: question TRIAL_776_QUERY_4: empty"):
        read_mrc_file(path, is_training=True)
    examples = read_mrc_file(path, is_training=True, skip_bad_examples=True, stats=stats)
    assert (len(examples), stats.skipped_bad, stats.answer_repaired) == (1000, 2, 5)  # SOURCE.md: 5 of 1,002 off


def check_training_features(examples, columns, features, stats, max_answer_len):
    """Every window holding the answer maps back to the answer text; one-hot gold logits give it back."""
    widened, holding = set(), collections.defaultdict(list)
    for row, feature in enumerate(features):
        start, end = columns["start_positions"][row], columns["end_positions"][row]
        if start == 0:
            assert end == 0
            continue
        example = examples[feature.example_index]
        text = example.answers[0]["text"]
        first = feature.context_start
        found = example.context[feature.token_spans[start - first][0]:feature.token_spans[end - first][1]]
        # tokens drop surrounding whitespace, and a span edge inside a token widens to the whole token
        assert found == text or found == text.strip() or text.strip() in found, (example.qas_id, text, found)
        if found != text:
            widened.add(feature.example_index)
        holding[feature.example_index].append((feature, start, end))
    assert len(widened) == stats.answer_not_token_aligned

    predictions, _ = extract_answers(examples, features, *one_hot_logits(columns, columns),
                                     max_answer_len=max_answer_len)
    exceptions = collections.Counter()
    for example_index, example in enumerate(examples):
        text = example.answers[0]["text"]
        scored = [(f, s, e) for f, s, e in holding[example_index] if f.token_is_max_context[s - f.context_start]]
        if predictions[example.qas_id] == text:
            continue
        if not holding[example_index]:
            exceptions["no window holds the whole answer"] += 1
        elif not scored:
            exceptions["its start is scored in a window that cuts the answer"] += 1
        elif scored[0][2] - scored[0][1] + 1 > max_answer_len:
            exceptions["longer than max_answer_len"] += 1
        else:
            f, s, e = scored[0]
            found = example.context[f.token_spans[s - f.context_start][0]:f.token_spans[e - f.context_start][1]]
            assert predictions[example.qas_id] == found, example.qas_id
            exceptions[EDGE] += 1
    return exceptions


@pytest.mark.real_data
def test_real_training_features_and_answer_extraction(shared_data, ernie_vocab):
    tokenizer = ErnieTokenizer(ernie_vocab)
    trial = os.path.join(shared_data, "cmrc2018/cmrc2018_trial.json")
    examples = read_mrc_file(trial, is_training=True, skip_bad_examples=True)
    long_answers = sum(len(tokenizer.tokenize(e.answers[0]["text"])) > 100 for e in examples)
    spaced_answers = sum(e.answers[0]["text"] != e.answers[0]["text"].strip() for e in examples)
    assert (long_answers, spaced_answers) == (34, 3)
    for max_seq_len, doc_stride, expected_exceptions in [
        # ERNIE's setting: only the answers longer than max_answer_len, and the 3 with a space at an edge
        (512, 128, {"longer than max_answer_len": long_answers, EDGE: spaced_answers}),
        # short windows (about 110 context tokens, step 32): answers of 60-110 tokens fit no window, or start
        # near a window's centre with their end past it (BERT's max-context rule)
        (128, 32, {"no window holds the whole answer": 45, "its start is scored in a window that cuts the answer": 78,
                   EDGE: 2}),
    ]:
        stats = ReaderStats()
        columns, features = convert_mrc_examples(examples, tokenizer, max_seq_len, 64, doc_stride, True, stats)
        assert (stats.answer_not_token_aligned, len(features)) == (spaced_answers, stats.windows)
        assert check_training_features(examples, columns, features, stats, 100) == expected_exceptions
    # CMRC dev read for training: every first answer is in its context (the 193 that are not are later
    # references); one answer, "4个" inside "34个", widens to its token
    stats = ReaderStats()
    dev = read_mrc_file(os.path.join(shared_data, "cmrc2018/cmrc2018_dev.json"), True, True, stats)
    columns, features = convert_mrc_examples(dev, tokenizer, 512, 64, 128, True, stats)
    exceptions = check_training_features(dev, columns, features, stats, 100)
    assert (len(dev), stats.skipped_bad, stats.answer_not_token_aligned, exceptions) == (3219, 0, 1, {EDGE: 1})


@pytest.mark.real_data
def test_real_windows_match_hugging_face(shared_data, ernie_vocab):
    """Windows, ids and context offsets equal HF's overflowing-token windows (an independent implementation;
    HF's ``stride`` is the overlap, i.e. window length - doc_stride)."""
    from transformers import BertTokenizer
    from src.tokenizer import load_vocab
    tokenizer = ErnieTokenizer(ernie_vocab)
    hf_tokenizer = BertTokenizer(vocab=load_vocab(ernie_vocab), do_lower_case=True)
    for name in ("cmrc2018/cmrc2018_dev.json", "drcd/DRCD_dev.json"):
        examples = read_mrc_file(os.path.join(shared_data, name), is_training=False)[:150]
        columns, features = convert_mrc_examples(examples, tokenizer, 128, 64, 32, False)
        rows_of = collections.defaultdict(list)
        for row, feature in enumerate(features):
            rows_of[feature.example_index].append(row)
        for example_index, example in enumerate(examples):
            window_len = 128 - len(hf_tokenizer.tokenize(example.question)) - 3
            encoded = hf_tokenizer(example.question, example.context, truncation="only_second", max_length=128,
                                   stride=window_len - 32, return_overflowing_tokens=True,
                                   return_offsets_mapping=True, padding="max_length")
            rows = rows_of[example_index]
            assert len(rows) == len(encoded["input_ids"]), example.qas_id
            for window, row in enumerate(rows):
                assert columns["input_ids"][row].tolist() == encoded["input_ids"][window], example.qas_id
                assert columns["segment_ids"][row].tolist() == encoded["token_type_ids"][window], example.qas_id
                hf_spans = [tuple(offset) for offset, sequence in zip(encoded["offset_mapping"][window],
                                                                      encoded.sequence_ids(window)) if sequence == 1]
                assert features[row].token_spans == hf_spans, example.qas_id


# ---------------------------------------------------------------- questions without text or reference answer

def test_questions_without_text_or_reference_are_scored_like_the_official_script(tmp_path, tokenizer):
    """Evaluation keeps a question with empty text and one without a reference answer, and both stay in the
    denominator. The official cmrc2018_evaluate.py scores a question's EM 0 when it has no answers (its F1 would be
    max([]), which stops it): ours counts 0 for both; the other questions score as its transcription does."""
    from test_assessment_method import official_evaluate  # the transcription of the official script
    from src import assessment_method as am
    qas = [{"question": "", "id": "q_empty", "answers": [{"text": "北京", "answer_start": 0}]},
           {"question": "哪里有故宫？", "id": "q_none", "answers": []},
           {"question": "首都是哪里？", "id": "q_ok", "answers": [{"text": "北京", "answer_start": 0}]}]
    path = write_squad(tmp_path, qas)
    with pytest.raises(InputError, match="q_empty: empty or missing question"):
        read_mrc_file(path, is_training=True)
    stats = ReaderStats()
    examples = read_mrc_file(path, is_training=False, stats=stats)
    assert [e.qas_id for e in examples] == ["q_empty", "q_none", "q_ok"]
    assert (stats.read, stats.empty_question, stats.no_reference_answer) == (3, 1, 1)
    columns, features = convert_mrc_examples(examples, tokenizer, 48, 16, 16, False)
    assert columns["input_ids"][0][:2].tolist() == [tokenizer.cls_token_id, tokenizer.sep_token_id]  # no question
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2,) + columns["input_ids"].shape)
    predictions, _ = extract_answers(examples, features, logits[0], logits[1])
    predictions["q_ok"] = "北京"
    scores = am.cmrc_evaluate(path, predictions)
    assert (scores["total"], scores["skipped"], scores["no_reference"]) == (3, 0, 1)
    with open(path, encoding="utf-8") as f:
        gold = json.load(f)
    without_empty_list = {"data": [{"paragraphs": [{"context": CONTEXT, "qas": [qas[0], qas[2]]}]}]}
    f1, em, total, _ = official_evaluate(without_empty_list, predictions, am._word_tokenize)
    # the official sums over the two questions it can score, divided by all three
    assert scores["exact_match"] == pytest.approx(em * total / 3, abs=1e-9)
    assert scores["f1"] == pytest.approx(f1 * total / 3, abs=1e-9)
    assert gold["data"][0]["paragraphs"][0]["qas"][1]["answers"] == []


@pytest.mark.real_data
def test_cmrc2018_trial_scores_all_1002_questions(shared_data):
    """CMRC2018 trial has two questions with empty text: evaluation reads, encodes and scores all 1,002."""
    from test_assessment_method import official_evaluate
    from src import assessment_method as am
    path = os.path.join(shared_data, "cmrc2018", "cmrc2018_trial.json")
    vocab = os.path.join(shared_data, "ernie_1.0", "vocab.txt")
    if not (os.path.isfile(path) and os.path.isfile(vocab)):
        pytest.skip(f"{path} or {vocab} is absent")
    stats = ReaderStats()
    examples = read_mrc_file(path, is_training=False, stats=stats)
    assert (len(examples), stats.empty_question, stats.skipped_bad) == (1002, 2, 0)
    columns, features = convert_mrc_examples(examples, ErnieTokenizer(vocab), 128, 64, 128, False)
    logits = np.random.default_rng(0).normal(size=(2,) + columns["input_ids"].shape)
    predictions, _ = extract_answers(examples, features, logits[0], logits[1])
    assert len(predictions) == 1002
    scores = am.cmrc_evaluate(path, predictions)
    assert (scores["total"], scores["skipped"], scores["no_reference"]) == (1002, 0, 0)
    with open(path, encoding="utf-8") as f:
        f1, em, total, skipped = official_evaluate(json.load(f), predictions, am._word_tokenize)
    assert (total, skipped) == (1002, 0)
    assert (scores["exact_match"], scores["f1"]) == (pytest.approx(em, abs=1e-9), pytest.approx(f1, abs=1e-9))
