"""Ascend 310 inference, step 3: the app's result .bin files -> the task metric, printed as the seed printed it.

    python postprocess.py --preprocess_path ./preprocess_Result --result_dir ./result_files

``result_dir/<task>_<k>_<j>.bin`` is output j of input file k (float32 logits / emissions, int32 CRF tags; MRC
start and end logits), as ascend310_infer/out/main and its stand-in ``python -m src.inference`` write them.
The dataset named in ``preprocess_meta.json`` is read again (as the fine-tuning scripts read it) for what scoring
needs beyond the labels: NER character alignments, MRC answer texts and windows.
"""
import os

import numpy as np

from src.assessment_method import format_metrics
from src.cli import add_flags, new_parser, run_cli
from src.fileio import read_json
from src.serving.ascend310 import BIN_LABEL_DIR, META_FILE, read_bin_outputs
from src.serving.export import output_specs, sidecar_info
from src.tasks.base import EvalOptions
from src.tasks.registry import build_task


def build_parser():
    parser = new_parser(None, "Ascend 310 result .bin files -> metric")
    parser.add_argument("--preprocess_path", default="./preprocess_Result", help="the folder preprocess.py wrote")
    parser.add_argument("--result_dir", default="./result_files", help="the folder the 310 app wrote")
    add_flags(parser, "debug")
    return parser


def read_labels(folder, names, num_rows, like):
    rows = [np.fromfile(os.path.join(folder, name), dtype="<i4").reshape((-1,) + like.shape[1:]) for name in names]
    return np.concatenate(rows)[:num_rows]


def postprocess(argv=None):
    args = build_parser().parse_args(argv)
    meta_path = os.path.join(args.preprocess_path, META_FILE)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"{meta_path}: not found; run preprocess.py first")
    meta = read_json(meta_path)
    sidecar = meta["model"]
    info = sidecar_info(sidecar, meta_path)
    task = build_task(info, EvalOptions(dataset_format=meta["dataset_format"], eval_json_path=meta["eval_json_path"],
                                        schema_file=meta.get("schema_file", "")))
    data = task.load(meta["data_file"], is_training=False)
    num_rows, names = meta["num_examples"], meta["files"]
    expected = data.columns[task.reference_column]
    stored = read_labels(os.path.join(args.preprocess_path, BIN_LABEL_DIR), names, num_rows, expected)
    if len(data.columns["input_ids"]) != num_rows or not np.array_equal(stored, expected):
        raise ValueError(f"{meta['data_file']} no longer gives the rows preprocess.py wrote to {args.preprocess_path}; "
                         f"run preprocess.py again")
    outputs = read_bin_outputs(args.result_dir, names, output_specs(info, None, info.max_seq_len), num_rows)
    metrics = task.score(data, outputs)
    print(format_metrics(metrics))
    return metrics


def main(argv=None):
    return run_cli(postprocess, argv)


if __name__ == "__main__":
    main()
