"""Ascend 310 inference, step 3: the app's result .bin files -> the task metric, printed as the seed printed it.

    python postprocess.py --preprocess_path ./preprocess_Result --result_dir ./result_files

``result_dir/<task>_<k>_<j>.bin`` is output j of input file k (float32 logits / emissions, int32 CRF tags; MRC
start and end logits), as ascend310_infer/out/main and its stand-in ``python -m src.inference`` write them.
The dataset named in ``preprocess_meta.json`` is read again (as the fine-tuning scripts read it) for what scoring
needs beyond the labels: NER character alignments, MRC answer texts and windows.
"""
import argparse
import os

import numpy as np

from src.assessment_method import format_metrics
from src.fileio import read_json
from src.inference import (BIN_LABEL_DIR, TaskInfo, evaluate_outputs, load_eval_data, output_specs,
                           read_bin_outputs)
from preprocess import LABEL_COLUMNS, META_FILE


def build_parser():
    parser = argparse.ArgumentParser(description="Ascend 310 result .bin files -> metric")
    parser.add_argument("--preprocess_path", default="./preprocess_Result", help="the folder preprocess.py wrote")
    parser.add_argument("--result_dir", default="./result_files", help="the folder the 310 app wrote")
    return parser


def read_labels(folder, names, num_rows, like):
    rows = [np.fromfile(os.path.join(folder, name), dtype="<i4").reshape((-1,) + like.shape[1:]) for name in names]
    return np.concatenate(rows)[:num_rows]


def main(argv=None):
    args = build_parser().parse_args(argv)
    meta_path = os.path.join(args.preprocess_path, META_FILE)
    if not os.path.isfile(meta_path):
        raise SystemExit(f"{meta_path}: not found; run preprocess.py first")
    meta = read_json(meta_path)
    info = TaskInfo.from_dict(meta["model"], meta_path)
    task, data = load_eval_data(info, meta["data_file"], meta["dataset_format"], meta["eval_json_path"])
    num_rows, names = meta["num_examples"], meta["files"]
    expected = data.columns[LABEL_COLUMNS[info.kind]]
    stored = read_labels(os.path.join(args.preprocess_path, BIN_LABEL_DIR), names, num_rows, expected)
    if len(data.columns["input_ids"]) != num_rows or not np.array_equal(stored, expected):
        raise SystemExit(f"{meta['data_file']} no longer gives the rows preprocess.py wrote to {args.preprocess_path}; "
                         f"run preprocess.py again")
    outputs = read_bin_outputs(args.result_dir, names, output_specs(info, None, info.max_seq_len), num_rows)
    metrics = evaluate_outputs(task, data, outputs)
    print(format_metrics(metrics))
    return metrics


if __name__ == "__main__":
    main()
