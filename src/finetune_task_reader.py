"""Fine-tuning data readers: classification TSV, NER (ERNIE `\\x02` TSV or CoNLL BIO), MindRecord writer.

Readers keep the files exactly as published (ERNIE's task_data layout): a header row names the TSV columns; files
without one need ``columns=(...)``. Bad rows raise ``InputError("PATH:LINE: ...")``; with ``skip_bad_examples`` they
are logged, counted in ``ReaderStats`` and left out. Converters turn examples into int32 numpy columns padded to
``max_seq_len``, the in-memory form that ``src.dataset`` batches and ``write_mindrecord`` stores.

CLI (like the model-zoo converter)::

    python -m src.finetune_task_reader --task_type xnli --vocab_path vocab.txt --max_seq_len 512 \\
        --input_file dev.tsv --output_file dev.mindrecord --is_training false
"""
import argparse
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np

from .assessment_method import get_entities
from .cli import str2bool
from .fileio import read_json

logger = logging.getLogger(__name__)

DEFAULT_LABEL_MAPS = {
    "chnsenticorp": {"0": 0, "1": 1},
    "dbqa": {"0": 0, "1": 1},
    "lcqmc": {"0": 0, "1": 1},
    # "contradictory" is the spelling of the XNLI-MT train file; ERNIE's label_map.json maps both.
    "xnli": {"contradiction": 0, "contradictory": 0, "entailment": 1, "neutral": 2},
    "msra_ner": {"B-PER": 0, "I-PER": 1, "B-ORG": 2, "I-ORG": 3, "B-LOC": 4, "I-LOC": 5, "O": 6},
}
CLASSIFICATION_TASKS = ("chnsenticorp", "xnli", "dbqa", "lcqmc")
MRC_TASKS = ("drcd", "cmrc")


class InputError(ValueError):
    """Bad input data; the message reads ``PATH:LINE: what is wrong``."""


@dataclass
class ReaderStats:
    """What the readers and converters met; pass one object through a whole pipeline and log ``summary()``."""
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
    answer_not_token_aligned: int = 0  # MRC training answers whose tokens cover other text: surrounding whitespace
    #                                    dropped, or an edge inside a token widened to the whole token

    def summary(self):
        counts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                  if f.name == "read" or getattr(self, f.name)]
        return " ".join(counts)


@dataclass
class ClassificationExample:
    guid: str                 # "PATH:LINE"
    text_a: str
    text_b: Optional[str]
    label: Optional[str]      # the label string as in the file; None for unlabeled files
    qid: Optional[str]        # DBQA question id (answers of one question are ranked together for MRR)


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

    def char_offsets(self):
        """(start, end) of every char in ``"".join(chars)``."""
        offsets, start = [], 0
        for char in self.chars:
            offsets.append((start, start + len(char)))
            start += len(char)
        return offsets


def read_label_map(path):
    """A label map JSON (``{"label": id}``), as ERNIE's ``label_map.json``."""
    try:
        with open(path, encoding="utf-8") as f:
            label_map = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(label_map, dict) or not label_map:
        raise InputError(f"{path}:1: expected a non-empty JSON object mapping label -> id")
    for label, label_id in label_map.items():
        if not isinstance(label_id, int) or isinstance(label_id, bool) or label_id < 0:
            raise InputError(f"{path}:1: label {label!r} has id {label_id!r}, expected an integer >= 0")
    return label_map


def _read_lines(path):
    """Lines of a UTF-8 text file, split on "\\n" only (a stray "\\r" inside a field stays), BOM and CRLF removed."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{path}:{lineno}: not valid UTF-8 ({e.reason})") from None
    if not text.strip():
        raise InputError(f"{path}:1: file is empty")
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _column_names(path, first_line, columns):
    """(column names, index of the first data line): a header row names the columns, else ``columns`` must."""
    header = first_line.split("\t")
    if "text_a" in header:
        if columns is not None and tuple(columns) != tuple(header):
            raise InputError(f"{path}:1: header {header} differs from the given columns {list(columns)}")
        names, first_data_line = header, 1
    elif columns is None:
        raise InputError(f"{path}:1: first line is not a header (no 'text_a' column): pass the column names, "
                         f"e.g. columns=('text_a', 'text_b', 'label')")
    else:
        names, first_data_line = list(columns), 0
    if "text_a" not in names or len(set(names)) != len(names):
        raise InputError(f"{path}:1: columns {names} must name 'text_a' once and have no duplicates")
    return names, first_data_line


def _split_row(path, lineno, line, names):
    row = line.split("\t")
    if len(row) != len(names):
        raise InputError(f"{path}:{lineno}: expected {len(names)} tab-separated columns {names}, found {len(row)}")
    return dict(zip(names, row))


def _log_skip(error, stats):
    logger.warning("skipped bad example: %s", error)
    stats.skipped_bad += 1


def read_classification_file(path, label_map=None, columns=None, skip_bad_examples=False, stats=None):
    """Rows of a classification TSV (columns text_a, optional text_b, label, qid; others are ignored).

    With ``label_map`` every label must be one of its keys; without, labels stay unchecked strings.
    """
    stats = stats if stats is not None else ReaderStats()
    lines = _read_lines(path)
    names, first_data_line = _column_names(path, lines[0], columns)
    examples, seen_rows = [], set()
    for lineno, line in enumerate(lines[first_data_line:], first_data_line + 1):
        try:
            row = _split_row(path, lineno, line, names)
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
            _log_skip(e, stats)
            continue
        if line in seen_rows:
            stats.duplicates += 1
        seen_rows.add(line)
        stats.unlabeled += label is None
        examples.append(ClassificationExample(f"{path}:{lineno}", row["text_a"], row.get("text_b"), label,
                                              row.get("qid")))
    stats.read += len(examples)
    return examples


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
    names, first_data_line = _column_names(path, lines[0], columns)
    examples = []
    for lineno, line in enumerate(lines[first_data_line:], first_data_line + 1):
        try:
            row = _split_row(path, lineno, line, names)
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
            _log_skip(e, stats)
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
            _log_skip(e, stats)
        sentence = []
    return examples


def read_ner_file(path, label_map=None, skip_bad_examples=False, stats=None, columns=None):
    """Sentences of an NER file; the layout is detected from the first line.

    ERNIE TSV (a ``text_a`` header, or ``\\x02`` in the first line; headerless files need ``columns``, e.g.
    ``("qid", "text_a", "label")``) or CoNLL-style BIO (``char<TAB or space>tag`` lines, blank line between
    sentences). With ``label_map`` every tag must be one of its keys.
    """
    stats = stats if stats is not None else ReaderStats()
    lines = _read_lines(path)
    first_line = next(line for line in lines if line.strip())
    if "\x02" in first_line or "text_a" in first_line.split("\t"):
        examples = _read_ner_tsv(path, lines, label_map, columns, skip_bad_examples, stats)
    elif columns is not None:
        raise InputError(f"{path}:1: columns={columns} given, but the file is not ERNIE's \\x02 TSV layout")
    else:
        examples = _read_ner_conll(path, lines, label_map, skip_bad_examples, stats)
    stats.read += len(examples)
    return examples


def pad_rows(rows, max_seq_len):
    """int32 [len(rows), max_seq_len], zero-padded."""
    out = np.zeros((len(rows), max_seq_len), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def convert_classification_examples(examples, tokenizer, max_seq_len, label_map, stats=None):
    """``[CLS] a [SEP] (b [SEP])`` features; int32 columns input_ids, input_mask, segment_ids [N, S], label_ids
    [N] (-1 when unlabeled) and qids [N] (dense ids of the string qids in order of appearance, -1 when absent)."""
    stats = stats if stats is not None else ReaderStats()
    input_ids, segment_ids, label_ids, qids = [], [], [], []
    qid_index = {}
    for example in examples:
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
    for example in examples:
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


def write_mindrecord(columns, path, shard_num=1):
    """Writes int32 columns ([N, S] -> fields of shape [-1], [N] -> scalar fields) to MindRecord.

    A MindRecord file stores its own name, so the files are written under their final names in a temporary folder
    beside ``path`` and moved into place when complete. ``shard_num`` > 1 writes ``path0``, ``path1``, ...
    """
    from mindspore.mindrecord import FileWriter  # importing mindspore takes seconds; the readers do not need it

    arrays = {name: np.asarray(column) for name, column in columns.items()}
    num_rows = {len(a) for a in arrays.values()}
    if len(num_rows) != 1 or 0 in num_rows:
        shapes = {name: array.shape for name, array in arrays.items()}
        raise ValueError(f"columns must be non-empty and of equal length, got {shapes}")
    schema = {}
    for name, array in arrays.items():
        if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"column {name!r}: expected a 1-D or 2-D integer array, got {array.dtype} {array.shape}")
        arrays[name] = array.astype(np.int32)
        schema[name] = {"type": "int32", "shape": [-1]} if array.ndim == 2 else {"type": "int32"}
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-mindrecord-", dir=out_dir)
    try:
        writer = FileWriter(os.path.join(tmp_dir, os.path.basename(path)), shard_num=shard_num, overwrite=True)
        writer.add_schema(schema, "ernie_finetune")
        total = num_rows.pop()
        for start in range(0, total, 1000):
            writer.write_raw_data([{name: array[i] for name, array in arrays.items()}
                                   for i in range(start, min(start + 1000, total))])
        writer.commit()
        for name in sorted(os.listdir(tmp_dir), key=lambda n: n.endswith(".db")):  # data files first, then indexes
            os.replace(os.path.join(tmp_dir, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def check_schema(schema_path, columns, source):
    """Raises InputError when ``columns`` lack one that the schema JSON (``{"columns": [...]}`` or names) lists."""
    schema = read_json(schema_path)
    missing = sorted(set(schema.get("columns", schema)) - set(columns))
    if missing:
        raise InputError(f"{source}: lacks the columns {missing} named in {schema_path}")


def mindrecord_files(path):
    """The data files of a MindRecord file, its shards (``path0``, ``path1``...) or a directory of them."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path)
                       if ".mindrecord" in n and not n.endswith(".db") and not n.startswith("."))
    elif os.path.isfile(path):
        return [path]
    else:
        pattern = re.compile(re.escape(os.path.basename(path)) + r"[0-9]+")
        folder = os.path.dirname(path) or "."
        files = sorted((os.path.join(folder, n) for n in os.listdir(folder) if pattern.fullmatch(n)),
                       key=lambda f: int(f[len(path):])) if os.path.isdir(folder) else []
    if not files:
        raise FileNotFoundError(f"{path}: no MindRecord file (or shards {path}0, {path}1 ...) found")
    return files


def read_mindrecord_columns(path):
    """All rows, in file order, of MindRecord data (a file, the shards ``path0``, ``path1``... that
    ``write_mindrecord`` writes, or a directory of them) as int32 columns."""
    from mindspore.mindrecord import FileReader

    reader = FileReader(mindrecord_files(path), num_consumer=1)
    try:
        rows = list(reader.get_next())
    finally:
        reader.close()
    if not rows:
        raise InputError(f"{path}:1: no records")
    # MindRecord hands scalar int32 fields back as int64; every column was written as int32
    return {name: np.stack([np.asarray(row[name]) for row in rows]).astype(np.int32) for name in rows[0]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Convert an ERNIE fine-tuning file to MindRecord.")
    parser.add_argument("--task_type", required=True, choices=CLASSIFICATION_TASKS + ("msra_ner",) + MRC_TASKS)
    parser.add_argument("--vocab_path", required=True)
    parser.add_argument("--label_map_config", default="", help="label_map.json; default: DEFAULT_LABEL_MAPS[task]")
    parser.add_argument("--max_seq_len", type=int, default=128)
    parser.add_argument("--max_query_len", type=int, default=64)
    parser.add_argument("--doc_stride", type=int, default=128)
    parser.add_argument("--do_lower_case", type=str2bool, default=True)
    parser.add_argument("--input_file", required=True)
    parser.add_argument("--output_file", required=True)
    parser.add_argument("--shard_num", type=int, default=1)
    parser.add_argument("--is_training", type=str2bool, default=False)
    parser.add_argument("--columns", default="",
                        help="comma-separated column names for TSV files without a header, e.g. text_a,text_b,label")
    parser.add_argument("--skip_bad_examples", action="store_true",
                        help="log, count and leave out bad examples instead of stopping at the first")
    return parser.parse_args(argv)


def main(argv=None):
    from . import mrc  # mrc imports this module
    from .tokenizer import ErnieTokenizer

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tokenizer = ErnieTokenizer(args.vocab_path, do_lower_case=args.do_lower_case)
    columns = tuple(args.columns.split(",")) if args.columns else None
    stats = ReaderStats()
    if args.task_type in MRC_TASKS:
        examples = mrc.read_mrc_file(args.input_file, args.is_training, args.skip_bad_examples, stats)
        features, _ = mrc.convert_mrc_examples(examples, tokenizer, args.max_seq_len, args.max_query_len,
                                               args.doc_stride, args.is_training, stats)
    else:
        label_map = (read_label_map(args.label_map_config) if args.label_map_config
                     else DEFAULT_LABEL_MAPS[args.task_type])
        if args.task_type == "msra_ner":
            examples = read_ner_file(args.input_file, label_map, args.skip_bad_examples, stats, columns)
            features, _ = convert_ner_examples(examples, tokenizer, args.max_seq_len, label_map, stats)
        else:
            examples = read_classification_file(args.input_file, label_map, columns, args.skip_bad_examples, stats)
            features = convert_classification_examples(examples, tokenizer, args.max_seq_len, label_map, stats)
            if args.task_type != "dbqa":
                del features["qids"]
    write_mindrecord(features, args.output_file, args.shard_num)
    logger.info("%s -> %s: %d records; %s", args.input_file, args.output_file, len(features["input_ids"]),
                stats.summary())


if __name__ == "__main__":
    main()
