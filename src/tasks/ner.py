"""Named-entity recognition (MSRA-NER; softmax or CRF head): everything the kind needs, from the data file to entity
F1, and from raw text to entities with character offsets."""
import logging

from .. import assessment_method as metrics_lib
from ..crf import viterbi_decode_numpy
from ..data.clue import (cluener_gold_records, cluener_label, cluener_prf, read_cluener_file,
                         write_clue_ner_submission)
from ..data.common import InputError, ReaderStats, is_json_lines
from ..data.mrc import max_context_windows, sliding_windows
from ..data.ner import convert_ner_examples, entities_from_tags, ner_tags_from_token_predictions, read_ner_file
from ..fileio import write_jsonl
from ..heads import ErnieForTokenClassification
from ..losses import TokenClassificationLoss
from .base import MODEL_INPUTS, Task, TaskData, load_feature_file

logger = logging.getLogger(__name__)


class NerTask(Task):
    kind = "ner"
    script = "run_ernie_ner.py"
    train_columns = MODEL_INPUTS + ("label_ids",)
    reference_column = "label_ids"  # what the Ascend 310 chain scores against
    required_fields = ("text",)
    has_crf_option = True

    @classmethod
    def check_info(cls, info, source):
        if "O" not in info.labels:
            raise ValueError(f"{source}: an NER tag set needs the 'O' tag, got {info.labels}")

    @classmethod
    def output_names(cls, info):
        return ("emissions", "tags") if info.use_crf else ("emissions",)

    @property
    def metric_names(self):
        return ["macro_f1", "precision", "recall", "f1"] if self.writes_clue_submission else ["precision", "recall", "f1"]

    def metric_key(self, assessment_method):
        return "macro_f1" if assessment_method == "clue_benchmark" else super().metric_key(assessment_method)

    def __init__(self, info, tokenizer, options=None, label_map=None):
        super().__init__(info, tokenizer, options, label_map)
        self._char_ids = {}  # char -> token ids: the same few thousand characters recur

    def load(self, path, is_training):
        limit = self.sample_limit(is_training)
        if self.options.dataset_format != "raw":
            return TaskData(load_feature_file(path, self.options, limit), source=path)
        stats = ReaderStats()
        if is_json_lines(path):  # CLUENER2020's layout
            examples = read_cluener_file(path, self.label_map, self.options.skip_bad_examples, stats)[:limit]
        else:
            examples = read_ner_file(path, self.label_map, skip_bad_examples=self.options.skip_bad_examples,
                                     stats=stats, columns=self.options.columns)[:limit]
        if examples and examples[0].tags is None and (is_training or not self.writes_clue_submission):
            raise InputError(f"{path}:1: no 'label' column of tags, so there is nothing to "
                             f"{'train on' if is_training else 'score'}; to tag unlabelled text use predict.py")
        columns, alignments = convert_ner_examples(examples, self.tokenizer, self.info.max_seq_len, self.label_map,
                                                   stats=stats)
        logger.info("%s: %s", path, stats.summary())
        return TaskData(columns, examples, alignments, source=path)

    def build_model(self, config):
        return ErnieForTokenClassification(config, len(self.info.labels), use_crf=self.info.use_crf)

    def loss_cell(self, model):
        return TokenClassificationLoss(model)

    def summarize(self, sums, rank_steps, examples):
        correct, tokens = sums
        return {"train_token_accuracy": float(correct) / max(float(tokens), 1.0)}

    def with_decoding(self, model, outputs, data):
        """Adds the CRF's Viterbi tags (what the exported graph decodes in the graph), here in numpy."""
        if not self.info.use_crf:
            return outputs
        (emissions,) = outputs
        crf = model.crf
        lengths = data.columns["input_mask"].sum(-1)
        paths = viterbi_decode_numpy(emissions, crf.transitions.asnumpy(), crf.start_transitions.asnumpy(),
                                     crf.end_transitions.asnumpy(), lengths)
        return emissions, paths

    def token_tags(self, outputs, lengths):
        """Each row's tag ids over its real tokens: the CRF's tags, else the best tag per token."""
        token_tags = outputs[1] if self.info.use_crf else outputs[0].argmax(-1)
        return [row[:n] for row, n in zip(token_tags, lengths)]

    def score(self, data, outputs, predictions_path=None):
        """Entity metrics (and the predictions file) from the tags of each row's real tokens."""
        lengths = data.columns["input_mask"].sum(-1)
        token_paths = self.token_tags(outputs, lengths)
        labels = self.info.labels
        if data.meta is None:  # stored features: score token-level tags between [CLS] and [SEP]
            gold = [[labels[int(t)] for t in row[1:n - 1]] for row, n in zip(data.columns["label_ids"], lengths)]
            pred = [[labels[int(t)] for t in path[1:n - 1]] for path, n in zip(token_paths, lengths)]
        else:
            gold = [example.tags for example in data.examples]
            pred = [ner_tags_from_token_predictions(alignment, path, labels)
                    for alignment, path in zip(data.meta, token_paths)]
        if self.writes_clue_submission:
            return self._score_clue(data, pred, predictions_path)
        metrics = metrics_lib.entity_prf(gold, pred)
        if predictions_path:
            texts = [e.chars for e in data.examples] if data.examples else [None] * len(pred)
            write_jsonl((_entity_record(i, chars, tags) for i, (chars, tags) in enumerate(zip(texts, pred))),
                        predictions_path)
        return metrics

    def _score_clue(self, data, pred, predictions_path):
        """CLUENER's official score (macro F1 over its types; micro P/R/F1 beside it) and its submission file."""
        if data.meta is None:
            raise ValueError(f"{data.source}: --assessment_method clue_benchmark scores CLUENER JSON files, not "
                             f"stored features")
        entities = [entities_from_tags(e.chars, tags) for e, tags in zip(data.examples, pred)]
        metrics = {}
        if data.examples and data.examples[0].tags is not None:
            predicted = [{"id": e.record_id, "label": cluener_label(e.text, found)}
                         for e, found in zip(data.examples, entities)]
            metrics = cluener_prf(cluener_gold_records(data.examples), predicted)
        if predictions_path:
            write_clue_ner_submission([(e.record_id, e.text, found) for e, found in zip(data.examples, entities)],
                                      predictions_path)
        return metrics

    def _char_token_ids(self, char):
        """Token ids of one character tokenized alone, as the training data is (``convert_ner_examples``)."""
        if char not in self._char_ids:
            self._char_ids[char] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(char))
        return self._char_ids[char]

    def encode_records(self, records):
        """Texts longer than the model are cut into overlapping windows; ``answer`` takes each token's tag from the
        window where it has the most context."""
        tok = self.tokenizer
        window_len = self.info.max_seq_len - 2
        stride = self.window_stride(window_len)
        rows, texts = [], []
        for record in records:
            chars = list(record["text"])
            token_ids, token_chars = [], []
            for char_index, char in enumerate(chars):
                ids = self._char_token_ids(char)
                token_ids += ids
                token_chars += [char_index] * len(ids)
            windows = sliding_windows(len(token_ids), window_len, stride)
            first_row = len(rows)
            for start, length in windows:
                rows.append([tok.cls_token_id, *token_ids[start:start + length], tok.sep_token_id])
            texts.append((chars, token_chars, windows, first_row))
        return self.input_columns(rows, [[0] * len(row) for row in rows]), texts

    def answer(self, records, outputs, texts):
        token_tags = outputs[1] if self.info.use_crf else outputs[0].argmax(-1)
        results = []
        for chars, token_chars, windows, first_row in texts:
            best = max_context_windows(windows, len(token_chars))
            tags = ["O"] * len(chars)
            for i, char_index in enumerate(token_chars):
                if i == 0 or token_chars[i - 1] != char_index:  # a char takes the tag of its first token
                    start = windows[best[i]][0]
                    tags[char_index] = self.info.labels[int(token_tags[first_row + best[i], i - start + 1])]
            text = "".join(chars)
            entities = [{"type": kind, "start": start, "end": end, "text": text[start:end]}
                        for kind, start, end in entities_from_tags(chars, tags)]
            results.append({"entities": entities, "windows": len(windows)})
        return results


def _entity_record(index, chars, tags):
    """Entities with character offsets into ``"".join(chars)`` (token offsets for stored features)."""
    text = "".join(chars) if chars else None
    spans = entities_from_tags(chars or [" "] * len(tags), tags)  # without text, a token counts as one character
    return {"id": index, "text": text, "entities": [
        {"type": kind, "start": start, "end": end, "text": text[start:end] if text is not None else None}
        for kind, start, end in spans]}
