"""Ascend 310 inference, step 1: a labelled dataset -> the .bin files that ascend310_infer/out/main reads.

    python preprocess.py --model_path export/msra_ner.mindir --eval_data_file_path dev.tsv --result_path ./preprocess_Result

Writes, for the exported model's task and shapes (from its sidecar ``<model>.json``), ``<task>_<k>.bin`` files of raw
little-endian int32 into ``00_data`` (input_ids), ``01_data`` (input_mask), ``02_data`` (token_type_id) and
``03_data`` (labels: [B] class ids; [B, S] token tag ids for NER; [B] unique ids for MRC), each holding the model's
batch of B rows (the last file padded with all-zero rows), and ``preprocess_meta.json``, which ``postprocess.py``
reads. Raw files (TSV, SQuAD JSON) are read as the fine-tuning scripts read them; ``--dataset_format mindrecord``
reads a MindRecord made by ``src/finetune_task_reader.py``.
"""
import argparse
import os
import shutil
import tempfile

from src.cli import str2bool
from src.fileio import write_json
from src.finetune_task_reader import InputError, check_schema, read_label_map
from src.inference import (TaskInfo, load_eval_data, model_columns, read_sidecar, sidecar_path, write_bin_inputs)
from src.tasks import label_names

META_FILE = "preprocess_meta.json"
LABEL_COLUMNS = {"classification": "label_ids", "ner": "label_ids", "mrc": "unique_ids"}


def build_parser():
    parser = argparse.ArgumentParser(description="Dataset -> Ascend 310 input .bin files")
    add = parser.add_argument
    add("--model_path", required=True, help="the exported .mindir (its .json sidecar gives task, labels and shapes)")
    add("--eval_data_file_path", required=True, help="labelled data: TSV, SQuAD JSON, or MindRecord")
    add("--dataset_format", default="raw", choices=["raw", "mindrecord"])
    add("--schema_file_path", default="", help="MindRecord: JSON schema whose columns the data must have")
    add("--eval_json_path", default="", help="MRC from MindRecord: the SQuAD JSON it was made from")
    add("--label_map_config", default="", help="label_map.json; checked against the model's labels")
    add("--use_crf", type=str2bool, default=None, help="checked against the model")
    add("--task_type", default=None, help="checked against the model")
    add("--result_path", default="./preprocess_Result")
    return parser


def check_model(args, info):
    if args.task_type and args.task_type != info.task_type:
        raise SystemExit(f"--task_type {args.task_type} but {args.model_path} is a {info.task_type} model")
    if args.use_crf is not None and info.kind == "ner" and args.use_crf != info.use_crf:
        raise SystemExit(f"--use_crf {args.use_crf} but {args.model_path} was exported with use_crf={info.use_crf}")
    if args.label_map_config:
        try:
            labels = label_names(read_label_map(args.label_map_config))
        except ValueError as err:
            raise SystemExit(f"{args.label_map_config}: {err}") from None
        if labels != info.labels:
            raise SystemExit(f"{args.label_map_config}: labels {labels} differ from the model's {info.labels}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        sidecar = read_sidecar(args.model_path)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(str(err)) from None
    info = TaskInfo.from_dict(sidecar, sidecar_path(args.model_path))
    check_model(args, info)
    task, data = load_eval_data(info, args.eval_data_file_path, args.dataset_format, args.eval_json_path)
    if args.schema_file_path:
        try:
            check_schema(args.schema_file_path, data.columns, args.eval_data_file_path)
        except InputError as err:
            raise SystemExit(str(err)) from None
    label_column = LABEL_COLUMNS[info.kind]
    if label_column not in data.columns:
        raise SystemExit(f"{args.eval_data_file_path}: no {label_column} column to score against")
    batch_size = sidecar["batch_size"] or 1

    result_path = os.path.abspath(args.result_path)
    if os.path.exists(result_path) and not os.path.isfile(os.path.join(result_path, META_FILE)):
        raise SystemExit(f"{result_path} exists and is not an earlier preprocess.py output; choose another path")
    parent = os.path.dirname(result_path)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-preprocess-", dir=parent)
    try:
        names = write_bin_inputs(model_columns(data.columns), data.columns[label_column], tmp_dir, info.task_type, batch_size)
        meta = {"model_path": os.path.abspath(args.model_path), "data_file": os.path.abspath(args.eval_data_file_path),
                "dataset_format": args.dataset_format,
                "eval_json_path": os.path.abspath(args.eval_json_path) if args.eval_json_path else "",
                "num_examples": len(data.columns["input_ids"]), "batch_size": batch_size, "files": names,
                "model": sidecar}
        write_json(meta, os.path.join(tmp_dir, META_FILE))
        if os.path.exists(result_path):
            shutil.rmtree(result_path)
        os.replace(tmp_dir, result_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"{meta['num_examples']} {info.task_type} rows from {args.eval_data_file_path} -> {len(names)} files of "
          f"batch {batch_size} in {result_path}")


if __name__ == "__main__":
    main()
