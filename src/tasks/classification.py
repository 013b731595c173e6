"""Sentence and sentence-pair classification (ChnSentiCorp, XNLI, NLPCC-DBQA): everything the kind needs, from the
data file to metrics, and from raw text to labels."""
import logging

import numpy as np

from .. import assessment_method as metrics_lib
from ..data.classification import convert_classification_examples, read_classification_file
from ..data.clue import read_clue_classification_file, write_clue_classification_submission
from ..data.common import InputError, ReaderStats, is_json_lines
from ..data.mrc import sliding_windows
from ..fileio import write_jsonl
from ..heads import ErnieForSequenceClassification
from ..losses import SequenceClassificationLoss
from .base import MODEL_INPUTS, Task, TaskData, load_feature_file

logger = logging.getLogger(__name__)

class ClassificationTask(Task):
    kind = "classification"
    script = "run_ernie_classifier.py"
    train_columns = MODEL_INPUTS + ("label_ids",)
    reference_column = "label_ids"  # what the Ascend 310 chain scores against
    required_fields = ("text",)

    @classmethod
    def check_info(cls, info, source):
        if len(info.labels) < 2:
            raise ValueError(f"{source}: a classification task needs at least 2 labels, got {info.labels}")

    @classmethod
    def output_names(cls, info):
        return ("logits",)

    @property
    def metric_names(self):
        names = ["accuracy"]
        if len(self.info.labels) == 2:
            names += ["precision", "recall", "f1"]
            method = metrics_lib.metric_key(self.options.assessment_method)
            names += [method] if method in ("mcc", "spearman", "mrr") else []
        return names

    def load(self, path, is_training):
        limit = self.sample_limit(is_training)
        if self.options.dataset_format != "raw":
            return TaskData(load_feature_file(path, self.options, limit), source=path)
        stats = ReaderStats()
        if is_json_lines(path):  # the CLUE benchmark's layout (TNEWS, IFLYTEK, AFQMC)
            examples = read_clue_classification_file(path, self.label_map, self.options.skip_bad_examples,
                                                     stats)[:limit]
        else:
            examples = read_classification_file(path, self.label_map, columns=self.options.columns,
                                                skip_bad_examples=self.options.skip_bad_examples, stats=stats)[:limit]
        if examples and examples[0].label is None and (is_training or not self.writes_clue_submission):
            raise InputError(f"{path}:1: no 'label' column, so there is nothing to {'train on' if is_training else 'score'}"
                             f" (columns: add a header naming 'label', or pass --columns); to label unlabelled text "
                             f"use predict.py --input_file")
        columns = convert_classification_examples(examples, self.tokenizer, self.info.max_seq_len, self.label_map,
                                                  stats=stats)
        logger.info("%s: %s", path, stats.summary())
        return TaskData(columns, examples, source=path)

    def metric_key(self, assessment_method):
        return "accuracy" if assessment_method == "clue_benchmark" else super().metric_key(assessment_method)

    def build_model(self, config):
        return ErnieForSequenceClassification(config, len(self.info.labels))

    def loss_cell(self, model):
        return SequenceClassificationLoss(model)

    def summarize(self, sums, rank_steps, examples):
        return {"train_accuracy": float(sums[0]) / max(examples, 1)}

    def score(self, data, outputs, predictions_path=None):
        """Metrics (and the predictions file) from the logits on ``data``."""
        (logits,) = outputs
        probabilities = metrics_lib.softmax(logits.astype(np.float64))
        predicted = probabilities.argmax(-1)
        gold = data.columns["label_ids"]
        labelled = gold >= 0
        metrics = {}
        if labelled.any():
            predicted_labelled, gold_labelled = predicted[labelled], gold[labelled]
            metrics.update(metrics_lib.accuracy(predicted_labelled, gold_labelled))
            if len(self.info.labels) == 2:
                metrics.update(metrics_lib.binary_prf(predicted_labelled, gold_labelled, positive_label=1))
                method = metrics_lib.metric_key(self.options.assessment_method)
                if method == "mcc":
                    metrics["mcc"] = metrics_lib.matthews_corrcoef(predicted_labelled, gold_labelled)
                if method == "spearman":
                    metrics["spearman"] = metrics_lib.spearman(probabilities[labelled, 1], gold_labelled)
                if "qids" in data.columns and (data.columns["qids"] >= 0).all():  # question groups (dbqa): rank answers
                    metrics["mrr"] = metrics_lib.mean_reciprocal_rank(
                        data.columns["qids"][labelled], probabilities[labelled, 1], gold_labelled)
        if predictions_path and self.writes_clue_submission:
            write_clue_classification_submission([e.record_id for e in data.examples],
                                                 [self.info.labels[p] for p in predicted], predictions_path)
        elif predictions_path:
            ids = [e.guid for e in data.examples] if data.examples else list(range(len(predicted)))
            write_jsonl(({"id": i, **self.label_record(p, prob)} for i, p, prob in zip(ids, predicted, probabilities)),
                        predictions_path)
        return metrics

    def encode_records(self, records):
        """Texts longer than the model are cut into overlapping windows of the first text (the second, if any, rides
        along whole, or cut to half the sequence when long); ``answer`` averages the windows' probabilities."""
        tok, max_seq_len = self.tokenizer, self.info.max_seq_len
        rows, segments, owners, notes = [], [], [], []
        for index, record in enumerate(records):
            ids_a = tok.convert_tokens_to_ids(tok.tokenize(record["text"]))
            ids_b = tok.convert_tokens_to_ids(tok.tokenize(record["text_b"])) if record.get("text_b") is not None \
                else None
            note = {}
            if ids_b is None:
                window_len, tail, tail_segments = max_seq_len - 2, [tok.sep_token_id], [0]
            else:
                if len(ids_a) + len(ids_b) > max_seq_len - 3 and len(ids_b) > (max_seq_len - 3) // 2:
                    ids_b = ids_b[:(max_seq_len - 3) // 2]
                    note["text_b_truncated"] = True
                window_len = max_seq_len - 3 - len(ids_b)
                tail, tail_segments = [tok.sep_token_id, *ids_b, tok.sep_token_id], [0] + [1] * (len(ids_b) + 1)
            for start, length in sliding_windows(len(ids_a), window_len, self.window_stride(window_len)):
                rows.append([tok.cls_token_id, *ids_a[start:start + length], *tail])
                segments.append([0] * (length + 1) + tail_segments)
                owners.append(index)
            notes.append(note)
        return self.input_columns(rows, segments), (np.asarray(owners), notes)

    def answer(self, records, outputs, state):
        owners, notes = state
        probabilities = metrics_lib.softmax(outputs[0].astype(np.float64))
        results = []
        for index, note in enumerate(notes):
            mean = probabilities[owners == index].mean(axis=0)
            results.append({**self.label_record(mean.argmax(), mean), "windows": int((owners == index).sum()), **note})
        return results
