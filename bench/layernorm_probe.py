"""Median time of LayerNorm over the last axis of a [rows, hidden] float32 tensor, forward and forward + backward:
MindSpore 2.10's ops.LayerNorm (GRAPH_MODE cell, as src/layers.LayerNorm), the fused custom operator of
src/kernels/layer_norm.py (``fused-*``) and torch.nn.functional.layer_norm, each in
its own process with the same thread count. The minimum is
the better estimate on a shared machine (a neighbour only ever adds time).

    python bench/layernorm_probe.py --rows 4096 --hidden 768 --threads 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
ROWS = ("ms-forward", "ms-backward", "fused-forward", "fused-backward", "torch-forward", "torch-backward")


def _median_s(call, repeat):
    for _ in range(3):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def worker(args):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, args.hidden)).astype(np.float32)
    dy = rng.normal(size=(args.rows, args.hidden)).astype(np.float32)
    gamma = rng.normal(size=args.hidden).astype(np.float32)
    beta = rng.normal(size=args.hidden).astype(np.float32)
    if args.worker.startswith(("ms-", "fused-")):
        import mindspore as ms
        from mindspore import Tensor, nn, ops
        ms.set_device("CPU")
        ms.set_context(mode=ms.GRAPH_MODE)

        from src.kernels.layer_norm import FusedLayerNorm

        class Norm(nn.Cell):
            def __init__(self):
                super().__init__()
                self.norm = (FusedLayerNorm(1e-5) if args.worker.startswith("fused-") else
                             ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5))

            def construct(self, x, gamma, beta):
                return self.norm(x, gamma, beta)[0]

        class Weighted(nn.Cell):
            def __init__(self):
                super().__init__()
                self.norm = Norm()

            def construct(self, x, gamma, beta, dy):
                return ops.reduce_sum(self.norm(x, gamma, beta) * dy)

        inputs = [Tensor(a) for a in (x, gamma, beta, dy)]
        if args.worker.endswith("-forward"):
            cell = Norm()
            seconds = _median_s(lambda: cell(*inputs[:3]).asnumpy(), args.repeat)
        else:
            grad = ops.GradOperation(get_all=True)(Weighted())
            seconds = _median_s(lambda: grad(*inputs)[0].asnumpy(), args.repeat)
    else:
        import torch
        torch.set_num_threads(args.threads)
        x, gamma, beta, dy = (torch.from_numpy(a) for a in (x, gamma, beta, dy))
        if args.worker == "torch-forward":
            def call():
                with torch.inference_mode():
                    return torch.nn.functional.layer_norm(x, (args.hidden,), gamma, beta, 1e-5).numpy()
        else:
            leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]

            def call():
                out = torch.nn.functional.layer_norm(leaves[0], (args.hidden,), leaves[1], leaves[2], 1e-5)
                return torch.autograd.grad(out, leaves, dy)[0].numpy()
        seconds = _median_s(call, args.repeat)
    print("LN " + json.dumps({"row": args.worker, "median_s": seconds[0], "min_s": seconds[1]}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        from workers import limit_threads
        limit_threads(args.threads)
        return worker(args)
    from run_benchmarks import LoadMonitor
    print(f"| LayerNorm [{args.rows}, {args.hidden}], {args.threads} threads | median ms | busiest foreign process % |"
          f"\n|---|---|---|")
    monitor = LoadMonitor()
    for row in ROWS:
        command = [sys.executable, os.path.abspath(__file__), "--worker", row] + (argv or sys.argv[1:])
        with monitor:
            done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"))
        lines = [line for line in done.stdout.splitlines() if line.startswith("LN ")]
        if not lines:
            print(f"| {row} | error: {(done.stderr or done.stdout).strip().splitlines()[-1:]} | | |")
            continue
        result = json.loads(lines[-1][3:])
        print(f"| {row} | {1000 * result['median_s']:.2f} | {1000 * result['min_s']:.2f} | {monitor.busiest():.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
