"""Span-extraction reading comprehension (DRCD, CMRC2018): everything the kind needs, from SQuAD-format JSON to the
official CMRC2018 EM/F1, and from a question and its context to an answer span."""
import logging
import os

import numpy as np

from .. import assessment_method as metrics_lib
from ..data.common import ReaderStats
from ..data.mrc import MrcExample, convert_mrc_examples, extract_answers, read_mrc_file
from ..fileio import write_json
from ..heads import ErnieForQuestionAnswering
from ..losses import QuestionAnsweringLoss
from .base import MODEL_INPUTS, Task, TaskData, first_rows, load_feature_file

logger = logging.getLogger(__name__)


class MrcTask(Task):
    kind = "mrc"
    script = "run_ernie_mrc.py"
    train_columns = MODEL_INPUTS + ("start_positions", "end_positions")
    reference_column = "unique_ids"  # what the Ascend 310 chain scores against
    required_fields = ("context", "question")
    predictions_suffix = ".json"

    @classmethod
    def check_info(cls, info, source):
        for name in ("max_query_len", "doc_stride"):
            value = getattr(info, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{source}: an MRC task needs {name} (an integer >= 1), got {value!r}")

    @classmethod
    def output_names(cls, info):
        return ("start_logits", "end_logits")

    @property
    def metric_names(self):
        return ["exact_match", "f1"]

    def load(self, path, is_training):
        options, info = self.options, self.info
        limit = self.sample_limit(is_training)
        if options.dataset_format != "raw" and is_training:
            return TaskData(load_feature_file(path, options, limit), source=path)
        json_path = path
        if options.dataset_format != "raw":
            if not options.eval_json_path:
                raise ValueError(f"MRC evaluation from {options.dataset_format} needs --eval_json_path (the "
                                 f"SQuAD-format JSON the records were made from) to recover answer texts")
            json_path = options.eval_json_path
        stats = ReaderStats()
        examples = read_mrc_file(json_path, is_training, skip_bad_examples=options.skip_bad_examples,
                                 stats=stats)[:limit]
        columns, features = convert_mrc_examples(examples, self.tokenizer, info.max_seq_len, info.max_query_len,
                                                 info.doc_stride, is_training, stats=stats)
        logger.info("%s: %s", json_path, stats.summary())
        if options.dataset_format != "raw":
            stored = first_rows(load_feature_file(path, options), len(columns["unique_ids"]))
            if not (np.array_equal(stored["unique_ids"], columns["unique_ids"])
                    and np.array_equal(stored["input_ids"], columns["input_ids"])):
                raise ValueError(f"{path}: its windows differ from those of {json_path} with max_seq_len "
                                 f"{info.max_seq_len}, max_query_len {info.max_query_len}, doc_stride "
                                 f"{info.doc_stride}; convert the records with the same settings")
            columns = stored
        return TaskData(columns, examples, features, source=json_path)

    def build_model(self, config):
        return ErnieForQuestionAnswering(config)

    def loss_cell(self, model):
        return QuestionAnsweringLoss(model)

    def summarize(self, sums, rank_steps, examples):
        return {"train_span_accuracy": float(sums[0]) / max(2 * examples, 1)}  # start and end positions

    def score(self, data, outputs, predictions_path=None):
        """CMRC2018 EM/F1 (and the answers JSON, with the n-best beside it) from the span logits of every window."""
        start_logits, end_logits = outputs
        answers, nbest = extract_answers(data.examples, data.meta, start_logits, end_logits,
                                         n_best_size=self.options.n_best_size,
                                         max_answer_len=self.options.max_answer_len)
        references = {"data": [{"paragraphs": [{"context": e.context, "qas": [
            {"id": e.qas_id, "question": e.question, "answers": e.answers}]}]} for e in data.examples]}
        metrics = metrics_lib.cmrc_evaluate(references, answers)
        if predictions_path:
            write_json(answers, predictions_path)
            write_json(nbest, os.path.splitext(predictions_path)[0] + "_nbest.json")
        return metrics

    def encode_records(self, records):
        info = self.info
        examples = [MrcExample(str(i), r["question"], r["context"], []) for i, r in enumerate(records)]
        columns, features = convert_mrc_examples(examples, self.tokenizer, info.max_seq_len, info.max_query_len,
                                                 self.options.window_stride or info.doc_stride, is_training=False)
        return {name: columns[name] for name in MODEL_INPUTS}, (examples, features)

    def answer(self, records, outputs, state):
        examples, features = state
        start_logits, end_logits = outputs
        _, nbest = extract_answers(examples, features, start_logits, end_logits, self.options.n_best_size,
                                   self.options.max_answer_len)
        windows = np.bincount([f.example_index for f in features], minlength=len(examples))
        results = []
        for example in examples:
            best = nbest[example.qas_id][0]
            results.append({"answer": best["text"], "start": best["start"], "end": best["end"],
                            "probability": best["probability"], "windows": int(windows[int(example.qas_id)])})
        return results
