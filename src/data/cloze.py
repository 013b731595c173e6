"""Entity cloze: the ERNIE 1.0 paper's knowledge probe as a number.

In held-out text with known named entities, each entity occurrence becomes one item: its sentence as
``[CLS] sentence [SEP]`` with every token of that one entity replaced by [MASK] (the other entities stay visible).
A masked-LM model predicts the masked tokens (argmax at the masked positions); the score is

- ``cloze_char_accuracy``: restored tokens / masked tokens, over all items (an entity's characters are its tokens:
  CJK characters are one token each);
- ``cloze_entity_exact``: items whose every token is restored / items;
- ``cloze_entities``: items scored, ``cloze_chars``: masked tokens scored.

Entities come from People's Daily style ``word/tag`` text (``nr*`` person, ``ns`` place, ``nt`` organisation;
consecutive words of one type are one entity, as the pre-training reader's entity level: 江/nr 泽民/nr) or from
BIO-tagged characters (MSRA NER: ``char<TAB>tag`` lines, chunked as the entity F1 chunks them). An entity with an
[UNK] token is left out (restoring [UNK] says nothing) and counted, as is one longer than the sequence allows; a
sentence longer than ``max_seq_len`` is cut to a window of it that contains the entity (counted).

Running a model on the items is ``src/cloze.py`` (also its CLI); ``run_ernie_pretrain.py --eval_data`` reports the
score beside MLM accuracy.
"""
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..assessment_method import get_entities
from .common import InputError, input_files, iter_lines
from .knowledge import entity_type, tagged_words
from .ner import read_ner_file

logger = logging.getLogger(__name__)

CLOZE_FORMATS = ("tagged", "bio")


@dataclass
class ClozeItem:
    """One entity occurrence: ``input_ids`` (``[CLS] ... [SEP]``, unpadded) with the entity's tokens masked."""
    input_ids: list
    masked_positions: list  # ascending positions in input_ids
    original_ids: list      # the entity's token ids at those positions
    entity: str             # the entity's text
    entity_type: str        # PER / LOC / ORG (or the BIO file's type names)


# ---------------------------------------------------------------------------------------------------------------
# Sentences with entity units: [(word, entity)] where entity is (occurrence key, type) or None

def pos_entity_words(words):
    """``[(word, tag)]`` People's Daily style -> ``[(word, (key, type) | None)]``: consecutive words of one entity
    type share a key (one entity)."""
    units, key, previous = [], -1, None
    for word, tag in words:
        this_type = entity_type(tag)
        if this_type is not None and this_type != previous:
            key += 1
        units.append((word, (key, this_type) if this_type is not None else None))
        previous = this_type
    return units


def bio_entity_words(chars, tags):
    """Characters and their BIO tags -> ``[(char, (key, type) | None)]``, entities chunked by ``get_entities``."""
    if len(chars) != len(tags):
        raise ValueError(f"{len(chars)} characters but {len(tags)} tags")
    units = [(char, None) for char in chars]
    for key, (kind, first, last) in enumerate(get_entities(tags)):
        for index in range(first, last + 1):
            units[index] = (chars[index], (key, kind))
    return units


def read_cloze_sentences(paths, data_format):
    """Sentences ``[(word, (key, type) | None)]`` of held-out files: ``tagged`` (``word/tag`` items, one sentence or
    paragraph a line, blank lines ignored) or ``bio`` (``char<TAB>tag`` lines, a blank line between sentences, or
    ERNIE's ``\\x02`` TSV)."""
    if data_format not in CLOZE_FORMATS:
        raise ValueError(f"unknown cloze data format {data_format!r}: choose one of {CLOZE_FORMATS}")
    sentences = []
    for path in input_files(paths):
        if data_format == "tagged":
            for lineno, line in iter_lines(path):
                if line.strip():
                    sentences.append(pos_entity_words(tagged_words(line, f"{path}:{lineno}")))
        else:
            sentences += [bio_entity_words(example.chars, example.tags) for example in read_ner_file(path)
                          if example.tags is not None]
    if not sentences:
        raise InputError(f"{paths}:1: no sentences")
    return sentences


def _as_sentences(documents_or_sentences):
    """Flattens documents (lists of sentences) to sentences; a sentence is a list of ``(word, x)`` pairs."""
    for item in documents_or_sentences:
        if item and isinstance(item[0], (list, tuple)) and item[0] and not isinstance(item[0][0], str):
            yield from item
        else:
            yield item


# ---------------------------------------------------------------------------------------------------------------
# Items

def entity_cloze_items(documents_or_sentences, tokenizer, max_seq_len, tag_scheme="units", stats=None):
    """One ``ClozeItem`` per entity occurrence.

    ``documents_or_sentences``: sentences, or documents (lists of sentences); a sentence is ``[(word, tag)]`` with
    People's Daily tags (``tag_scheme="pos"``), ``[(char, BIO tag)]`` (``"bio"``), or already
    ``[(word, (key, type) | None)]`` (``"units"``, what ``read_cloze_sentences`` returns). Words are tokenized one at a
    time, as the pre-training reader does. ``stats`` (a ``Counter``) receives ``sentences``, ``entities``, ``items``,
    ``skipped_unknown_token``, ``skipped_no_token``, ``skipped_too_long`` and ``windowed``.
    """
    if max_seq_len < 3:
        raise ValueError(f"max_seq_len must be at least 3 ([CLS] entity [SEP]), got {max_seq_len}")
    if tag_scheme not in ("units", "pos", "bio"):
        raise ValueError(f"unknown tag_scheme {tag_scheme!r}: choose units, pos or bio")
    stats = stats if stats is not None else Counter()
    room = max_seq_len - 2
    items = []
    for sentence in _as_sentences(documents_or_sentences):
        if tag_scheme == "pos":
            sentence = pos_entity_words(sentence)
        elif tag_scheme == "bio":
            sentence = bio_entity_words([w for w, _ in sentence], [t for _, t in sentence])
        stats["sentences"] += 1
        token_ids, spans, texts = [], {}, {}  # spans: key -> token positions (0-based, without [CLS])
        for word, entity in sentence:
            ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
            if entity is not None:
                spans.setdefault(entity, []).extend(range(len(token_ids), len(token_ids) + len(ids)))
                texts[entity] = texts.get(entity, "") + word
            token_ids += ids
        for entity, positions in spans.items():
            stats["entities"] += 1
            if not positions:
                stats["skipped_no_token"] += 1
                continue
            if any(token_ids[p] == tokenizer.unk_token_id for p in positions):
                stats["skipped_unknown_token"] += 1
                continue
            first, last = positions[0], positions[-1]
            if last - first + 1 > room:
                stats["skipped_too_long"] += 1
                continue
            start = 0
            if len(token_ids) > room:  # a window of the sentence centred on the entity
                stats["windowed"] += 1
                start = min(max(0, (first + last + 1) // 2 - room // 2), len(token_ids) - room)
            window = token_ids[start:start + room]
            masked = [p - start + 1 for p in positions]
            input_ids = [tokenizer.cls_token_id] + window + [tokenizer.sep_token_id]
            original = [input_ids[p] for p in masked]
            for p in masked:
                input_ids[p] = tokenizer.mask_token_id
            items.append(ClozeItem(input_ids, masked, original, texts[entity], entity[1]))
    stats["items"] += len(items)
    return items


def cloze_columns(items, max_seq_len=None):
    """Items as padded model inputs: input_ids, segment_ids, input_mask ``[N, S]`` and masked_lm_positions
    ``[N, P]`` (int32; P the longest entity, padding positions point at [CLS] and are not scored)."""
    if not items:
        raise ValueError("no cloze items")
    seq_len = max_seq_len or max(len(item.input_ids) for item in items)
    predictions = max(len(item.masked_positions) for item in items)
    columns = {"input_ids": np.zeros((len(items), seq_len), np.int32),
               "segment_ids": np.zeros((len(items), seq_len), np.int32),
               "input_mask": np.zeros((len(items), seq_len), np.int32),
               "masked_lm_positions": np.zeros((len(items), predictions), np.int32)}
    for row, item in enumerate(items):
        if len(item.input_ids) > seq_len:
            raise ValueError(f"cloze item {row} has {len(item.input_ids)} tokens, more than {seq_len}")
        columns["input_ids"][row, :len(item.input_ids)] = item.input_ids
        columns["input_mask"][row, :len(item.input_ids)] = 1
        columns["masked_lm_positions"][row, :len(item.masked_positions)] = item.masked_positions
    return columns


# ---------------------------------------------------------------------------------------------------------------
# Scoring

def score_entity_cloze(predicted_ids_per_item, items):
    """``{"cloze_char_accuracy", "cloze_entity_exact", "cloze_entities", "cloze_chars"}`` from the predicted ids at
    each item's masked positions (one sequence per item, as long as its ``original_ids``)."""
    predicted_ids_per_item = list(predicted_ids_per_item)
    if len(predicted_ids_per_item) != len(items):
        raise ValueError(f"{len(predicted_ids_per_item)} predictions for {len(items)} cloze items")
    correct_chars = chars = exact = 0
    for index, (predicted, item) in enumerate(zip(predicted_ids_per_item, items)):
        predicted = [int(p) for p in predicted]
        if len(predicted) != len(item.original_ids):
            raise ValueError(f"cloze item {index} ({item.entity}): {len(predicted)} predicted ids for "
                             f"{len(item.original_ids)} masked tokens")
        hits = sum(p == o for p, o in zip(predicted, item.original_ids))
        correct_chars += hits
        chars += len(predicted)
        exact += hits == len(predicted)
    return {"cloze_char_accuracy": correct_chars / chars if chars else 0.0,
            "cloze_entity_exact": exact / len(items) if items else 0.0,
            "cloze_entities": len(items), "cloze_chars": chars}
