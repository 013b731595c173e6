"""Accuracy, size and speed of the dynamically quantized int8 ONNX model against the fp32 ONNX model, on labelled
data, with onnxruntime on CPU. Prints a Markdown table.

    PYTHONPATH=. python bench/quantization_accuracy.py --model output/chnsenticorp \\
        --eval_data_file_path ../shared/data/chnsenticorp_ernie/dev.tsv --output_dir /tmp/quantization

``--model`` is a fine-tuning output folder (or .ckpt with task.json beside it); both ONNX files are exported into
``--output_dir`` with ``--batch_size`` rows per call. Metrics are those of the fine-tuning scripts' evaluation.
"""
import argparse
import os
import time

import numpy as np

from src.runtime import init_runtime
from src.serving.export import export_model, quantize_onnx
from src.serving.runtime import OnnxRuntimeBackend, load_task_model, resolve_checkpoint
from src.tasks.registry import build_task

METRICS = ("accuracy", "f1", "exact_match")


def measure(path, task, data, num_threads):
    columns = data.columns
    backend = OnnxRuntimeBackend(path, num_threads)
    backend.run({name: array[:backend.batch_size] for name, array in columns.items()})  # warm-up
    started = time.perf_counter()
    outputs = backend.run(columns)
    seconds = time.perf_counter() - started
    return outputs, task.score(data, outputs), len(columns["input_ids"]) / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="fine-tuning output folder or .ckpt")
    parser.add_argument("--eval_data_file_path", required=True)
    parser.add_argument("--output_dir", required=True, help="where the fp32 and int8 ONNX files are written")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_seq_len", type=int, default=None, help="default: the checkpoint's task.json")
    parser.add_argument("--num_threads", type=int, default=2)
    args = parser.parse_args(argv)

    ckpt_file, info, config = resolve_checkpoint(args.model, max_seq_len=args.max_seq_len)
    init_runtime("CPU")
    task = build_task(info)
    fp32 = export_model(load_task_model(task, ckpt_file, config), info,
                        os.path.join(args.output_dir, info.task_type), "ONNX", args.batch_size)
    int8 = quantize_onnx(fp32)
    data = task.load(args.eval_data_file_path, is_training=False)
    columns = data.columns

    rows = []
    for name, path in (("fp32", fp32), ("int8 dynamic", int8)):
        outputs, metrics, speed = measure(path, task, data, args.num_threads)
        rows.append((name, path, outputs, metrics, speed))

    keys = [k for k in METRICS if k in rows[0][3]]
    print(f"{info.task_type}: {ckpt_file}, {len(columns['input_ids'])} rows of {args.eval_data_file_path}, "
          f"max_seq_len {info.max_seq_len}, batch {args.batch_size}, onnxruntime CPU, {args.num_threads} threads\n")
    print("| model | " + " | ".join(keys) + " | file MB | rows/s |")
    print("|---" * (len(keys) + 3) + "|")
    for name, path, _, metrics, speed in rows:
        values = " | ".join(f"{metrics[k]:.4f}" for k in keys)
        print(f"| {name} | {values} | {os.path.getsize(path) / 2 ** 20:.1f} | {speed:.1f} |")
    agreement = np.mean(rows[0][2][0].argmax(-1) == rows[1][2][0].argmax(-1))  # labels, tags or span starts
    print(f"\nint8 predicts the fp32 argmax of the first output for {agreement:.2%} of the rows")


if __name__ == "__main__":
    main()
