"""Span-extraction reading comprehension (DRCD, CMRC2018): SQuAD v1 JSON -> sliding-window features -> answers.

Features are BERT's (``run_squad.py``): ``[CLS] question [SEP] context window [SEP]``, windows sliding over the
context tokens by ``doc_stride``, each context token scored in the window where it has the most context on both
sides. Unlike BERT, a context is tokenized once with character offsets, so an answer is cut straight out of the
original context (``context[start:end]``) without re-aligning normalised tokens.
"""
import bisect
import functools
import json
import logging
from dataclasses import dataclass

import numpy as np

from ..fileio import read_json
from ..progress import progress
from .common import InputError, ReaderStats, log_skip, pad_rows

logger = logging.getLogger(__name__)

FIRST_UNIQUE_ID = 1_000_000_000  # BERT's convention; also what the MindSpore ERNIE reader used


@dataclass
class MrcExample:
    qas_id: str
    question: str
    context: str
    answers: list  # [{"text", "answer_start"}]; training uses the first; answer_start -1 if text not in context


@dataclass
class MrcFeature:
    """One window of one example; sequence positions context_start ... context_start + len(token_spans) - 1
    hold its context tokens."""
    unique_id: int
    example_index: int
    window_index: int
    context_start: int
    token_spans: list           # per context token of the window: (start, end) into the example's context
    token_is_max_context: list  # per context token: is this the window that scores it best


def _locate_answer(context, text, answer_start):
    """The given start if the text is there, else the occurrence of the text nearest to it, else None."""
    if answer_start >= 0 and context.startswith(text, answer_start):
        return answer_start
    occurrences, i = [], context.find(text)
    while i >= 0:
        occurrences.append(i)
        i = context.find(text, i + 1)
    if not occurrences:
        return None
    return min(occurrences, key=lambda start: abs(start - answer_start))


def _question_error(path, raw, qas_id, message):
    """``InputError("PATH:LINE: question ID: message")``, LINE being where the id occurs in the raw JSON (JSON
    parsers give no line numbers)."""
    where = path
    for quoted in (json.dumps(qas_id, ensure_ascii=False), json.dumps(qas_id)) if qas_id else ():
        index = raw.find(quoted)
        if index >= 0:
            where = f"{path}:{raw.count(chr(10), 0, index) + 1}"
            break
    return InputError(f"{where}: question {qas_id or '(no id)'}: {message}")


def _checked_list(value, path, key):
    """``value`` if it is a JSON list (a missing key: an empty one), else an InputError naming the key."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{path}: {key}: expected a JSON list, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def _checked_object(value, path, key):
    if not isinstance(value, dict):
        raise InputError(f"{path}: {key}: expected a JSON object, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def read_mrc_file(path, is_training, skip_bad_examples=False, stats=None):
    """Questions of a SQuAD v1 JSON file (``data[].paragraphs[].context/qas[]``).

    Wrong answer_start values are repaired by locating the answer text (nearest occurrence) and counted. An answer
    whose text is not in its context is an error for the first answer in training (or skipped and counted with
    ``skip_bad_examples``); other answers are only references for scoring: kept, with answer_start -1, and counted.
    For evaluation a question may have empty text or no reference answer (CMRC2018 trial has both): it is kept and
    scored, as the official script scores every question. A ``data``, article, paragraph or ``qas`` of the wrong JSON
    type is an error naming its key path (it is structure, never skipped).
    """
    stats = stats if stats is not None else ReaderStats()
    try:
        document = read_json(path)
    except ValueError as err:
        raise InputError(str(err)) from None
    with open(path, encoding="utf-8-sig") as f:  # read_json decoded it: only for the line numbers of question ids
        raw = f.read()
    if not isinstance(document, dict) or "data" not in document:
        raise InputError(f"{path}:1: expected a SQuAD-style object with a 'data' list")
    examples, seen_ids = [], set()
    for a, article in enumerate(_checked_list(document["data"], path, "data")):
        article = _checked_object(article, path, f"data[{a}]")
        for p, paragraph in enumerate(_checked_list(article.get("paragraphs"), path, f"data[{a}].paragraphs")):
            key = f"data[{a}].paragraphs[{p}]"
            paragraph = _checked_object(paragraph, path, key)
            context = paragraph.get("context")
            for q, qa in enumerate(_checked_list(paragraph.get("qas"), path, f"{key}.qas")):
                qa = _checked_object(qa, path, f"{key}.qas[{q}]")
                qas_id = str(qa.get("id", ""))
                error = functools.partial(_question_error, path, raw, qas_id)
                try:
                    if not qas_id:
                        raise error(f"missing 'id' (question text {qa.get('question')!r})")
                    if not isinstance(context, str) or not context.strip():
                        raise error("empty or missing context")
                    if qas_id in seen_ids:
                        raise error("duplicate question id")
                    question = qa.get("question")
                    if not isinstance(question, str) or (is_training and not question.strip()):
                        raise error("empty or missing question" if is_training else
                                    f"question text must be a string, got {question!r}")
                    if not question.strip():
                        stats.empty_question += 1
                    answers = _read_answers(qa, context, is_training, error, stats)
                except InputError as e:
                    if not skip_bad_examples:
                        raise
                    log_skip(e, stats)
                    continue
                seen_ids.add(qas_id)
                examples.append(MrcExample(qas_id, question, context, answers))
    stats.read += len(examples)
    return examples


def _read_answers(qa, context, is_training, error, stats):
    answers = []
    raw_answers = qa.get("answers")
    if raw_answers is not None and not isinstance(raw_answers, list):
        raise error(f"'answers' must be a JSON list, got {type(raw_answers).__name__}")
    for answer_index, answer in enumerate(raw_answers or ()):
        if not isinstance(answer, dict):
            raise error(f"answer {answer_index} must be a JSON object, got {answer!r}")
        text, answer_start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str) or not text.strip() or not isinstance(answer_start, int):
            raise error(f"answer {answer_index} needs a non-empty 'text' and an integer 'answer_start', "
                        f"got {answer!r}")
        located = _locate_answer(context, text, answer_start)
        if located is None:
            if is_training and answer_index == 0:
                raise error(f"answer text {text!r} does not occur in the context")
            stats.answer_not_in_context += 1
            located = -1
        elif located != answer_start:
            stats.answer_repaired += 1
        answers.append({"text": text, "answer_start": located})
    if is_training and not answers:
        raise error("no answer (training needs one)")
    if not answers:
        stats.no_reference_answer += 1
    return answers


def sliding_windows(num_tokens, window_len, doc_stride):
    """(start, length) of windows over ``num_tokens`` tokens, BERT's way: step ``doc_stride`` until the end."""
    windows, start = [], 0
    while True:
        length = min(window_len, num_tokens - start)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, doc_stride)


def max_context_windows(windows, num_tokens):
    """For each token, the window where min(left, right context) + 0.01 * window length is largest (first on a
    tie), as BERT's ``_check_is_max_context``."""
    best, best_score = [-1] * num_tokens, [float("-inf")] * num_tokens
    for window_index, (start, length) in enumerate(windows):
        for i in range(start, start + length):
            score = min(i - start, start + length - 1 - i) + 0.01 * length
            if score > best_score[i]:
                best[i], best_score[i] = window_index, score
    return best


def _answer_token_span(offsets, start_char, end_char):
    """First and last token overlapping context[start_char:end_char]."""
    first = bisect.bisect_right([end for _, end in offsets], start_char)
    last = bisect.bisect_left([start for start, _ in offsets], end_char) - 1
    return first, last


def convert_mrc_examples(examples, tokenizer, max_seq_len, max_query_len, doc_stride, is_training, stats=None):
    """Features of MRC examples: int32 columns input_ids, input_mask, segment_ids [N, S], unique_ids [N], and for
    training start_positions / end_positions [N] (0 = [CLS] when the window does not hold the whole answer),
    plus one ``MrcFeature`` per row."""
    stats = stats if stats is not None else ReaderStats()
    rows = {"input_ids": [], "segment_ids": [], "unique_ids": [], "start_positions": [], "end_positions": []}
    features = []
    context, context_ids, offsets = None, None, None  # questions of one paragraph share its context
    for example_index, example in enumerate(progress(examples, "tokenising", unit="question")):
        query_tokens = tokenizer.tokenize(example.question)
        if len(query_tokens) > max_query_len:
            query_tokens = query_tokens[:max_query_len]
            stats.query_truncated += 1
        query_ids = tokenizer.convert_tokens_to_ids(query_tokens)
        window_len = max_seq_len - len(query_ids) - 3
        if window_len < 1:
            raise ValueError(f"max_seq_len={max_seq_len} leaves no room for context after a "
                             f"{len(query_ids)}-token question (max_query_len={max_query_len})")
        if example.context != context:
            context = example.context
            context_tokens, offsets = tokenizer.tokenize_with_offsets(context)
            context_ids = tokenizer.convert_tokens_to_ids(context_tokens)
        if not context_ids:
            raise InputError(f"question {example.qas_id}: the context produces no tokens")
        if is_training:
            answer = example.answers[0]
            start_char = answer["answer_start"]
            end_char = start_char + len(answer["text"])
            answer_first, answer_last = _answer_token_span(offsets, start_char, end_char)
            if answer_first > answer_last:
                raise InputError(f"question {example.qas_id}: answer {answer['text']!r} produces no tokens")
            if (offsets[answer_first][0], offsets[answer_last][1]) != (start_char, end_char):
                stats.answer_not_token_aligned += 1
        windows = sliding_windows(len(context_ids), window_len, doc_stride)
        best = max_context_windows(windows, len(context_ids))
        context_start = len(query_ids) + 2
        for window_index, (start, length) in enumerate(windows):
            rows["input_ids"].append([tokenizer.cls_token_id, *query_ids, tokenizer.sep_token_id,
                                      *context_ids[start:start + length], tokenizer.sep_token_id])
            rows["segment_ids"].append([0] * context_start + [1] * (length + 1))
            unique_id = FIRST_UNIQUE_ID + len(features)
            rows["unique_ids"].append(unique_id)
            if is_training:
                if start <= answer_first and answer_last < start + length:
                    rows["start_positions"].append(answer_first - start + context_start)
                    rows["end_positions"].append(answer_last - start + context_start)
                else:
                    rows["start_positions"].append(0)
                    rows["end_positions"].append(0)
                    stats.answer_outside_window += 1
            features.append(MrcFeature(unique_id, example_index, window_index, context_start,
                                       offsets[start:start + length],
                                       [best[i] == window_index for i in range(start, start + length)]))
    stats.windows += len(features)
    columns = {
        "input_ids": pad_rows(rows["input_ids"], max_seq_len),
        "input_mask": pad_rows([[1] * len(ids) for ids in rows["input_ids"]], max_seq_len),
        "segment_ids": pad_rows(rows["segment_ids"], max_seq_len),
        "unique_ids": np.array(rows["unique_ids"], dtype=np.int32),
    }
    if is_training:
        columns["start_positions"] = np.array(rows["start_positions"], dtype=np.int32)
        columns["end_positions"] = np.array(rows["end_positions"], dtype=np.int32)
    return columns, features


def extract_answers(examples, features, start_logits, end_logits, n_best_size=20, max_answer_len=100):
    """Best answer spans from the model's logits (row i of the logits belongs to ``features[i]``).

    Returns ``predictions`` {qas_id: text} and ``nbest`` {qas_id: [{"text", "start", "end", "probability",
    "start_logit", "end_logit"}]}, ``text = context[start:end]``. Candidates are the top ``n_best_size`` start and
    end positions among the context tokens of every window (a start only where the window scores that token: max
    context); a span is skipped if it ends before it starts or is longer than ``max_answer_len`` tokens. An
    example with no valid span (an empty context) predicts "". ``probability`` is a span's softmax share among the
    n-best candidates.
    """
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    if len(start_logits) != len(features) or len(end_logits) != len(features):
        raise ValueError(f"{len(features)} features but {len(start_logits)} start / {len(end_logits)} end logit rows")
    candidates = [[] for _ in examples]  # per example: (score, start_char, end_char, start_logit, end_logit)
    for feature, feature_start, feature_end in zip(features, start_logits, end_logits):
        first, num_context = feature.context_start, len(feature.token_spans)
        # Candidates come from the context tokens only (as the official SQuAD/CMRC post-processing), so [CLS], the
        # question and padding never crowd the real spans out of the top n.
        starts = first + np.flatnonzero(feature.token_is_max_context)
        top_starts = starts[np.argsort(-feature_start[starts], kind="stable")[:n_best_size]]
        ends = np.arange(first, first + num_context)
        top_ends = ends[np.argsort(-feature_end[ends], kind="stable")[:n_best_size]]
        for start in top_starts:
            for end in top_ends:
                if end < start or end - start + 1 > max_answer_len:
                    continue
                start_logit, end_logit = float(feature_start[start]), float(feature_end[end])
                candidates[feature.example_index].append(
                    (start_logit + end_logit, feature.token_spans[start - first][0],
                     feature.token_spans[end - first][1], start_logit, end_logit))
    predictions, nbest = {}, {}
    for example, example_candidates in zip(examples, candidates):
        entries, seen_texts = [], set()
        for _, start_char, end_char, start_logit, end_logit in sorted(example_candidates, key=lambda c: -c[0]):
            text = example.context[start_char:end_char]
            if text in seen_texts:
                continue
            seen_texts.add(text)
            entries.append({"text": text, "start": start_char, "end": end_char,
                            "start_logit": start_logit, "end_logit": end_logit})
            if len(entries) == n_best_size:
                break
        if not entries:
            entries = [{"text": "", "start": -1, "end": -1, "start_logit": 0.0, "end_logit": 0.0}]
        scores = np.array([e["start_logit"] + e["end_logit"] for e in entries])
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        for entry, probability in zip(entries, probabilities):
            entry["probability"] = float(probability)
        predictions[example.qas_id] = entries[0]["text"]
        nbest[example.qas_id] = entries
    return predictions, nbest
