"""The floor of the data readers: input errors, the one line reader, skip-and-count, label maps, padding.

Readers keep files exactly as published. Bad input raises ``InputError("PATH:LINE: what is wrong")``; with
``skip_bad_examples`` a reader logs the error, counts it (``ReaderStats.skipped_bad``) and leaves the example out.
"""
import gzip
import logging
import os
from dataclasses import dataclass, fields

import numpy as np

from ..fileio import read_json

logger = logging.getLogger(__name__)


class InputError(ValueError):
    """Bad input data; the message reads ``PATH:LINE: what is wrong``."""


class Stats:
    """Counts of what a reader met; ``summary()`` goes to the log: ``always_shown`` always, other counts when not 0."""
    always_shown = "read"

    def summary(self):
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                        if f.name == self.always_shown or (getattr(self, f.name) and isinstance(getattr(self, f.name), int)))


@dataclass
class ReaderStats(Stats):
    """What the fine-tuning readers and converters met; pass one object through a whole pipeline."""
    read: int = 0                     # examples (rows, sentences, questions) read
    skipped_bad: int = 0              # bad examples left out (only with skip_bad_examples)
    duplicates: int = 0               # rows identical to an earlier row of the same file (kept)
    unlabeled: int = 0                # examples without a label (test files)
    truncated: int = 0                # examples cut to max_seq_len
    no_token_chars: int = 0           # NER chars that produce no token (whitespace, control); predicted "O"
    query_truncated: int = 0          # MRC questions cut to max_query_len
    windows: int = 0                  # MRC features (context windows)
    answer_repaired: int = 0          # MRC answer_start values corrected by locating the answer text
    answer_not_in_context: int = 0    # MRC reference answers whose text is not in the context (kept for scoring)
    answer_outside_window: int = 0    # MRC training windows that do not contain the answer (labelled [CLS])
    empty_question: int = 0           # MRC evaluation questions with empty text (kept: CMRC2018 trial has two)
    no_reference_answer: int = 0      # MRC evaluation questions without a reference answer (kept, scored 0)
    answer_not_token_aligned: int = 0  # MRC training answers whose tokens cover other text: surrounding whitespace
    #                                    dropped, or an edge inside a token widened to the whole token


def read_label_map(path):
    """A label map JSON (``{"label": id}``), as ERNIE's ``label_map.json``."""
    try:
        label_map = read_json(path)
    except ValueError as err:
        raise InputError(str(err)) from None
    if not isinstance(label_map, dict) or not label_map:
        raise InputError(f"{path}:1: expected a non-empty JSON object mapping label -> id")
    for label, label_id in label_map.items():
        if not isinstance(label_id, int) or isinstance(label_id, bool) or label_id < 0:
            raise InputError(f"{path}:1: label {label!r} has id {label_id!r}, expected an integer >= 0")
    return label_map


def read_lines(path):
    """All lines of a text file (``iter_lines``) as a list; an empty file is an error."""
    lines = [line for _, line in iter_lines(path)]
    while lines and not lines[-1].strip():  # blank lines at the end of a file are an editor's, not an example
        lines.pop()
    if not lines:
        raise InputError(f"{path}:1: file is empty")
    return lines


def is_json_lines(path):
    """Files in a JSON-lines layout (the CLUE benchmark's ``.json``) rather than TSV or CoNLL."""
    return str(path).endswith((".json", ".jsonl"))


def tsv_column_names(path, first_line, columns):
    """(column names, index of the first data line): a header row names the columns, else ``columns`` must."""
    header = first_line.split("\t")
    if "text_a" in header:
        if columns is not None and tuple(columns) != tuple(header):
            raise InputError(f"{path}:1: header {header} differs from the given columns {list(columns)}")
        names, first_data_line = header, 1
    elif columns is None:
        raise InputError(f"{path}:1: first line is not a header (no 'text_a' column): add a header row naming "
                         f"the columns, or pass --columns, e.g. --columns text_a,text_b,label")
    else:
        names, first_data_line = list(columns), 0
    if "text_a" not in names or len(set(names)) != len(names):
        raise InputError(f"{path}:1: columns {names} must name 'text_a' once and have no duplicates")
    return names, first_data_line


def split_tsv_row(path, lineno, line, names):
    row = line.split("\t")
    if len(row) != len(names):
        raise InputError(f"{path}:{lineno}: expected {len(names)} tab-separated columns {names}, found {len(row)}")
    return dict(zip(names, row))


def check_has_rows(path, names, first_data_line, lines):
    """A TSV with a header and nothing under it is an error that says so (not a later, unrelated one)."""
    if len(lines) <= first_data_line:
        raise InputError(f"{path}:1: no examples: the file has only the header line {names}")


def log_skip(error, stats):
    logger.warning("skipped bad example: %s", error)
    stats.skipped_bad += 1


def pad_rows(rows, max_seq_len):
    """int32 [len(rows), max_seq_len], zero-padded."""
    out = np.zeros((len(rows), max_seq_len), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out



def input_files(paths):
    """Files named by ``paths``; a directory contributes its files (recursively, sorted, hidden ones excluded)."""
    files = []
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: input file or directory not found")
    if not files:
        raise FileNotFoundError(f"{paths}: no input files")
    return files


def iter_lines(path):
    """``(line number, line)`` of a UTF-8 text file, gzip-compressed when it ends in ``.gz``: the one line reader of
    every data file. Lines split on "\\n" only (a stray "\\r" inside a TSV field stays), the line end ("\\n" or
    "\\r\\n") and a leading BOM removed; bad UTF-8 or a cut gzip stream raises ``InputError`` naming the line."""
    opener = gzip.open if path.endswith(".gz") else open
    lineno = 0
    with opener(path, "rb") as f:
        try:
            for lineno, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
                line = line.removesuffix("\n").removesuffix("\r")
                yield lineno, line.removeprefix("\ufeff") if lineno == 1 else line
        except (gzip.BadGzipFile, EOFError) as e:
            raise InputError(f"{path}:{lineno + 1}: not a complete gzip file ({e})") from None
