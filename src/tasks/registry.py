"""The one registry of tasks: per-task defaults and label maps, and the task kinds.

Values follow the MindSpore model-zoo ERNIE scripts (which follow Paddle ERNIE 1.0's published recipes), with two
fixes: ChnSentiCorp has 2 labels (the seed trained it with 3), and the schedule comes from the real dataset size.
Every value is a default that a command-line flag overrides. Adding a task = one line in ``TASKS``; adding a kind =
one module with a ``Task`` subclass and one line in ``TASK_KINDS``.
"""
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

from ..data.clue import CLUE_CLASSIFICATION_LABEL_MAPS, CLUENER_LABEL_MAP
from ..data.common import read_label_map
from ..tokenizer import ErnieTokenizer
from .classification import ClassificationTask
from .mrc import MrcTask
from .ner import NerTask

TASK_KINDS = {task.kind: task for task in (ClassificationTask, NerTask, MrcTask)}


@dataclass
class TaskInfo:
    """What running a fine-tuned model needs besides its weights: ``task.json`` beside a checkpoint, and the task
    part of an export's sidecar."""
    task_type: str
    kind: str
    labels: list                       # label names by id; empty for span extraction
    max_seq_len: int
    vocab_file: str = "vocab.txt"      # relative to the folder of the file that holds this
    use_crf: bool = False
    max_query_len: Optional[int] = None
    doc_stride: Optional[int] = None
    label_descriptions: dict = field(default_factory=dict)  # label -> readable name where labels are numbers

    FIELDS = ("task_type", "kind", "labels", "max_seq_len", "vocab_file", "use_crf", "max_query_len", "doc_stride",
              "label_descriptions")

    def to_dict(self):
        return {name: value for name, value in asdict(self).items() if name in self.FIELDS}

    @classmethod
    def from_dict(cls, values, source):
        """Checks the fields (``source`` names the file in errors); keys other than ``FIELDS`` are ignored (an
        export sidecar has more)."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a JSON object describing the task")
        missing = [k for k in ("task_type", "kind", "max_seq_len") if values.get(k) is None]
        if missing:
            raise ValueError(f"{source}: missing {missing}")
        info = cls(**{name: values[name] for name in cls.FIELDS if values.get(name) is not None})
        if not isinstance(info.max_seq_len, int) or isinstance(info.max_seq_len, bool) or info.max_seq_len < 8:
            raise ValueError(f"{source}: max_seq_len must be an integer >= 8, got {info.max_seq_len!r}")
        task_class(info.kind, source).check_info(info, source)
        return info


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    max_seq_len: int
    learning_rate: float
    epoch_num: int
    batch_size: int
    assessment_method: str         # the metric that selects the best checkpoint
    data_dir: str                  # folder under $DATA_DIR as published in ERNIE's task_data archive
    files: dict = field(default_factory=dict)  # split -> file name
    label_map: dict = field(default_factory=dict)
    label_descriptions: dict = field(default_factory=dict)  # readable names where the data's labels are numbers
    max_query_len: int = 0
    doc_stride: int = 0

    @property
    def num_labels(self):
        return len(label_names(self.label_map))


_TSV = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
_SQUAD = _CLUE = {"train": "train.json", "dev": "dev.json", "test": "test.json"}
MSRA_TAGS = {"B-PER": 0, "I-PER": 1, "B-ORG": 2, "I-ORG": 3, "B-LOC": 4, "I-LOC": 5, "O": 6}

TASKS = {
    "chnsenticorp": TaskSpec("classification", 256, 5e-5, 10, 24, "accuracy", "chnsenticorp", _TSV, {"0": 0, "1": 1},
                             {"0": "negative", "1": "positive"}),
    # "contradiction" is the spelling of ERNIE's XNLI files, "contradictory" that of the XNLI-MT train file.
    "xnli": TaskSpec("classification", 512, 1e-4, 3, 64, "accuracy", "xnli", _TSV,
                     {"contradiction": 0, "contradictory": 0, "entailment": 1, "neutral": 2}),
    "dbqa": TaskSpec("classification", 512, 2e-5, 3, 64, "f1", "nlpcc-dbqa", _TSV, {"0": 0, "1": 1},
                     {"0": "not_answer", "1": "answer"}),
    "msra_ner": TaskSpec("ner", 256, 5e-5, 6, 16, "f1", "msra_ner", _TSV, MSRA_TAGS),
    "drcd": TaskSpec("mrc", 512, 5e-5, 3, 16, "f1", "drcd", _SQUAD, max_query_len=64, doc_stride=128),
    "cmrc": TaskSpec("mrc", 512, 3e-5, 3, 16, "f1", "cmrc2018", {"train": "train.json", "dev": "dev.json"},
                     max_query_len=64, doc_stride=128),
    # The CLUE benchmark's JSON-lines files (--assessment_method clue_benchmark writes its submission files);
    # defaults from CLUE's and CLUENER's baselines. CLUENER texts are at most 50 characters.
    "cluener": TaskSpec("ner", 64, 3e-5, 4, 24, "clue_benchmark", "cluener", _CLUE, CLUENER_LABEL_MAP),
    "tnews": TaskSpec("classification", 128, 2e-5, 3, 16, "clue_benchmark", "tnews", _CLUE,
                      CLUE_CLASSIFICATION_LABEL_MAPS["tnews"]),
    "iflytek": TaskSpec("classification", 128, 2e-5, 3, 16, "clue_benchmark", "iflytek", _CLUE,
                        CLUE_CLASSIFICATION_LABEL_MAPS["iflytek"]),
    "afqmc": TaskSpec("classification", 128, 2e-5, 3, 16, "clue_benchmark", "afqmc", _CLUE,
                      CLUE_CLASSIFICATION_LABEL_MAPS["afqmc"]),
}


def label_names(label_map, preferred=()):
    """Label names by id. Where a map gives aliases (XNLI's contradiction/contradictory), a ``preferred`` name wins,
    else the first."""
    names = {label_map[name]: name for name in preferred if name in label_map}
    for name, label_id in label_map.items():
        names.setdefault(label_id, name)
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"label ids must be 0..N-1, got {sorted(names)}")
    return [names[i] for i in range(len(names))]


def task_spec(task_type):
    if task_type not in TASKS:
        raise ValueError(f"unknown task {task_type!r}: choose one of {', '.join(TASKS)}")
    return TASKS[task_type]


def task_class(kind, source="task"):
    if kind not in TASK_KINDS:
        raise ValueError(f"{source}: unknown task kind {kind!r} (known: {', '.join(TASK_KINDS)})")
    return TASK_KINDS[kind]


def tasks_of_kind(kind):
    return [name for name, spec in TASKS.items() if spec.kind == kind]


def build_task(info, options=None, label_map=None):
    """The task object of ``info`` (its vocabulary read from ``info.vocab_file``; data read with ``label_map``, by
    default the info's labels and their registry aliases)."""
    return task_class(info.kind)(info, ErnieTokenizer(info.vocab_file), options, label_map or label_map_of(info))


def entry_script(task_type):
    """The seed's fine-tuning script of a task (the shell scripts ask this instead of keeping a table)."""
    return task_class(task_spec(task_type).kind).script


def default_task_info(task_type, max_seq_len=None, use_crf=False, max_query_len=None, doc_stride=None,
                      label_map=None, label_map_source="task default"):
    """The ``TaskInfo`` of a task before training: the registry's defaults, overridden where an argument is given."""
    spec = task_spec(task_type)
    label_map = dict(spec.label_map) if label_map is None else label_map
    try:
        labels = label_names(label_map, preferred=label_names(spec.label_map))
    except ValueError as err:
        raise ValueError(f"{label_map_source}: {err}") from None
    info = TaskInfo(task_type, spec.kind, labels, max_seq_len or spec.max_seq_len, use_crf=bool(use_crf),
                    max_query_len=max_query_len or spec.max_query_len or None,
                    doc_stride=doc_stride or spec.doc_stride or None,
                    label_descriptions={k: v for k, v in spec.label_descriptions.items() if k in labels})
    task_class(spec.kind).check_info(info, label_map_source)
    return info


def label_map_of(info, label_map_file=""):
    """The label -> id map to read data with: ``label_map_file`` (aliases allowed) or the info's labels, plus the
    registry's aliases of the same labels (XNLI's contradictory)."""
    if label_map_file:
        label_map = read_label_map(label_map_file)
        if label_names(label_map, preferred=info.labels) != list(info.labels):
            raise ValueError(f"{label_map_file}: labels {label_names(label_map)} differ from the model's {info.labels}")
        return label_map
    label_map = {label: i for i, label in enumerate(info.labels)}
    spec = TASKS.get(info.task_type)
    if spec and label_names(spec.label_map) == list(info.labels):
        label_map.update(spec.label_map)
    return label_map


def task_data_files(task_type, task_data_dir, split):
    """``(data file, label_map.json or "")`` of a split in ERNIE's task_data layout."""
    spec = task_spec(task_type)
    if split not in spec.files:
        raise ValueError(f"{task_type} has no {split} split (it has {sorted(spec.files)})")
    folder = os.path.join(task_data_dir, spec.data_dir)
    label_map = os.path.join(folder, "label_map.json")
    return os.path.join(folder, spec.files[split]), label_map if os.path.isfile(label_map) else ""
