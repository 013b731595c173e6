"""GFLOP/s of one Dense-sized GEMM on this CPU: MindSpore's float32 MatMul vs the bf16 custom operators
(src/kernels/bf16_matmul.py) vs torch fp32 / bf16, each in its own process with the same thread count.

    python bench/gemm_probe.py --m 1024 --k 768 --n 3072 --threads 2 [--repeat 20]

Rows: ms-fp32 (``x @ w.T + b`` as ops.MatMul + BiasAdd in a GRAPH_MODE cell), ms-bf16-linear (the same through
ErnieBf16Linear), ms-bf16-grad (its backward operator: dX and dW, two GEMMs, and db), torch-fp32, torch-bf16. Prints
a markdown table with the median and minimum time and GFLOP/s of each, and the machine's busiest foreign process (a
noisy neighbour only ever adds time, so on a shared machine the minimum is the better estimate).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
ROWS = ("ms-fp32", "ms-bf16-linear", "ms-bf16-grad", "torch-fp32", "torch-bf16")


def _median_s(call, repeat):
    call()
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _mindspore_row(row, x, w, b, dy, repeat):
    import mindspore as ms
    from mindspore import Tensor, nn, ops
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    from src.kernels import bf16_matmul

    class Call(nn.Cell):
        def __init__(self, op):
            super().__init__()
            self.op = op

        def construct(self, *inputs):
            return self.op(*inputs)

    class Fp32Linear(nn.Cell):
        def __init__(self):
            super().__init__()
            self.matmul = ops.MatMul(transpose_b=True)
            self.bias_add = ops.BiasAdd()

        def construct(self, a, weight, bias):
            return self.bias_add(self.matmul(a, weight), bias)

    cell, inputs = {
        "ms-fp32": (Fp32Linear(), (x, w, b)),
        "ms-bf16-linear": (Call(bf16_matmul.linear_op()), (x, w, b)),
        "ms-bf16-grad": (Call(bf16_matmul.linear_grad_op()), (dy, x, w)),  # dX = dY W, dW = dY^T X, db
    }[row]
    tensors = [Tensor(a) for a in inputs]

    def call():
        out = cell(*tensors)
        return (out[0] if isinstance(out, tuple) else out).asnumpy()  # one operator makes all of the gradient's outputs
    return _median_s(call, repeat)


def _torch_row(row, x, w, b, threads, repeat):
    import torch
    torch.set_num_threads(threads)
    x, w, b = (torch.from_numpy(a) for a in (x, w, b))
    if row == "torch-fp32":
        return _median_s(lambda: torch.nn.functional.linear(x, w, b), repeat)

    def call():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.nn.functional.linear(x, w, b).float()
    return _median_s(call, repeat)


def worker(args):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.m, args.k)).astype(np.float32)
    w = rng.normal(size=(args.n, args.k)).astype(np.float32)
    b = rng.normal(size=args.n).astype(np.float32)
    dy = rng.normal(size=(args.m, args.n)).astype(np.float32)
    if args.worker.startswith("ms-"):
        seconds = _mindspore_row(args.worker, x, w, b, dy, args.repeat)
    else:
        seconds = _torch_row(args.worker, x, w, b, args.threads, args.repeat)
    flops = 2 * args.m * args.k * args.n * (2 if args.worker == "ms-bf16-grad" else 1)  # the gradient: two GEMMs
    print("GEMM " + json.dumps({"row": args.worker, "median_s": seconds[0], "min_s": seconds[1],
                                "gflops": flops / seconds[0] / 1e9, "best_gflops": flops / seconds[1] / 1e9}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=1024)
    parser.add_argument("--k", type=int, default=768)
    parser.add_argument("--n", type=int, default=3072)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        from workers import limit_threads
        limit_threads(args.threads)
        return worker(args)
    from run_benchmarks import LoadMonitor
    print(f"| GEMM [{args.m},{args.k}] x [{args.k},{args.n}], {args.threads} threads | median ms | GFLOP/s | "
          f"min ms | GFLOP/s at min | busiest foreign process % |\n|---|---|---|---|---|---|")
    monitor = LoadMonitor()
    for row in args.rows.split(","):
        command = [sys.executable, os.path.abspath(__file__), "--worker", row] + (argv or sys.argv[1:])
        with monitor:
            done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"))
        lines = [line for line in done.stdout.splitlines() if line.startswith("GEMM ")]
        if not lines:
            print(f"| {row} | error: {(done.stderr or done.stdout).strip().splitlines()[-1:]} | | | | |")
            continue
        result = json.loads(lines[-1][5:])
        print(f"| {row} | {1000 * result['median_s']:.1f} | {result['gflops']:.0f} | {1000 * result['min_s']:.1f} | "
              f"{result['best_gflops']:.0f} | {monitor.busiest():.0f} |", flush=True)


if __name__ == "__main__":
    main()
