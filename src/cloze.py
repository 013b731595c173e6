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

CLI (scores a pre-training checkpoint)::

    python -m src.cloze --checkpoint output/pretrain/ernie-1_3000.ckpt --input heldout.tagged.txt \\
        --data_format tagged [--max_seq_len 128] [--json out.json]
"""
import argparse
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .assessment_method import get_entities
from .finetune_task_reader import InputError, read_ner_file
from .pretraining_reader import entity_type, input_files, read_lines, tagged_words

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
        kind = entity_type(tag)
        if kind is not None and kind != previous:
            key += 1
        units.append((word, (key, kind) if kind is not None else None))
        previous = kind
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
            for lineno, line in read_lines(path):
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


def predict_entity_cloze(model, items, batch_size=32, max_seq_len=None):
    """Argmax ids at each item's masked positions from ``model(input_ids, token_type_ids, attention_mask,
    masked_lm_positions)`` -> ``(mlm_logits [B, P, vocab], ...)`` (``ErnieForPretraining``), in inference mode."""
    from mindspore import Tensor

    from .dataset import eval_batches
    columns = cloze_columns(items, max_seq_len)
    names = ("input_ids", "segment_ids", "input_mask", "masked_lm_positions")
    was_training = getattr(model, "training", False)
    if hasattr(model, "set_train"):
        model.set_train(False)
    predicted, start = [], 0
    try:
        for real_rows, batch in eval_batches(columns, names, batch_size):
            outputs = model(*(Tensor(array) for array in batch))
            mlm_logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
            argmax = np.asarray(mlm_logits.asnumpy() if hasattr(mlm_logits, "asnumpy") else mlm_logits).argmax(-1)
            for row in range(real_rows):
                predicted.append(argmax[row, :len(items[start + row].masked_positions)].tolist())
            start += real_rows
    finally:
        if hasattr(model, "set_train"):
            model.set_train(was_training)
    return predicted


def run_entity_cloze(model, items, batch_size=32, max_seq_len=None):
    """Scores ``model`` (an ``ErnieForPretraining``) on the cloze ``items``: ``score_entity_cloze``'s dict."""
    return score_entity_cloze(predict_entity_cloze(model, items, batch_size, max_seq_len), items)


def evaluate_entity_cloze(model, eval_source, tokenizer, data_format="tagged", max_seq_len=128, batch_size=32,
                          items=None):
    """Reads held-out files (``read_cloze_sentences``), builds the items and scores ``model``; pass ``items`` from an
    earlier call to skip reading again. Returns ``(scores, items)``."""
    if items is None:
        stats = Counter()
        items = entity_cloze_items(read_cloze_sentences(eval_source, data_format), tokenizer, max_seq_len,
                                   stats=stats)
        logger.info("entity cloze data %s: %s", eval_source, " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
        if not items:
            raise InputError(f"{eval_source}:1: no entity with known tokens to score")
    return run_entity_cloze(model, items, batch_size, max_seq_len), items


# ---------------------------------------------------------------------------------------------------------------
# CLI

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Entity cloze accuracy of a pre-training checkpoint.")
    add = parser.add_argument
    add("--checkpoint", required=True, help="ErnieForPretraining .ckpt (ernie_config.json, vocab.txt beside it)")
    add("--input", nargs="+", required=True, help="held-out files or directories with entity tags")
    add("--data_format", default="tagged", choices=CLOZE_FORMATS)
    add("--config", default="", help="ernie_config.json or preset (default: beside the checkpoint)")
    add("--vocab_file", default="", help="default: vocab.txt beside the checkpoint")
    add("--max_seq_len", type=int, default=128)
    add("--batch_size", type=int, default=64)
    add("--device_target", default="auto", choices=["auto", "Ascend", "GPU", "CPU"])
    add("--json", default="", help="also write the scores here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .checkpoint import load_weights, log_report
    from .cli import model_config_and_tokenizer
    from .heads import ErnieForPretraining
    from .runtime import init_runtime
    device_target = init_runtime(args.device_target, None, 0)
    try:
        config, _, tokenizer = model_config_and_tokenizer(args.config, args.vocab_file, args.checkpoint, None,
                                                          device_target, "--vocab_file")
        model = ErnieForPretraining(config)
        log_report(load_weights(model, args.checkpoint), args.checkpoint, model)
        scores, _ = evaluate_entity_cloze(model, args.input, tokenizer, args.data_format, args.max_seq_len,
                                          args.batch_size)
    except (InputError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print("cloze " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in scores.items()),
          flush=True)
    if args.json:
        from .fileio import write_json
        write_json(scores, args.json)
    return scores


if __name__ == "__main__":
    main()
