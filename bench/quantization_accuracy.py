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

from src.inference import (OnnxRuntimeBackend, evaluate_outputs, export_model, load_eval_data, load_task_model,
                           model_columns, quantize_onnx, resolve_checkpoint)
from src.runtime import init_runtime

METRICS = ("accuracy", "f1", "exact_match")


def measure(path, columns, task, data, num_threads):
    backend = OnnxRuntimeBackend(path, num_threads)
    backend.run({name: array[:backend.batch_size] for name, array in columns.items()})  # warm-up
    started = time.perf_counter()
    outputs = backend.run(columns)
    seconds = time.perf_counter() - started
    return outputs, evaluate_outputs(task, data, outputs), len(columns["input_ids"]) / seconds


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
    fp32 = export_model(load_task_model(ckpt_file, info, config), info,
                        os.path.join(args.output_dir, info.task_type), "ONNX", args.batch_size)
    int8 = quantize_onnx(fp32)
    task, data = load_eval_data(info, args.eval_data_file_path)
    columns = model_columns(data.columns)

    rows = []
    for name, path in (("fp32", fp32), ("int8 dynamic", int8)):
        outputs, metrics, speed = measure(path, columns, task, data, args.num_threads)
        rows.append((name, path, outputs, metrics, speed))

    keys = [k for k in METRICS if k in rows[0][3]]
    print(f"{info.task_type}: {ckpt_file}, {len(columns['input_ids'])} rows of {args.eval_data_file_path}, "
          f"max_seq_len {info.max_seq_len}, batch {args.batch_size}, onnxruntime CPU, {args.num_threads} threads\n")
    print("| model | " + " | ".join(keys) + " | file MB | rows/s |")
    print("|---" * (len(keys) + 3) + "|")
    for name, path, _, metrics, speed in rows:
        values = " | ".join(f"{metrics[k]:.4f}" for k in keys)
        print(f"| {name} | {values} | {os.path.getsize(path) / 2 ** 20:.1f} | {speed:.1f} |")
    if info.kind == "classification":
        agreement = np.mean(rows[0][2][0].argmax(-1) == rows[1][2][0].argmax(-1))
        print(f"\nint8 predicts the fp32 label for {agreement:.2%} of the rows")


if __name__ == "__main__":
    main()
