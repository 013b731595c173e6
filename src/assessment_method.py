"""Evaluation metrics: classification (accuracy, binary P/R/F1, MCC, Spearman, MRR), NER entity P/R/F1 counted
as seqeval's default mode counts it, and the official CMRC2018 EM/F1. Pure Python/numpy."""
import os
import re
from collections import defaultdict

import numpy as np

from .fileio import read_json


def softmax(logits):
    """Class probabilities from logits along the last axis (numpy)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _paired(pred, gold, what="labels"):
    pred, gold = np.asarray(pred).reshape(-1), np.asarray(gold).reshape(-1)
    if pred.shape != gold.shape:
        raise ValueError(f"{len(pred)} predicted {what} but {len(gold)} gold {what}")
    if not len(pred):
        raise ValueError(f"no {what} to evaluate")
    return pred, gold


def _divide(numerator, denominator):
    """numerator / denominator, 0.0 when the denominator is 0 (seqeval's and sklearn's zero_division=0)."""
    return numerator / denominator if denominator else 0.0


def accuracy(pred_labels, gold_labels):
    pred, gold = _paired(pred_labels, gold_labels)
    acc_num = int((pred == gold).sum())
    return {"acc_num": acc_num, "total_num": len(gold), "accuracy": acc_num / len(gold)}


def binary_prf(pred_labels, gold_labels, positive_label=1):
    """Precision, recall and F1 of the class ``positive_label`` (all other labels are negative)."""
    pred, gold = _paired(pred_labels, gold_labels)
    pred_pos, gold_pos = pred == positive_label, gold == positive_label
    tp = int((pred_pos & gold_pos).sum())
    fp = int((pred_pos & ~gold_pos).sum())
    fn = int((~pred_pos & gold_pos).sum())
    return {"precision": _divide(tp, tp + fp), "recall": _divide(tp, tp + fn), "f1": _divide(2 * tp, 2 * tp + fp + fn)}


def matthews_corrcoef(pred_labels, gold_labels):
    """Matthews correlation (multi-class form, equal to the binary TP/TN/FP/FN formula for two classes);
    0.0 when it is undefined (all predictions or all gold labels in one class), as in sklearn."""
    pred, gold = _paired(pred_labels, gold_labels)
    classes, index = np.unique(np.concatenate([gold, pred]), return_inverse=True)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, (index[:len(gold)], index[len(gold):]), 1)
    gold_count, pred_count = confusion.sum(axis=1), confusion.sum(axis=0)
    total, correct = confusion.sum(), np.trace(confusion)
    covariance = correct * total - pred_count @ gold_count
    scale = np.sqrt((total ** 2 - pred_count @ pred_count) * (total ** 2 - gold_count @ gold_count))
    return float(covariance / scale) if scale else 0.0


def _average_ranks(values):
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]  # exclusive
    ranks = np.empty(len(values), dtype=np.float64)
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def spearman(x, y):
    """Spearman rank correlation (Pearson correlation of average ranks); NaN if either input is constant."""
    x, y = _paired(x, y, "values")
    x_ranks = _average_ranks(x.astype(np.float64)) - (len(x) + 1) / 2.0
    y_ranks = _average_ranks(y.astype(np.float64)) - (len(y) + 1) / 2.0
    scale = np.sqrt((x_ranks @ x_ranks) * (y_ranks @ y_ranks))
    return float(x_ranks @ y_ranks / scale) if scale else float("nan")


def mean_reciprocal_rank(qids, scores, gold_labels):
    """Mean over qids of 1 / rank of the first gold-positive (label != 0) candidate, candidates ranked by
    descending score (ties keep their input order).

    As Paddle ERNIE's ``evaluate_mrr`` (finetune/classifier.py) does, a qid without any positive candidate still
    counts in the mean, with reciprocal rank 0.
    """
    qids = np.asarray(qids).reshape(-1)
    scores, gold = _paired(scores, gold_labels, "scores/labels")
    if len(qids) != len(scores):
        raise ValueError(f"{len(qids)} qids but {len(scores)} scores")
    candidates = defaultdict(list)
    for qid, score, label in zip(qids.tolist(), scores.tolist(), gold.tolist()):
        candidates[qid].append((score, label))
    total = 0.0
    for ranked in candidates.values():
        ranked.sort(key=lambda candidate: -candidate[0])  # stable
        total += next((1.0 / rank for rank, (_, label) in enumerate(ranked, 1) if label != 0), 0.0)
    return total / len(candidates)


# ---------------------------------------------------------------- NER

def _split_tag(tag):
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    if tag == "O":
        return "O", ""
    if not isinstance(tag, str) or len(tag) < 3 or tag[0] not in "BIES" or tag[1] != "-":
        raise ValueError(f"{tag!r} is not an NER tag: expected 'O' or B-/I-/E-/S- followed by a type")
    return tag[0], tag[2:]


def get_entities(tags):
    """Chunks ``(type, start, end_inclusive)`` of one tag sequence (IOB1/IOB2/IOE/IOBES), by seqeval's default
    (conlleval-compatible) rules: a chunk ends before B or S, after E or S, at O, and where the type changes; a chunk
    starts at B or S, at I or E that follows O, E or S, and where the type changes. So an I- after O or after another
    type starts a chunk, and ``B-X I-Y`` is two chunks."""
    entities = []
    prev_prefix, prev_type, begin = "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):  # the final O closes a trailing chunk
        prefix, entity_type = _split_tag(tag)
        type_changed = entity_type != prev_type
        ends = prev_prefix != "O" and (prev_prefix in "ES" or prefix in "BSO" or type_changed)
        starts = prefix != "O" and (prefix in "BS" or prev_prefix in "OES" or type_changed)
        if ends:
            entities.append((prev_type, begin, i - 1))
        if starts:
            begin = i
        prev_prefix, prev_type = prefix, entity_type
    return entities


def entity_prf(gold_tag_seqs, pred_tag_seqs):
    """Entity-level precision/recall/F1, micro-averaged over all entities (exact type and span), and per type:
    the counts of seqeval's ``precision_score``/``recall_score``/``f1_score`` in their default mode."""
    gold_tag_seqs, pred_tag_seqs = list(gold_tag_seqs), list(pred_tag_seqs)
    if len(gold_tag_seqs) != len(pred_tag_seqs):
        raise ValueError(f"{len(gold_tag_seqs)} gold sequences but {len(pred_tag_seqs)} predicted sequences")
    gold_entities, pred_entities = set(), set()
    for n, (gold_tags, pred_tags) in enumerate(zip(gold_tag_seqs, pred_tag_seqs)):
        if isinstance(gold_tags, str) or isinstance(pred_tags, str):
            raise ValueError("expected a list of tag sequences (one list of tags per sentence)")
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sequence {n}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted tags")
        gold_entities.update((n,) + entity for entity in get_entities(gold_tags))
        pred_entities.update((n,) + entity for entity in get_entities(pred_tags))
    correct_entities = gold_entities & pred_entities

    def scores(gold, pred, correct):
        precision, recall = _divide(correct, pred), _divide(correct, gold)
        return {"precision": precision, "recall": recall,
                "f1": _divide(2 * precision * recall, precision + recall),
                "gold": gold, "pred": pred, "correct": correct}

    def count_by_type(entities):
        counts = defaultdict(int)
        for entity in entities:
            counts[entity[1]] += 1
        return counts

    gold_by_type, pred_by_type = count_by_type(gold_entities), count_by_type(pred_entities)
    correct_by_type = count_by_type(correct_entities)
    result = scores(len(gold_entities), len(pred_entities), len(correct_entities))
    result["per_type"] = {entity_type: scores(gold_by_type[entity_type], pred_by_type[entity_type],
                                              correct_by_type[entity_type])
                          for entity_type in sorted(set(gold_by_type) | set(pred_by_type))}
    return result


# ---------------------------------------------------------------- CMRC2018
# Reimplements the official cmrc2018_evaluate.py (ymcui/cmrc2018): answers and predictions are lower-cased and
# stripped; EM compares them after removing the punctuation below; F1 compares token sequences from "mixed
# segmentation" (each CJK character U+4E00..U+9FA5 is a token, runs of other characters are word-tokenized,
# punctuation is removed) by their longest common contiguous token run. Both take the best reference answer and are
# averaged over all questions x 100; a question without a prediction scores 0.
#
# The official script word-tokenizes the non-CJK runs with nltk.word_tokenize; _word_tokenize below applies the same
# Treebank rules without nltk (identical tokens to nltk 3.10's NLTKWordTokenizer on all 60k non-CJK runs of the
# CMRC2018 dev/trial and DRCD contexts, questions and answers, and on 300k random strings). Known differences: no
# splitting of the English contractions nltk special-cases (cannot, gonna, gimme, 'tis ...; none occurs in those
# sets), and no Punkt sentence splitting, so only the final period of a run is split off. Punkt could split a period
# followed by a space inside a run; in CMRC2018 dev answers that happens only after initials ("henry a. walsh"), which
# Punkt, seeing a lower-case next word, should not end a sentence at (unverified: Punkt's data is not available here).

# the official list; its two-character '……' never equals a single character, so '…' is not removed
CMRC_PUNCTUATION = frozenset(['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=', '，', '。', '：', '？', '！',
                              '“', '”', '；', '’', '《', '》', '……', '·', '、', '「', '」', '（', '）', '－', '～',
                              '『', '』'])
_CJK = re.compile("[\u4e00-\u9fa5]")

# Treebank rules for lower-cased text that no longer contains CMRC_PUNCTUATION (so no ':', '*', '`' or '-'),
# applied in nltk's order: each step sees the spaces the previous ones inserted
_OPENING_QUOTE_CHARS = re.compile("([«“‘„])")
_INITIAL_DOUBLE_QUOTE = re.compile('^"')
_OPENING_DOUBLE_QUOTE = re.compile(r"""(?<=[ (\[{<])(?:"|'')""")
_OPENING_SINGLE_QUOTE = re.compile(r"(?<!\w)'(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)")
_FINAL_PERIOD = re.compile(r"""(?<=[^.])\.(?=[\])}>"'»”’ ]*\s*$)""")
_COMMA = re.compile(r",([^\d]|$)")  # consumes the next character, as nltk does ("a,,b" -> a , ,b)
_SYMBOLS = re.compile("(\\.{2,}|[;@#$%&?!\u2012-\u2015])")
_QUOTE_BEFORE_SPACE = re.compile("(?<=[^'])' ")
_BRACKETS_AND_CLOSING_QUOTES = re.compile(r"([\](){}<>\[»”’])")
_CLOSING_DOUBLE_QUOTE = re.compile("''|\"")
_CLITICS = (re.compile(r"(?<=[^' ])('s|'m|'d|')(?= )"), re.compile(r"(?<=[^' ])('ll|'re|'ve|n't)(?= )"))


def _word_tokenize(text):
    """nltk.word_tokenize for one lower-cased non-CJK run (see the notes above)."""
    text = _OPENING_QUOTE_CHARS.sub(r" \1 ", text)
    text = _INITIAL_DOUBLE_QUOTE.sub(" `` ", text)
    text = _OPENING_DOUBLE_QUOTE.sub(" `` ", text)
    text = _OPENING_SINGLE_QUOTE.sub("' ", text)
    text = _FINAL_PERIOD.sub(" . ", text)
    text = _COMMA.sub(r" , \1", text)
    text = _SYMBOLS.sub(r" \1 ", text)
    text = _QUOTE_BEFORE_SPACE.sub(" ' ", text)
    text = _BRACKETS_AND_CLOSING_QUOTES.sub(r" \1 ", text)
    text = _CLOSING_DOUBLE_QUOTE.sub(" '' ", text)
    text = " " + " ".join(text.split()) + " "
    for clitic in _CLITICS:
        text = clitic.sub(r" \1 ", text)
    return text.split()


def cmrc_mixed_segmentation(text):
    """Official mixed segmentation with punctuation removed: each CJK character is a token, runs of other
    characters are word-tokenized."""
    tokens, run = [], ""
    for char in str(text).lower().strip():
        if char in CMRC_PUNCTUATION:
            continue
        if _CJK.match(char):
            tokens.extend(_word_tokenize(run))
            tokens.append(char)
            run = ""
        else:
            run += char
    return tokens + _word_tokenize(run)


def cmrc_remove_punctuation(text):
    return "".join(char for char in str(text).lower().strip() if char not in CMRC_PUNCTUATION)


def _longest_common_run(a, b):
    """Length of the longest common contiguous run of tokens."""
    best, previous = 0, [0] * (len(b) + 1)
    for token in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b):
            if token == other:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def cmrc_f1(answers, prediction):
    """Best F1 over the reference answers."""
    prediction_tokens = cmrc_mixed_segmentation(prediction)
    best = 0.0
    for answer in answers:
        answer_tokens = cmrc_mixed_segmentation(answer)
        common = _longest_common_run(answer_tokens, prediction_tokens)
        if common:
            precision, recall = common / len(prediction_tokens), common / len(answer_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def cmrc_em(answers, prediction):
    """1.0 if the prediction equals a reference answer once punctuation is removed."""
    prediction = cmrc_remove_punctuation(prediction)
    return float(any(cmrc_remove_punctuation(answer) == prediction for answer in answers))


def cmrc_evaluate(dataset_json_dict_or_path, predictions):
    """Official CMRC2018 EM/F1 (x100) of ``predictions`` ({question id: answer text}) on a SQuAD-format dataset.

    Returns ``{"exact_match", "f1", "total", "skipped", "no_reference", "extra"}``. Every question of the dataset is
    in ``total``, the denominator, as in the official script: ``skipped`` questions had no prediction and score 0;
    ``no_reference`` questions have an empty answer list and score 0 (the official EM of such a question is 0; its F1
    would be ``max([])``, which stops the official script, so 0 is the only score consistent with its EM and with
    its denominator). ``extra`` counts predictions for ids that are not in the dataset. Ids are compared stripped of
    surrounding whitespace (the official script strips the dataset's ids); a question's text plays no part.
    """
    dataset = dataset_json_dict_or_path
    if isinstance(dataset, (str, os.PathLike)):
        dataset = read_json(dataset)
    if not isinstance(dataset, dict) or "data" not in dataset:
        raise ValueError("expected a SQuAD-format dataset: a dict (or JSON file) with a 'data' list")
    if not isinstance(predictions, dict):
        raise ValueError(f"predictions must be a dict {{question id: answer text}}, got {type(predictions).__name__}")
    predictions = {str(qid).strip(): text for qid, text in predictions.items()}
    em = f1 = 0.0
    total = skipped = no_reference = 0
    seen = set()
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for question in paragraph["qas"]:
                qid = str(question["id"]).strip()
                answers = [answer["text"] for answer in question.get("answers") or ()]
                total += 1
                seen.add(qid)
                if qid not in predictions:
                    skipped += 1
                    continue
                if not answers:
                    no_reference += 1
                    continue
                prediction = str(predictions[qid])
                em += cmrc_em(answers, prediction)
                f1 += cmrc_f1(answers, prediction)
    if not total:
        raise ValueError("the dataset has no questions")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total, "total": total, "skipped": skipped,
            "no_reference": no_reference, "extra": len(set(predictions) - seen)}


# ---------------------------------------------------------------- printing

# --assessment_method spellings -> the metric key the evaluations report (the seed's names are aliases)
METRIC_ALIASES = {"spearman_correlation": "spearman", "em": "exact_match", "acc": "accuracy"}


def metric_key(assessment_method):
    return METRIC_ALIASES.get(assessment_method.lower(), assessment_method.lower()) if assessment_method else ""


def format_metrics(metrics):
    """The seed's metric lines for the keys present (``acc_num N, total_num N, accuracy X``, ``Precision X``,
    ``Recall X``, ``F1 X``, ``MRR X``, ``MCC X``, ``Spearman X``, ``EM X``), then any other keys as ``key value``."""
    lines, done = [], set()
    if "accuracy" in metrics:
        lines.append(f"acc_num {metrics.get('acc_num')}, total_num {metrics.get('total_num')}, "
                     f"accuracy {metrics['accuracy']:.6f}")
        done |= {"acc_num", "total_num", "accuracy"}
    for key, name in (("exact_match", "EM"), ("macro_f1", "Macro-F1"), ("precision", "Precision"),
                      ("recall", "Recall"), ("f1", "F1"), ("mrr", "MRR"), ("mcc", "MCC"), ("spearman", "Spearman")):
        if key in metrics:
            lines.append(f"{name} {metrics[key]:.6f}")
            done.add(key)
    for key, value in metrics.items():
        if key in done:
            continue
        if key == "per_type":
            for entity_type, counts in value.items():
                tallies = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("precision", "recall", "f1"))
                lines.append(f"{entity_type}: Precision {counts['precision']:.6f}, Recall {counts['recall']:.6f}, "
                             f"F1 {counts['f1']:.6f} ({tallies})")
        else:
            lines.append(f"{key} {value:.6f}" if isinstance(value, float) else f"{key} {value}")
    return "\n".join(lines)
