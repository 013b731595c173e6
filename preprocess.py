"""Ascend 310 inference, step 1: a labelled dataset -> the .bin files that ascend310_infer/out/main reads.

    python preprocess.py --model_path export/msra_ner.mindir --eval_data_file_path dev.tsv --result_path ./preprocess_Result

Writes, for the exported model's task and shapes (from its sidecar ``<model>.json``), ``<task>_<k>.bin`` files of raw
little-endian int32 into ``00_data`` (input_ids), ``01_data`` (input_mask), ``02_data`` (token_type_id) and
``03_data`` (labels: [B] class ids; [B, S] token tag ids for NER; [B] unique ids for MRC), each holding the model's
batch of B rows (the last file padded with all-zero rows), and ``preprocess_meta.json``, which ``postprocess.py``
reads. Raw files (TSV, SQuAD JSON) are read as the fine-tuning scripts read them; ``--dataset_format mindrecord``
reads a MindRecord made by ``python -m src.finetune_task_reader``.
"""
import os
import shutil
import tempfile

from src.cli import add_flags, new_parser, run_cli
from src.data.mindrecord import check_schema
from src.fileio import write_json
from src.serving.ascend310 import META_FILE, write_bin_inputs
from src.serving.export import read_sidecar, sidecar_info, sidecar_path
from src.tasks.base import EvalOptions
from src.tasks.registry import build_task, label_map_of


def build_parser():
    parser = new_parser(None, "Dataset -> Ascend 310 input .bin files")
    add = parser.add_argument
    add_flags(parser, "model", "eval_data_file_path", "dataset_format", "schema_file_path", "eval_json_path",
              "label_map_file", "use_crf", "task_type", "debug",
              model={"required": True, "help": "the exported .mindir (its .json sidecar gives task, labels and "
                                               "shapes)"},
              eval_data_file_path={"required": True, "help": "labelled data: TSV, SQuAD JSON, or MindRecord"},
              label_map_file={"help": "label_map.json; checked against the model's labels"},
              use_crf={"help": "checked against the model"}, task_type={"help": "checked against the model"})
    add("--result_path", default="./preprocess_Result", help="where the .bin folders and preprocess_meta.json go")
    return parser


def check_model(args, task):
    info = task.info
    if args.task_type and args.task_type != info.task_type:
        raise ValueError(f"--task_type {args.task_type} but {args.model} is a {info.task_type} model")
    if args.use_crf is not None and task.has_crf_option and args.use_crf != info.use_crf:
        raise ValueError(f"--use_crf {args.use_crf} but {args.model} was exported with use_crf={info.use_crf}")
    if args.label_map_file:
        label_map_of(info, args.label_map_file)  # raises when its labels differ from the model's


def preprocess(argv=None):
    args = build_parser().parse_args(argv)
    sidecar = read_sidecar(args.model)
    info = sidecar_info(sidecar, sidecar_path(args.model))
    task = build_task(info, EvalOptions(dataset_format=args.dataset_format, eval_json_path=args.eval_json_path,
                                        schema_file=args.schema_file_path))
    check_model(args, task)
    result_path = os.path.abspath(args.result_path)
    if os.path.exists(result_path) and not os.path.isfile(os.path.join(result_path, META_FILE)):
        raise ValueError(f"{result_path} exists and is not an earlier preprocess.py output; choose another path")
    data = task.load(args.eval_data_file_path, is_training=False)
    if args.schema_file_path and args.dataset_format == "mindrecord":
        check_schema(args.schema_file_path, data.columns, args.eval_data_file_path)
    rows = data.columns["input_ids"]
    if rows.shape[1] != info.max_seq_len:
        raise ValueError(f"{args.eval_data_file_path}: rows of {rows.shape[1]} tokens, but {args.model} was exported "
                         f"for {info.max_seq_len}; convert the data with --max_seq_len {info.max_seq_len}")
    if task.reference_column not in data.columns:
        raise ValueError(f"{args.eval_data_file_path}: no {task.reference_column} column to score against")
    batch_size = sidecar["batch_size"] or 1

    parent = os.path.dirname(result_path)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-preprocess-", dir=parent)
    try:
        names = write_bin_inputs(data.columns, data.columns[task.reference_column], tmp_dir, info.task_type,
                                 batch_size)
        meta = {"model_path": os.path.abspath(args.model), "data_file": os.path.abspath(args.eval_data_file_path),
                "dataset_format": args.dataset_format, "schema_file": os.path.abspath(args.schema_file_path)
                if args.schema_file_path else "",
                "eval_json_path": os.path.abspath(args.eval_json_path) if args.eval_json_path else "",
                "num_examples": len(rows), "batch_size": batch_size, "files": names, "model": sidecar}
        write_json(meta, os.path.join(tmp_dir, META_FILE))
        if os.path.exists(result_path):
            shutil.rmtree(result_path)
        os.replace(tmp_dir, result_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"{meta['num_examples']} {info.task_type} rows of max_seq_len {info.max_seq_len} (the model's, from "
          f"{sidecar_path(args.model)}) from {args.eval_data_file_path} -> {len(names)} files of batch {batch_size} "
          f"in {result_path}")


def main(argv=None):
    return run_cli(preprocess, argv)


if __name__ == "__main__":
    main()
