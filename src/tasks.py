"""Per-task defaults, in one declarative table.

Values follow the MindSpore model-zoo ERNIE scripts (which follow Paddle ERNIE 1.0's published recipes), with two
fixes: ChnSentiCorp has 2 labels (the seed trained it with 3), and the schedule comes from the real dataset size.
Every value is a default that a command-line flag overrides.
"""
from dataclasses import dataclass, field

from .finetune_task_reader import DEFAULT_LABEL_MAPS


@dataclass(frozen=True)
class TaskSpec:
    kind: str                      # "classification", "ner" or "mrc"
    num_labels: int
    max_seq_len: int
    learning_rate: float
    epoch_num: int
    batch_size: int
    assessment_method: str         # the metric that selects the best checkpoint
    data_dir: str                  # folder under $DATA_DIR as published in ERNIE's task_data archive
    files: dict = field(default_factory=dict)  # split -> file name
    label_map: dict = field(default_factory=dict)
    max_query_len: int = 0
    doc_stride: int = 0


_TSV = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}

TASKS = {
    "chnsenticorp": TaskSpec("classification", 2, 256, 5e-5, 10, 24, "accuracy", "chnsenticorp", _TSV,
                             DEFAULT_LABEL_MAPS["chnsenticorp"]),
    "xnli": TaskSpec("classification", 3, 512, 1e-4, 3, 64, "accuracy", "xnli", _TSV, DEFAULT_LABEL_MAPS["xnli"]),
    "dbqa": TaskSpec("classification", 2, 512, 2e-5, 3, 64, "f1", "nlpcc-dbqa", _TSV, DEFAULT_LABEL_MAPS["dbqa"]),
    "msra_ner": TaskSpec("ner", 7, 256, 5e-5, 6, 16, "f1", "msra_ner", _TSV, DEFAULT_LABEL_MAPS["msra_ner"]),
    "drcd": TaskSpec("mrc", 2, 512, 5e-5, 3, 16, "f1", "drcd",
                     {"train": "train.json", "dev": "dev.json", "test": "test.json"}, max_query_len=64, doc_stride=128),
    "cmrc": TaskSpec("mrc", 2, 512, 3e-5, 3, 16, "f1", "cmrc2018",
                     {"train": "train.json", "dev": "dev.json"}, max_query_len=64, doc_stride=128),
}


def label_names(label_map):
    """Label names by id; where a map gives aliases (XNLI's contradictory/contradiction) the first name wins."""
    names = {}
    for name, label_id in label_map.items():
        names.setdefault(label_id, name)
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"label ids must be 0..N-1, got {sorted(names)}")
    return [names[i] for i in range(len(names))]


def tasks_of_kind(kind):
    return [name for name, spec in TASKS.items() if spec.kind == kind]


_ENTRY_SCRIPTS = {"classification": "run_ernie_classifier.py", "ner": "run_ernie_ner.py", "mrc": "run_ernie_mrc.py"}


def entry_script(task_type):
    """The run_ernie_*.py script that fine-tunes and evaluates ``task_type``, from the task's kind."""
    if task_type not in TASKS:
        raise ValueError(f"unknown task '{task_type}': choose {', '.join(TASKS)}")
    return _ENTRY_SCRIPTS[TASKS[task_type].kind]
