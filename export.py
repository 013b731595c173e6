"""Export a fine-tuned ERNIE model to MINDIR (default), ONNX or AIR, with a JSON sidecar for the predictors.

    python export.py --ckpt_file output/chnsenticorp --file_name export/chnsenticorp [--file_format ONNX]

``--ckpt_file`` is a fine-tuning output folder (its ``<task>-best.ckpt``) or a ``.ckpt`` file; ``task.json`` and
``ernie_config.json`` beside it (written by the fine-tuning scripts) describe the model, or the flags do.
The graph takes ``input_ids, input_mask, token_type_id`` (int32 [batch_size, max_seq_len]) and returns the task's
outputs: ``logits``; ``emissions`` (and ``tags`` from the CRF's Viterbi decoder); ``start_logits, end_logits``.
Beside the model: ``<model file>.json`` (task, labels, shapes, outputs) and ``vocab.txt``.
"""
import logging

from src.cli import add_flags, new_parser, run_cli
from src.runtime import init_runtime
from src.serving.export import DYNAMIC_SHAPES, export_model, onnx_quantizer, output_names, quantize_onnx
from src.serving.runtime import load_task_model, resolve_checkpoint
from src.tasks.registry import TASKS, build_task
from src.tokenizer import check_vocab_fits


def build_parser():
    parser = new_parser(None, "Export a fine-tuned ERNIE model (MINDIR, ONNX or AIR) with its sidecar JSON")
    add = parser.add_argument
    add_flags(parser, "model", model={"required": True, "help": "fine-tuned .ckpt, or the fine-tuning output folder"})
    add("--file_name", default="ernie_finetune", help="output path without suffix")
    add("--file_format", default="MINDIR", choices=["MINDIR", "ONNX", "AIR"], help="AIR needs an Ascend device")
    add_flags(parser, "task_type", task_type={"choices": list(TASKS), "help": "checked against task.json; needed "
                                                                              "without one"})
    add("--batch_size", type=int, default=1, help="the exported graph's batch size")
    add_flags(parser, "max_seq_len")
    add("--dynamic_shape", default="none", choices=DYNAMIC_SHAPES,
        help="MINDIR: leave the batch (and sequence) size open")
    add_flags(parser, "num_class", "use_crf", "config", "vocab_file", "max_query_len", "doc_stride")
    add("--quantize", default="none", choices=["none", "int8"],
        help="ONNX: also write a dynamically quantized int8 copy (needs the onnx package)")
    add_flags(parser, "device_target", "device_id", "debug", device_target={"default": "CPU"})
    return parser


def export(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("src").setLevel(logging.INFO)
    if args.quantize != "none" and args.file_format != "ONNX":
        raise ValueError("--quantize int8 applies to ONNX exports: add --file_format ONNX")
    if args.quantize == "int8":
        onnx_quantizer()  # raises, naming the package to install, before anything is exported
    if args.file_format == "AIR" and args.device_target != "Ascend":
        raise ValueError("AIR export needs an Ascend device with CANN installed (--device_target Ascend); elsewhere "
                         "export MINDIR (the Ascend 310 app reads it) or ONNX")
    ckpt_file, info, config = resolve_checkpoint(
        args.model, task_type=args.task_type, config=args.config, vocab_file=args.vocab_file,
        num_class=args.num_class, use_crf=args.use_crf, max_seq_len=args.max_seq_len,
        max_query_len=args.max_query_len, doc_stride=args.doc_stride)
    task = build_task(info)
    check_vocab_fits(task.tokenizer, config.vocab_size, ckpt_file)
    init_runtime(args.device_target, args.device_id if args.device_target != "CPU" else None)
    path = export_model(load_task_model(task, ckpt_file, config), info, args.file_name, args.file_format,
                        args.batch_size, args.dynamic_shape)
    print(f"exported {ckpt_file} ({info.task_type}, outputs {', '.join(output_names(info))}) to {path}")
    if args.quantize == "int8":
        print(f"quantized to {quantize_onnx(path)}")
    return path


def main(argv=None):
    return run_cli(export, argv)


if __name__ == "__main__":
    main()
