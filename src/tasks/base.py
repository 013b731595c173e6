"""What every task kind shares: evaluation options, the columns the model reads, and the ``Task`` base class each
kind's module fills in.

A task is built from a ``TaskInfo`` (``registry.py``: what ``task.json`` and the export sidecar hold) plus
``EvalOptions``, never from command-line flags, so training, evaluation and serving build the same object.
"""
import logging
from dataclasses import dataclass
from typing import Optional

from .. import assessment_method as metrics_lib
from ..data.common import pad_rows
from ..data.mindrecord import read_mindrecord_columns
from ..data.tfrecord import read_tfrecord_columns
from ..trainer import predict

logger = logging.getLogger(__name__)

# The data columns the model reads, in the order ErnieModel takes them (input ids, token types, attention mask).
# The data keeps the seed's column names (they are stored in users' MindRecord files); the exported graph's names
# and order are the seed's too and live only in src/serving/export.py.
MODEL_INPUTS = ("input_ids", "segment_ids", "input_mask")


@dataclass
class EvalOptions:
    """How to read and score data; none of it is part of the trained model."""
    eval_batch_size: int = 32
    dataset_format: str = "raw"        # raw | mindrecord | tfrecord
    schema_file: str = ""              # TFRecord schema (the seed's --schema_file_path)
    eval_json_path: str = ""           # MRC from MindRecord: the SQuAD JSON the records were made from
    skip_bad_examples: bool = False
    max_train_samples: int = 0         # 0: all
    max_eval_samples: int = 0
    columns: Optional[tuple] = None    # TSV column names for files without a header row
    assessment_method: str = ""        # the metric that selects the best checkpoint
    n_best_size: int = 20              # MRC
    max_answer_len: int = 100          # MRC, in tokens
    window_stride: Optional[int] = None  # raw-text prediction: how far windows of a long text move


@dataclass
class TaskData:
    """Features as columns, plus what evaluation needs to map predictions back to the text."""
    columns: dict
    examples: list = None
    meta: list = None
    source: str = ""


def first_rows(columns, limit):
    return {name: column[:limit] for name, column in columns.items()}


def load_feature_file(path, options, limit=None):
    """Feature columns stored by the converter (``--dataset_format mindrecord`` or ``tfrecord``, the latter read
    with the seed's schema file when one is given), the first ``limit`` rows."""
    if options.dataset_format == "mindrecord":
        return first_rows(read_mindrecord_columns(path), limit)
    if options.dataset_format == "tfrecord":
        return first_rows(read_tfrecord_columns(path, options.schema_file), limit)
    raise ValueError(f"unknown dataset format {options.dataset_format!r}")


class Task:
    """One task kind. Subclasses set the class attributes and implement the methods that raise here."""
    kind = ""
    script = ""                 # the seed's entry script for this kind
    train_columns = ()          # MODEL_INPUTS + the label columns the loss cell takes
    required_fields = ("text",)  # raw-text records
    predictions_suffix = ".jsonl"
    has_crf_option = False      # --use_crf applies

    def __init__(self, info, tokenizer, options=None, label_map=None):
        """``label_map``: label -> id for reading data (aliases allowed); default: the info's labels."""
        self.info, self.tokenizer = info, tokenizer
        self.options = options or EvalOptions()
        self.label_map = label_map or {label: i for i, label in enumerate(info.labels)}

    # -- description ------------------------------------------------------------------------------------------
    @classmethod
    def check_info(cls, info, source):
        """Raises ValueError when ``info`` (read from ``source``) is not a valid description of this kind."""

    @classmethod
    def output_names(cls, info):
        raise NotImplementedError

    @property
    def metric_names(self):
        """The metrics ``score`` reports (a best-checkpoint metric must be one of them)."""
        raise NotImplementedError

    @property
    def writes_clue_submission(self):
        """``--assessment_method clue_benchmark``: predictions are written as a CLUE submission file, and unlabelled
        evaluation files (CLUE's test splits) are predicted without a score."""
        return self.options.assessment_method == "clue_benchmark"

    def predictions_file(self, split):
        """The name of the predictions file of an evaluated split (a CLUE submission file has CLUE's name)."""
        if self.writes_clue_submission:
            return f"{self.info.task_type}_predict.json"
        return f"{split}_predictions{self.predictions_suffix}"

    def metric_key(self, assessment_method):
        """The metric an ``--assessment_method`` value selects the best checkpoint by."""
        return metrics_lib.metric_key(assessment_method)

    # -- data ---------------------------------------------------------------------------------------------------
    def sample_limit(self, is_training):
        """``max_train_samples`` / ``max_eval_samples`` as a slice end (None: everything)."""
        limit = self.options.max_train_samples if is_training else self.options.max_eval_samples
        return limit if limit > 0 else None

    def load(self, path, is_training):
        raise NotImplementedError

    # -- model --------------------------------------------------------------------------------------------------
    def build_model(self, config):
        raise NotImplementedError

    def loss_cell(self, model):
        raise NotImplementedError

    def summarize(self, sums, steps, world_size):
        """Training-log fields from the loss cell's other outputs summed over a window (its correct counts)."""
        return {}

    # -- evaluation ---------------------------------------------------------------------------------------------
    def evaluate(self, model, data, predictions_path=None):
        outputs = predict(model, data.columns, MODEL_INPUTS, self.options.eval_batch_size)
        return self.score(data, self.with_decoding(model, outputs, data), predictions_path)

    def with_decoding(self, model, outputs, data):
        """The model's outputs extended to the exported graph's (``output_names``)."""
        return outputs

    def score(self, data, outputs, predictions_path=None):
        """Metrics (and the predictions file) from the exported graph's outputs on ``data``."""
        raise NotImplementedError

    # -- raw text -----------------------------------------------------------------------------------------------
    def check_records(self, records):
        for i, record in enumerate(records):
            missing = [k for k in self.required_fields if not isinstance(record.get(k), str)]
            if missing:
                raise ValueError(f"record {i}: a {self.info.task_type} input needs the text field(s) {missing}")

    def encode_records(self, records):
        """``(columns, state)``: model input columns for raw-text records, and what ``answer`` needs."""
        raise NotImplementedError

    def answer(self, records, outputs, state):
        """One result dict per record from the outputs on ``encode_records``' columns."""
        raise NotImplementedError

    def window_stride(self, window_len):
        return self.options.window_stride or max(window_len // 2, 1)

    def input_columns(self, rows, segments):
        """Padded model input columns of token-id rows and their segment ids."""
        max_seq_len = self.info.max_seq_len
        return {"input_ids": pad_rows(rows, max_seq_len), "segment_ids": pad_rows(segments, max_seq_len),
                "input_mask": pad_rows([[1] * len(r) for r in rows], max_seq_len)}

    def label_record(self, label_id, probabilities):
        """A predicted label with its readable name (where the data's labels are numbers) and the probabilities."""
        label = self.info.labels[int(label_id)]
        record = {"label": self.info.label_descriptions.get(label, label)}
        if label in self.info.label_descriptions:
            record["raw_label"] = label
        record["probabilities"] = {self.info.label_descriptions.get(name, name): float(p)
                                   for name, p in zip(self.info.labels, probabilities)}
        return record

