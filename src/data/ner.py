"""Named-entity data: ERNIE's ``\\x02`` TSV or CoNLL-style BIO files -> token features (each character tokenized on
its own, ERNIE's way), and predicted token tags back to character tags and entity spans."""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..assessment_method import get_entities
from ..progress import progress
from .common import (InputError, ReaderStats, check_has_rows, log_skip, pad_rows, read_lines, split_tsv_row,
                     tsv_column_names)


@dataclass
class NerExample:
    guid: str                 # "PATH:LINE" of the sentence's first line
    chars: list               # one item per labelled character (a "char" may be several code points, e.g. emoji)
    tags: Optional[list]      # one tag per char; None for unlabeled files


@dataclass
class NerAlignment:
    """Where the chars of one NER example went in its feature row."""
    chars: list
    token_to_char: list       # per sequence position from [CLS] to [SEP]: index into chars, -1 for [CLS]/[SEP]


def _parse_ner_tags(path, lineno, chars, tags, label_map):
    if len(chars) != len(tags):
        raise InputError(f"{path}:{lineno}: {len(chars)} characters but {len(tags)} tags")
    for i, (char, tag) in enumerate(zip(chars, tags)):
        if not char:
            raise InputError(f"{path}:{lineno}: empty character at position {i}")
        if label_map is not None and tag not in label_map:
            raise InputError(f"{path}:{lineno}: tag {tag!r} (position {i}) is not in the label map "
                             f"{sorted(label_map)}")


def _read_ner_tsv(path, lines, label_map, columns, skip_bad_examples, stats):
    """ERNIE's layout: text_a and label hold the chars and tags of one sentence, each joined by "\\x02"."""
    names, first_data_line = tsv_column_names(path, lines[0], columns)
    check_has_rows(path, names, first_data_line, lines)
    examples = []
    for lineno, line in enumerate(lines[first_data_line:], first_data_line + 1):
        try:
            row = split_tsv_row(path, lineno, line, names)
            chars = row["text_a"].split("\x02")
            tags = row["label"].split("\x02") if "label" in row else None
            if tags is None:
                if not all(chars):
                    raise InputError(f"{path}:{lineno}: empty character in text_a")
            else:
                _parse_ner_tags(path, lineno, chars, tags, label_map)
        except InputError as e:
            if not skip_bad_examples:
                raise
            log_skip(e, stats)
            continue
        stats.unlabeled += tags is None
        examples.append(NerExample(f"{path}:{lineno}", chars, tags))
    return examples


def _read_ner_conll(path, lines, label_map, skip_bad_examples, stats):
    """One ``char<TAB>tag`` or ``char<SPACE>tag`` per line, a blank line after each sentence."""
    examples = []
    sentence = []  # (lineno, line) of the current sentence
    for lineno, line in enumerate(lines + [""], 1):
        if line.strip():
            sentence.append((lineno, line))
            continue
        if not sentence:
            continue
        first_lineno = sentence[0][0]
        try:
            chars, tags = [], []
            for item_lineno, item in sentence:
                parts = item.split("\t") if "\t" in item else item.split(" ")
                if len(parts) != 2 or not parts[0] or not parts[1]:
                    raise InputError(f"{path}:{item_lineno}: expected 'char<TAB>tag' or 'char tag', got {item!r}")
                if label_map is not None and parts[1] not in label_map:
                    raise InputError(f"{path}:{item_lineno}: tag {parts[1]!r} is not in the label map "
                                     f"{sorted(label_map)}")
                chars.append(parts[0])
                tags.append(parts[1])
            examples.append(NerExample(f"{path}:{first_lineno}", chars, tags))
        except InputError as e:
            if not skip_bad_examples:
                raise
            log_skip(e, stats)
        sentence = []
    return examples


def read_ner_file(path, label_map=None, skip_bad_examples=False, stats=None, columns=None):
    """Sentences of an NER file; the layout is detected from the first line.

    ERNIE TSV (a ``text_a`` header, or ``\\x02`` in the first line; headerless files need ``columns``, e.g.
    ``("qid", "text_a", "label")``) or CoNLL-style BIO (``char<TAB or space>tag`` lines, blank line between
    sentences). With ``label_map`` every tag must be one of its keys.
    """
    stats = stats if stats is not None else ReaderStats()
    lines = read_lines(path)
    first_line = next(line for line in lines if line.strip())
    if "\x02" in first_line or "text_a" in first_line.split("\t"):
        examples = _read_ner_tsv(path, lines, label_map, columns, skip_bad_examples, stats)
    elif columns is not None:
        raise InputError(f"{path}:1: columns={columns} given, but the file is not ERNIE's \\x02 TSV layout")
    else:
        examples = _read_ner_conll(path, lines, label_map, skip_bad_examples, stats)
    stats.read += len(examples)
    return examples


def _continuation_tag(tag, label_map):
    """Tag for the 2nd, 3rd... token of a char that WordPiece splits: B-X continues as I-X, others repeat."""
    if tag.startswith("B-"):
        inside = "I-" + tag[2:]
        if inside not in label_map:
            raise InputError(f"label map has {tag!r} but not {inside!r}, needed for chars split into several tokens")
        return inside
    return tag


def convert_ner_examples(examples, tokenizer, max_seq_len, label_map, stats=None):
    """Token features of NER examples, each char tokenized on its own (ERNIE's way).

    Returns int32 columns input_ids, input_mask, segment_ids (all 0), label_ids [N, S] and one ``NerAlignment`` per
    example. [CLS], [SEP] and padding are labelled "O"; unlabeled examples get label -1 everywhere. Chars that
    produce no token, or fall past max_seq_len, are absent from the alignment and predicted "O".
    """
    if "O" not in label_map:
        raise InputError(f"NER label map {sorted(label_map)} has no 'O' tag")
    stats = stats if stats is not None else ReaderStats()
    outside_id = label_map["O"]
    char_token_ids = {}  # char -> its token ids; the same few thousand chars recur
    input_ids, label_ids, alignments = [], [], []
    for example in progress(examples, "tokenising", unit="sentence"):
        ids, labels, token_to_char = [], [], []
        for char_index, char in enumerate(example.chars):
            if char not in char_token_ids:
                char_token_ids[char] = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(char))
            token_ids = char_token_ids[char]
            stats.no_token_chars += not token_ids
            ids.extend(token_ids)
            token_to_char.extend([char_index] * len(token_ids))
            if example.tags is not None and token_ids:
                tag = example.tags[char_index]
                if tag not in label_map:
                    raise InputError(f"{example.guid}: tag {tag!r} (char {char_index}) is not in the label map "
                                     f"{sorted(label_map)}")
                labels.append(label_map[tag])
                labels.extend([label_map[_continuation_tag(tag, label_map)]] * (len(token_ids) - 1))
        if len(ids) > max_seq_len - 2:
            stats.truncated += 1
            del ids[max_seq_len - 2:], labels[max_seq_len - 2:], token_to_char[max_seq_len - 2:]
        input_ids.append([tokenizer.cls_token_id] + ids + [tokenizer.sep_token_id])
        if example.tags is None:
            label_ids.append([-1] * max_seq_len)
        else:
            label_ids.append([outside_id] + labels + [outside_id] * (max_seq_len - len(labels) - 1))
        alignments.append(NerAlignment(example.chars, [-1] + token_to_char + [-1]))
    columns = {
        "input_ids": pad_rows(input_ids, max_seq_len),
        "input_mask": pad_rows([[1] * len(ids) for ids in input_ids], max_seq_len),
        "segment_ids": np.zeros((len(input_ids), max_seq_len), dtype=np.int32),
        "label_ids": np.array(label_ids, dtype=np.int32).reshape(-1, max_seq_len),
    }
    return columns, alignments


def ner_tags_from_token_predictions(alignment, token_tag_ids, id_to_label):
    """Char-level tags from one row of predicted token tag ids: a char takes the tag of its first token; chars
    without a token (whitespace, control, truncated) get "O". ``id_to_label`` is a list or dict id -> tag."""
    tags = ["O"] * len(alignment.chars)
    previous = -1
    for position, char_index in enumerate(alignment.token_to_char):
        if char_index >= 0 and char_index != previous:
            tags[char_index] = id_to_label[int(token_tag_ids[position])]
        previous = char_index
    return tags


def entities_from_tags(chars, tags):
    """Tags -> [(type, start, end)] with character offsets into ``"".join(chars)``, chunked exactly as the entity F1
    counts them (``assessment_method.get_entities``: BIO, IOBES; an I-X without an open X entity starts one)."""
    starts = np.cumsum([0] + [len(c) for c in chars])
    return [(kind, int(starts[first]), int(starts[last + 1])) for kind, first, last in get_entities(tags)]
