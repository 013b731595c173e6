"""Sentence and sentence-pair classification data: TSV files as ERNIE publishes them -> ``[CLS] a [SEP] (b [SEP])``
int32 feature columns (input_ids, input_mask, segment_ids, label_ids, qids)."""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..progress import progress
from .common import (InputError, ReaderStats, check_has_rows, log_skip, pad_rows, read_lines, split_tsv_row,
                     tsv_column_names)


@dataclass
class ClassificationExample:
    guid: str                 # "PATH:LINE"
    text_a: str
    text_b: Optional[str]
    label: Optional[str]      # the label string as in the file; None for unlabeled files
    qid: Optional[str]        # DBQA question id (answers of one question are ranked together for MRR)


def read_classification_file(path, label_map=None, columns=None, skip_bad_examples=False, stats=None):
    """Rows of a classification TSV (columns text_a, optional text_b, label, qid; others are ignored).

    With ``label_map`` every label must be one of its keys; without, labels stay unchecked strings.
    """
    stats = stats if stats is not None else ReaderStats()
    lines = read_lines(path)
    names, first_data_line = tsv_column_names(path, lines[0], columns)
    check_has_rows(path, names, first_data_line, lines)
    examples, seen_rows = [], set()
    for lineno, line in enumerate(lines[first_data_line:], first_data_line + 1):
        try:
            row = split_tsv_row(path, lineno, line, names)
            if not row["text_a"].strip():
                raise InputError(f"{path}:{lineno}: empty text_a")
            if "text_b" in row and not row["text_b"].strip():
                raise InputError(f"{path}:{lineno}: empty text_b")
            label = row.get("label")
            if label is not None and label_map is not None and label not in label_map:
                raise InputError(f"{path}:{lineno}: label {label!r} is not in the label map {sorted(label_map)}")
        except InputError as e:
            if not skip_bad_examples:
                raise
            log_skip(e, stats)
            continue
        if line in seen_rows:
            stats.duplicates += 1
        seen_rows.add(line)
        stats.unlabeled += label is None
        examples.append(ClassificationExample(f"{path}:{lineno}", row["text_a"], row.get("text_b"), label,
                                              row.get("qid")))
    stats.read += len(examples)
    return examples


def convert_classification_examples(examples, tokenizer, max_seq_len, label_map, stats=None):
    """``[CLS] a [SEP] (b [SEP])`` features; int32 columns input_ids, input_mask, segment_ids [N, S], label_ids
    [N] (-1 when unlabeled) and qids [N] (dense ids of the string qids in order of appearance, -1 when absent)."""
    stats = stats if stats is not None else ReaderStats()
    input_ids, segment_ids, label_ids, qids = [], [], [], []
    qid_index = {}
    for example in progress(examples, "tokenising", unit="example"):
        encoded = tokenizer.encode(example.text_a, example.text_b, max_seq_len=max_seq_len)
        stats.truncated += bool(encoded["truncated"])
        input_ids.append(encoded["input_ids"])
        segment_ids.append(encoded["segment_ids"])
        if example.label is None:
            label_ids.append(-1)
        elif example.label in label_map:
            label_ids.append(label_map[example.label])
        else:
            raise InputError(f"{example.guid}: label {example.label!r} is not in the label map {sorted(label_map)}")
        if example.qid is None:
            qids.append(-1)
        else:
            qids.append(qid_index.setdefault(example.qid, len(qid_index)))
    return {
        "input_ids": pad_rows(input_ids, max_seq_len),
        "input_mask": pad_rows([[1] * len(ids) for ids in input_ids], max_seq_len),
        "segment_ids": pad_rows(segment_ids, max_seq_len),
        "label_ids": np.array(label_ids, dtype=np.int32).reshape(-1),
        "qids": np.array(qids, dtype=np.int32).reshape(-1),
    }
