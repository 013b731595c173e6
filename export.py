"""Export a fine-tuned ERNIE model to MINDIR (default), ONNX or AIR, with a JSON sidecar for the predictors.

    python export.py --ckpt_file output/chnsenticorp --file_name export/chnsenticorp [--file_format ONNX]

``--ckpt_file`` is a fine-tuning output folder (its ``<task>-best.ckpt``) or a ``.ckpt`` file; ``task.json`` and
``ernie_config.json`` beside it (written by the fine-tuning scripts) describe the model, or the flags do.
The graph takes ``input_ids, input_mask, token_type_id`` (int32 [batch_size, max_seq_len]) and returns the task's
outputs: ``logits``; ``emissions`` (and ``tags`` from the CRF's Viterbi decoder); ``start_logits, end_logits``.
Beside the model: ``<model file>.json`` (task, labels, shapes, outputs) and ``vocab.txt``.
"""
import argparse
import logging

from src.inference import (DYNAMIC_SHAPES, export_model, load_task_model, quantize_onnx, resolve_checkpoint)
from src.runtime import init_runtime
from src.cli import str2bool
from src.tasks import TASKS


def build_parser():
    parser = argparse.ArgumentParser(description="Export a fine-tuned ERNIE model (MINDIR, ONNX or AIR)")
    add = parser.add_argument
    add("--ckpt_file", required=True, help="fine-tuned .ckpt, or the fine-tuning output folder")
    add("--file_name", default="ernie_finetune", help="output path without suffix")
    add("--file_format", default="MINDIR", choices=["MINDIR", "ONNX", "AIR"], help="AIR needs an Ascend device")
    add("--task_type", default=None, choices=list(TASKS), help="default: task.json's")
    add("--batch_size", type=int, default=1)
    add("--max_seq_len", type=int, default=None, help="default: task.json's, else the task's")
    add("--dynamic_shape", default="none", choices=DYNAMIC_SHAPES,
        help="MINDIR only: leave the batch size (batch) or batch and sequence length (batch_seq) open")
    add("--number_labels", "--num_class", dest="num_class", type=int, default=None,
        help="checked against task.json's labels")
    add("--use_crf", type=str2bool, default=None, help="NER: the checkpoint has a CRF head (default: task.json's)")
    add("--config", default=None, help="ernie_config.json or a preset (default: the one beside the checkpoint)")
    add("--vocab_file", default=None, help="vocab.txt (default: task.json's, else the one beside the checkpoint)")
    add("--max_query_len", type=int, default=None, help="MRC (default: task.json's)")
    add("--doc_stride", type=int, default=None, help="MRC (default: task.json's)")
    add("--quantize", default="none", choices=["none", "int8"],
        help="ONNX only: also write <file_name>.int8.onnx, dynamically quantized for CPU serving")
    add("--device_target", default="CPU", choices=["Ascend", "GPU", "CPU"])
    add("--device_id", type=int, default=0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("src").setLevel(logging.INFO)
    if args.quantize != "none" and args.file_format != "ONNX":
        raise SystemExit("--quantize int8 applies to ONNX exports: add --file_format ONNX")
    if args.file_format == "AIR" and args.device_target != "Ascend":
        raise SystemExit("AIR export needs an Ascend device with CANN installed (--device_target Ascend); elsewhere "
                         "export MINDIR (the Ascend 310 app reads it) or ONNX")
    try:
        ckpt_file, info, config = resolve_checkpoint(
            args.ckpt_file, task_type=args.task_type, config=args.config, vocab_file=args.vocab_file,
            num_class=args.num_class, use_crf=args.use_crf, max_seq_len=args.max_seq_len,
            max_query_len=args.max_query_len, doc_stride=args.doc_stride)
        init_runtime(args.device_target, args.device_id if args.device_target != "CPU" else None)
        model = load_task_model(ckpt_file, info, config)
        path = export_model(model, info, args.file_name, args.file_format, args.batch_size, args.dynamic_shape)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"export failed: {err}") from None
    print(f"exported {ckpt_file} ({info.task_type}, outputs {', '.join(info.output_names)}) to {path}")
    if args.quantize == "int8":
        print(f"quantized to {quantize_onnx(path)}")
    return path


if __name__ == "__main__":
    main()
