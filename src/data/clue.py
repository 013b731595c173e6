"""CLUE benchmark files: CLUENER2020 NER and CLUE classification (TNEWS, IFLYTEK, AFQMC) JSON lines, their
submission files, and CLUENER's official entity score.

Readers turn each JSON line into the project's examples (``NerExample`` with BIO tags, ``ClassificationExample``),
so the usual feature conversion (``convert_ner_examples``, ``convert_classification_examples``) applies. As the
other readers do, a bad line raises ``InputError("PATH:LINE: ...")``, or with ``skip_bad_examples`` is logged,
counted in ``ReaderStats.skipped_bad`` and left out. A UTF-8 BOM, CRLF line ends and blank lines are accepted.

Every record keeps its submission id: the file's ``"id"`` (CLUE test files have one), else the record's 0-based
position among the file's non-blank lines (skipped lines keep their positions, so ids stay aligned with the file).

Labels of CLUE classification come from a label map given by the caller, never from the data: CLUE ships
``labels.json`` for TNEWS and IFLYTEK (``read_clue_labels_file``), and ``CLUE_CLASSIFICATION_LABEL_MAPS`` holds the
same maps for TNEWS, IFLYTEK and AFQMC. A map inferred from a training file would change its ids whenever a split
lacks a label, and the submission needs CLUE's label strings, not ids.

CLUENER scoring (``cluener_prf``) follows the official ``score.py`` of CLUEbenchmark/CLUENER2020 (read, not
copied): records are paired in file order; for each of the 10 types and each record, the *entity texts* (the keys
of ``label[type]``) are compared as sets, so spans are ignored and an entity text that occurs several times in a
record counts once (gold "台湾" at two places matched by one predicted "台湾" anywhere is one true positive, no miss).
TP/FP/FN are summed over records per type; per-type P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R); the overall
score is the unweighted mean of the 10 per-type F1 values (the leaderboard's "Overall@Macro"). Where the official
script divides by zero (a type without predictions, gold or true positives) this gives 0.0.
"""
import json
from dataclasses import dataclass
from typing import Union

from ..fileio import write_jsonl
from .classification import ClassificationExample
from .common import InputError, ReaderStats, log_skip, read_lines
from .ner import NerExample, entities_from_tags

CLUENER_TYPES = ("address", "book", "company", "game", "government", "movie", "name", "organization", "position",
                 "scene")
# B-/I- of each type, then O (as msra_ner's map): 21 labels
CLUENER_LABEL_MAP = {tag: label_id for label_id, tag in enumerate(
    [f"{prefix}-{entity_type}" for entity_type in CLUENER_TYPES for prefix in "BI"] + ["O"])}
# label strings as in CLUE's labels.json, ids in its order (TNEWS has no 105 and 111)
CLUE_CLASSIFICATION_LABEL_MAPS = {
    "tnews": {str(label): label_id for label_id, label in enumerate(
        label for label in range(100, 117) if label not in (105, 111))},
    "iflytek": {str(label): label for label in range(119)},
    "afqmc": {"0": 0, "1": 1},
}


@dataclass
class CluenerExample(NerExample):
    """A CLUENER record: one char per code point of its text (CLUENER's offsets count code points)."""
    record_id: Union[int, str, None] = None   # the submission id

    @property
    def text(self):
        return "".join(self.chars)


@dataclass
class ClueClassificationExample(ClassificationExample):
    record_id: Union[int, str, None] = None   # the submission id


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicate_keys(pairs):
    # json.loads keeps the last of repeated keys; a repeated entity or type would silently drop annotations
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _json_lines(path):
    """(0-based record index, line number, line) of each non-blank line."""
    index = 0
    for lineno, line in enumerate(read_lines(path), 1):
        if line.strip():
            yield index, lineno, line
            index += 1


def _load_object(where, line):
    try:
        record = json.loads(line, object_pairs_hook=_object_without_duplicate_keys)
    except _DuplicateKey as e:
        raise InputError(f"{where}: key {e.args[0]!r} appears twice in one object") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _record_id(where, record, index):
    record_id = record.get("id", index)
    if not (_is_int(record_id) or isinstance(record_id, str)):
        raise InputError(f"{where}: 'id' must be an integer or a string, got {record_id!r}")
    return record_id


def _text_field(where, record, key):
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        found = "missing" if key not in record else f"{value!r}"
        raise InputError(f"{where}: {key!r} must be a non-empty string, got {found}")
    return value


def _check_like_first(where, value, first, says):
    """``first`` is (value, line) of the file's first good record; ``says[value]`` describes a record's value."""
    if first is not None and value != first[0]:
        raise InputError(f"{where}: {says[value]}, but line {first[1]} (the first record) {says[first[0]]}")


_HAS_LABEL = {True: "has a 'label'", False: "has no 'label'"}
_LAYOUT = {"pair": "is a sentence pair ('sentence1', 'sentence2')", "single": "is a single 'sentence'"}


def _check_unique_id(where, record_id, id_lines):
    if record_id in id_lines:
        raise InputError(f"{where}: id {record_id!r} repeats line {id_lines[record_id]}")


def _check_unique_submission_ids(ids):
    seen = set()
    for record_id in ids:
        if not (_is_int(record_id) or isinstance(record_id, str)):
            raise ValueError(f"submission id {record_id!r} is not an integer or a string")
        if record_id in seen:
            raise ValueError(f"submission id {record_id!r} appears twice")
        seen.add(record_id)


# ---------------------------------------------------------------- CLUENER2020

def _label_spans(where, label):
    """(type, entity, start, end_inclusive) of every span of a CLUENER label object, its structure checked."""
    if not isinstance(label, dict):
        raise InputError(f"{where}: 'label' must be an object {{type: {{entity: [[start, end], ...]}}}}, "
                         f"got {type(label).__name__}")
    for entity_type, entities in label.items():
        if not entity_type:
            raise InputError(f"{where}: empty entity type")
        if not isinstance(entities, dict):
            raise InputError(f"{where}: label[{entity_type!r}] must be an object {{entity: [[start, end], ...]}}, "
                             f"got {type(entities).__name__}")
        for entity, positions in entities.items():
            if not entity:
                raise InputError(f"{where}: {entity_type}: empty entity text")
            if not isinstance(positions, list) or not positions:
                raise InputError(f"{where}: {entity_type}/{entity!r}: expected a non-empty list of [start, end], "
                                 f"got {positions!r}")
            for position in positions:
                if not (isinstance(position, list) and len(position) == 2 and all(map(_is_int, position))):
                    raise InputError(f"{where}: {entity_type}/{entity!r}: span {position!r} is not [start, end] "
                                     f"(two integers)")
                if not 0 <= position[0] <= position[1]:
                    raise InputError(f"{where}: {entity_type}/{entity!r}: span {position} is not 0 <= start <= end")
                yield entity_type, entity, position[0], position[1]


def _cluener_tags(where, text, label, label_map):
    """BIO tags of a CLUENER label object, its spans checked against the text and against each other."""
    spans = []
    for entity_type, entity, start, end in _label_spans(where, label):
        if label_map is not None and not {f"B-{entity_type}", f"I-{entity_type}"} <= label_map.keys():
            raise InputError(f"{where}: entity type {entity_type!r} is not in the label map (needs B-{entity_type} "
                             f"and I-{entity_type})")
        if end >= len(text):
            raise InputError(f"{where}: {entity_type}/{entity!r}: span [{start}, {end}] is outside the text (length "
                             f"{len(text)}; CLUENER's end is inclusive)")
        if text[start:end + 1] != entity:
            raise InputError(f"{where}: {entity_type}/{entity!r}: span [{start}, {end}] covers "
                             f"{text[start:end + 1]!r}, not the entity text")
        spans.append((start, end, entity_type, entity))
    spans.sort()
    for (start, end, entity_type, entity), following in zip(spans, spans[1:]):
        if following[0] <= end:
            raise InputError(f"{where}: spans overlap: {entity_type}/{entity!r} [{start}, {end}] and "
                             f"{following[2]}/{following[3]!r} [{following[0]}, {following[1]}]")
    tags = ["O"] * len(text)
    for start, end, entity_type, _ in spans:
        tags[start] = f"B-{entity_type}"
        tags[start + 1:end + 1] = [f"I-{entity_type}"] * (end - start)
    return tags


def read_cluener_file(path, label_map=None, skip_bad_examples=False, stats=None):
    """CLUENER2020 JSON lines ``{"id"?: ..., "text": ..., "label"?: {type: {entity: [[start, end], ...]}}}`` ->
    ``CluenerExample``s (a ``NerExample``: one char per code point, BIO tags; ``tags`` None in files without
    labels, i.e. test files).

    Checked per line: a valid JSON object without repeated keys; a non-empty string text; an integer or string id,
    unique in the file; a label in all records or in none; each span two integers inside the text (end inclusive)
    covering exactly its entity text; no overlapping spans, also across types; with ``label_map`` (e.g.
    ``CLUENER_LABEL_MAP``) every type has B-/I- tags in it. Other keys are ignored.
    """
    stats = stats if stats is not None else ReaderStats()
    examples, id_lines, first_labelled = [], {}, None
    for index, lineno, line in _json_lines(path):
        where = f"{path}:{lineno}"
        try:
            record = _load_object(where, line)
            text = _text_field(where, record, "text")
            record_id = _record_id(where, record, index)
            labelled = "label" in record
            _check_like_first(where, labelled, first_labelled, _HAS_LABEL)
            tags = _cluener_tags(where, text, record["label"], label_map) if labelled else None
            _check_unique_id(where, record_id, id_lines)
        except InputError as e:
            if not skip_bad_examples:
                raise
            log_skip(e, stats)
            continue
        first_labelled = first_labelled or (labelled, lineno)
        id_lines[record_id] = lineno
        stats.unlabeled += tags is None
        examples.append(CluenerExample(where, list(text), tags, record_id))
    stats.read += len(examples)
    return examples


def cluener_label(text, entities):
    """CLUENER's label object ``{type: {entity text: [[start, end_inclusive], ...]}}`` of entities
    ``[(type, start, end_exclusive)]`` (as ``entities_from_tags`` gives them) in ``text``; the spans of one entity
    text in order of appearance."""
    label = {}
    for entity_type, start, end in sorted(entities, key=lambda entity: (entity[1], entity[2])):
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entity {entity_type} [{start}, {end}) is outside the text (length {len(text)})")
        label.setdefault(entity_type, {}).setdefault(text[start:end], []).append([start, end - 1])
    return label


def cluener_gold_records(examples):
    """``[{"id", "label"}]`` of labelled ``CluenerExample``s, rebuilt from their tags: the gold side of
    ``cluener_prf``."""
    records = []
    for example in examples:
        if example.tags is None:
            raise ValueError(f"{example.guid}: no gold labels (a test file?)")
        records.append({"id": example.record_id,
                        "label": cluener_label(example.text, entities_from_tags(example.chars, example.tags))})
    return records


def write_clue_ner_submission(records, path):
    """Writes a CLUENER submission: one ``{"id": ..., "label": {type: {entity: [[start, end], ...]}}}`` line per
    ``(id, text, entities)`` record, entities ``[(type, start, end_exclusive)]`` as ``entities_from_tags`` gives
    them, ends written inclusive as CLUENER has them. Atomic. Returns the number of lines."""
    lines = [{"id": record_id, "label": cluener_label(text, entities)} for record_id, text, entities in records]
    _check_unique_submission_ids(line["id"] for line in lines)
    write_jsonl(lines, path)
    return len(lines)


def read_clue_ner_submission(path):
    """``[{"id", "label"}]`` of a CLUENER submission file, in file order (the predicted side of ``cluener_prf``).
    There is no text to check spans against: each must be ``[start, end]`` with as many characters as its entity."""
    records, id_lines = [], {}
    for index, lineno, line in _json_lines(path):
        where = f"{path}:{lineno}"
        record = _load_object(where, line)
        record_id = _record_id(where, record, index)
        _check_unique_id(where, record_id, id_lines)
        if "label" not in record:
            raise InputError(f"{where}: no 'label'")
        for entity_type, entity, start, end in _label_spans(where, record["label"]):
            if end - start + 1 != len(entity):
                raise InputError(f"{where}: {entity_type}/{entity!r}: span [{start}, {end}] has {end - start + 1} "
                                 f"characters, the entity {len(entity)}")
        id_lines[record_id] = lineno
        records.append({"id": record_id, "label": record["label"]})
    return records


def _divide(numerator, denominator):
    return numerator / denominator if denominator else 0.0


def _prf(tp, fp, fn):
    precision, recall = _divide(tp, tp + fp), _divide(tp, tp + fn)
    return {"precision": precision, "recall": recall, "f1": _divide(2 * precision * recall, precision + recall),
            "tp": tp, "fp": fp, "fn": fn}


def cluener_prf(gold_records, pred_records, types=CLUENER_TYPES):
    """CLUENER's official entity score of predicted against gold ``{"id"?, "label"}`` records, paired in order (see
    the module docstring: entity texts per record and type, spans ignored, repeats counted once).

    Returns ``macro_f1`` (the official overall score: the mean of the per-type F1 over all ``types``),
    ``precision``/``recall``/``f1`` micro-averaged (TP/FP/FN summed over the types; not an official number),
    ``tp``/``fp``/``fn`` and ``per_type`` {type: {precision, recall, f1, tp, fp, fn}}. Where both records of a pair
    have an id the ids must agree; a type outside ``types`` is an error (the official script would ignore it).
    """
    gold_records, pred_records = list(gold_records), list(pred_records)
    if len(gold_records) != len(pred_records):
        raise ValueError(f"{len(gold_records)} gold records but {len(pred_records)} predicted records")
    counts = {entity_type: [0, 0, 0] for entity_type in types}  # tp, fp, fn
    for n, (gold, pred) in enumerate(zip(gold_records, pred_records)):
        if "id" in gold and "id" in pred and gold["id"] != pred["id"]:
            raise ValueError(f"record {n}: gold id {gold['id']!r} but predicted id {pred['id']!r}")
        for side, record in (("gold", gold), ("predicted", pred)):
            label = record.get("label")
            if not isinstance(label, dict):
                raise ValueError(f"record {n}: {side} 'label' must be an object, got {label!r}")
            unknown = sorted(set(label) - set(types))
            if unknown:
                raise ValueError(f"record {n}: {side} entity types {unknown} are not among {list(types)}")
        for entity_type, count in counts.items():
            gold_texts, pred_texts = set(gold["label"].get(entity_type, {})), set(pred["label"].get(entity_type, {}))
            count[0] += len(pred_texts & gold_texts)
            count[1] += len(pred_texts - gold_texts)
            count[2] += len(gold_texts - pred_texts)
    per_type = {entity_type: _prf(*count) for entity_type, count in counts.items()}
    result = _prf(*(sum(count[i] for count in counts.values()) for i in range(3)))
    result["macro_f1"] = _divide(sum(scores["f1"] for scores in per_type.values()), len(per_type))
    result["per_type"] = per_type
    return result


# ---------------------------------------------------------------- CLUE classification

def read_clue_labels_file(path):
    """Label map ``{label string: id}`` of CLUE's ``labels.json`` (JSON lines ``{"label": "100", "label_desc":
    ...}``; IFLYTEK spells it ``label_des``), ids in file order."""
    label_map = {}
    for index, lineno, line in _json_lines(path):
        where = f"{path}:{lineno}"
        label = _label_string(where, _load_object(where, line))
        if label is None:
            raise InputError(f"{where}: no 'label'")
        if label in label_map:
            raise InputError(f"{where}: label {label!r} appears twice")
        label_map[label] = index
    return label_map


def _label_string(where, record):
    """The record's label as a string (CLUE writes strings; an integer is read as its decimal string); None if
    absent."""
    label = record.get("label")
    if label is None or isinstance(label, str) and label:
        return label
    if _is_int(label):
        return str(label)
    raise InputError(f"{where}: 'label' must be a non-empty string or an integer, got {label!r}")


def read_clue_classification_file(path, label_map, skip_bad_examples=False, stats=None):
    """CLUE classification JSON lines -> ``ClueClassificationExample``s (a ``ClassificationExample``).

    Single sentences (TNEWS, IFLYTEK: ``{"sentence": ..., "label": "102", "label_desc"?: ...}``) give text_a;
    pairs (AFQMC: ``{"sentence1": ..., "sentence2": ..., "label": "0"}``) give text_a and text_b; other keys
    (keywords, label_desc) are ignored. Test files have an ``"id"`` and no label (``label`` None). Checked per
    line: a valid JSON object; the same layout and the same labelled-ness as the first record; non-empty strings;
    a label among ``label_map``'s keys (``CLUE_CLASSIFICATION_LABEL_MAPS[task]`` or ``read_clue_labels_file``);
    an integer or string id, unique in the file.
    """
    if not label_map:
        raise ValueError("a CLUE label map is needed: CLUE_CLASSIFICATION_LABEL_MAPS[task] or "
                         "read_clue_labels_file(labels.json)")
    stats = stats if stats is not None else ReaderStats()
    examples, id_lines, first_layout, first_labelled = [], {}, None, None
    for index, lineno, line in _json_lines(path):
        where = f"{path}:{lineno}"
        try:
            record = _load_object(where, line)
            layout = "pair" if "sentence1" in record or "sentence2" in record else "single"
            _check_like_first(where, layout, first_layout, _LAYOUT)
            if layout == "pair":
                text_a, text_b = _text_field(where, record, "sentence1"), _text_field(where, record, "sentence2")
            else:
                text_a, text_b = _text_field(where, record, "sentence"), None
            label = _label_string(where, record)
            _check_like_first(where, label is not None, first_labelled, _HAS_LABEL)
            if label is not None and label not in label_map:
                raise InputError(f"{where}: label {label!r} is not in the label map {sorted(label_map)}")
            record_id = _record_id(where, record, index)
            _check_unique_id(where, record_id, id_lines)
        except InputError as e:
            if not skip_bad_examples:
                raise
            log_skip(e, stats)
            continue
        first_layout = first_layout or (layout, lineno)
        first_labelled = first_labelled or (label is not None, lineno)
        id_lines[record_id] = lineno
        stats.unlabeled += label is None
        examples.append(ClueClassificationExample(where, text_a, text_b, label, None, record_id))
    stats.read += len(examples)
    return examples


def write_clue_classification_submission(ids, labels, path):
    """Writes a CLUE classification submission: ``{"id": ..., "label": "..."}`` per line, in the order given (CLUE
    scores the lines in the order of its test.json). ``labels`` are label strings (the label map's keys). Atomic.
    Returns the number of lines."""
    ids, labels = list(ids), list(labels)
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} ids but {len(labels)} labels")
    _check_unique_submission_ids(ids)
    for record_id, label in zip(ids, labels):
        if not isinstance(label, str) or not label:
            raise ValueError(f"id {record_id!r}: label {label!r} is not a label string")
    write_jsonl(({"id": record_id, "label": label} for record_id, label in zip(ids, labels)), path)
    return len(ids)
