"""Times MindSpore's AllReduce of float32 buffers between the workers of an msrun job: the measured side of the
README's scaling model (run on CPU here, so it measures MindSpore's CPU collective over local TCP, not HCCL/NCCL).

    msrun --worker_num=2 --local_worker_num=2 --master_addr=127.0.0.1 --master_port=8129 --log_dir=/tmp/ar \
        --join=True experiments/allreduce_time.py --sizes 1000000,10000000,100477778 --repeats 3

Rank 0 logs, per size: the buffer in MB, the median seconds of one AllReduce (after one warm-up call), the bus
bandwidth of a ring all-reduce, 2(N-1)/N x bytes / time, and a check that the result is the sum of the ranks' inputs.
"""
import argparse
import statistics
import time

import mindspore as ms
import numpy as np
from mindspore import nn, ops
from mindspore.communication import get_group_size, get_rank, init


class AllReduceSum(nn.Cell):
    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce(ops.ReduceOp.SUM)

    def construct(self, x):
        return self.all_reduce(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000,100477778", help="float32 elements, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    init()
    rank, world = get_rank(), get_group_size()
    net = AllReduceSum()
    for size in (int(s) for s in args.sizes.split(",")):
        x = ms.Tensor(np.full(size, rank + 1, np.float32))
        net(x).asnumpy()  # compile and warm up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            out = net(x).asnumpy()
            times.append(time.perf_counter() - started)
        expected = world * (world + 1) / 2
        correct = bool(np.all(out == expected))
        seconds = statistics.median(times)
        if rank == 0:
            megabytes = size * 4 / 1e6
            bus = 2 * (world - 1) / world * size * 4 / seconds / 1e9
            print(f"ranks {world}  {megabytes:9.1f} MB  {seconds:8.4f} s  bus {bus:6.3f} GB/s  sum correct {correct}",
                  flush=True)


if __name__ == "__main__":
    main()
