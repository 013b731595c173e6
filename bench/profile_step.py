"""Where our fine-tuning step spends its time: MindSpore's profiler over the bench's training step, CPU time per
operator type.

    python bench/profile_step.py --size base --compute_dtype bfloat16 [--steps 2 --batch 8 --seq_len 128]

Builds the step exactly as ``workers.py ms-train`` (``-bf16`` row: bf16 GEMM operators and the fused CPU kernels),
runs two untimed steps, then ``--steps`` steps under ``mindspore.Profiler`` (its files go to ``--output_dir``), and
prints a markdown table: milliseconds per step and share of the summed operator time for each operator type. The sum
counts each operator's own time, so it can exceed the wall-clock where operators overlap, and the profiler itself
adds a little to every operator.
"""
import argparse
import csv
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))


def operator_table(csv_path, steps, top):
    """Rows ``(op_type, ms per step, share, calls per step)`` from the profiler's cpu_op_type_info CSV."""
    with open(csv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = sum(float(r["total_compute_time"]) for r in rows)
    rows.sort(key=lambda r: -float(r["total_compute_time"]))
    return total / steps, [(r["op_type"], float(r["total_compute_time"]) / steps,
                            float(r["total_compute_time"]) / total, r["execution_frequency(per-step)"])
                           for r in rows[:top]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="base", help="a model size of src.ernie_model.load_config")
    parser.add_argument("--compute_dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=12, help="operator types shown")
    parser.add_argument("--output_dir", default=os.path.join(ROOT, "bench", "work", "profile"))
    args = parser.parse_args(argv)
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise SystemExit(f"error: --output_dir {args.output_dir} is a file; give a folder")

    from mindspore import Profiler
    import workers
    from run_benchmarks import write_configs

    write_configs([args.size], args.output_dir)
    setup = argparse.Namespace(config=os.path.join(args.output_dir, f"{args.size}.json"), batch=args.batch,
                               seq_len=args.seq_len)
    step, batch = workers.ms_train_step(setup, args.compute_dtype, fused_kernels=args.compute_dtype == "bfloat16")
    for _ in range(2):
        step(*batch)[0].asnumpy()
    profiler = Profiler(output_path=args.output_dir)
    started = time.perf_counter()
    for _ in range(args.steps):
        step(*batch)[0].asnumpy()
    wall = (time.perf_counter() - started) / args.steps
    profiler.stop()
    profiler.analyse()
    found = sorted(glob.glob(os.path.join(args.output_dir, "*", "FRAMEWORK", "cpu_op_type_info_0.csv")),
                   key=os.path.getmtime)
    if not found:
        raise SystemExit(f"error: the profiler wrote no cpu_op_type_info_0.csv under {args.output_dir}")
    total, rows = operator_table(found[-1], args.steps, args.top)
    print(f"{args.size}, {args.compute_dtype}, batch {args.batch} x {args.seq_len}: {1000 * wall:.0f} ms per step "
          f"under the profiler, operator time {total:.0f} ms per step")
    print("| operator type | ms per step | share | calls per step |\n|---|---|---|---|")
    for op_type, ms_per_step, share, calls in rows:
        print(f"| {op_type} | {ms_per_step:.1f} | {100 * share:.1f}% | {calls} |")


if __name__ == "__main__":
    main()
