"""The README's data-parallel scaling model, computed: gradient bytes from the project's ERNIE-base, ring all-reduce
traffic per rank, and communication time per step against an assumed compute time per step.

    python experiments/scaling_model.py [--mfu 0.4] [--peak_tflops 256] [--hop_latency_us 10]

Measured: the trainable parameter count of ErnieForPretraining / ErnieModel with the `base` config. Assumed (flags):
the accelerator's FP16 peak (Ascend 910: 256 TFLOPS, Huawei's published figure), the fraction of it a BERT-base
training step reaches (MFU), and the per-hop latency of the ring. Training FLOPs per token: 3 x (forward matmuls
2 x (4 H^2 + 2 H I) per layer + attention 2 x 2 x S x H per layer), plus the MLM head on the masked positions.
"""
import argparse
import os
import sys

os.environ.setdefault("GLOG_v", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root: src

from src.ernie_model import ErnieModel, load_config  # noqa: E402
from src.heads import ErnieForPretraining  # noqa: E402

# (name, batch per device, sequence length, masked positions per sequence): the seed's settings
SEED_STEPS = (("pre-training", 64, 512, 20), ("xnli / dbqa", 64, 512, 0), ("chnsenticorp", 24, 256, 0),
              ("msra_ner", 16, 256, 0), ("drcd / cmrc", 16, 512, 0))
DEVICES = (8, 64, 512)
LINKS_GBIT = (25, 100, 200)


def parameter_count(net):
    return sum(p.size for p in net.trainable_params())


def train_flops_per_sequence(config, seq_len, masked):
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = layers * (2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq_len * h)
    mlm = masked * 2 * (h * h + h * config.vocab_size)
    return 3 * (seq_len * per_token + mlm)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peak_tflops", type=float, default=256.0)
    parser.add_argument("--mfu", type=float, default=0.4)
    parser.add_argument("--hop_latency_us", type=float, default=10.0)
    args = parser.parse_args()
    config = load_config("base")
    params = parameter_count(ErnieForPretraining(config))
    print(f"ERNIE-base parameters: pre-training {params:,}; encoder+pooler {parameter_count(ErnieModel(config)):,}")
    grad_bytes = 4 * params
    print(f"fp32 gradients per step: {grad_bytes / 1e6:.1f} MB; fp16: {grad_bytes / 2e6:.1f} MB")
    print("\nring all-reduce per step (fp32): sent per rank 2(N-1)/N x bytes; time = that / link + 2(N-1) x hop")
    print("| devices | MB sent per rank | " + " | ".join(f"{g} Gb/s" for g in LINKS_GBIT) + " |")
    comm = {}
    for n in DEVICES:
        sent = 2 * (n - 1) / n * grad_bytes
        row = []
        for gbit in LINKS_GBIT:
            seconds = sent / (gbit * 1e9 / 8) + 2 * (n - 1) * args.hop_latency_us * 1e-6
            comm[n, gbit] = seconds
            row.append(f"{seconds * 1e3:.0f} ms")
        print(f"| {n} | {sent / 1e6:.0f} | " + " | ".join(row) + " |")
    print(f"\ncompute per step at {args.mfu:.0%} of {args.peak_tflops:.0f} TFLOPS (assumed), and the share of a "
          "step spent communicating when nothing overlaps: comm / (compute + comm), for 8 / 64 / 512 devices")
    print("| step | TFLOP per device | compute | " + " | ".join(f"{g} Gb/s" for g in LINKS_GBIT) + " |")
    for name, batch, seq_len, masked in SEED_STEPS:
        flops = batch * train_flops_per_sequence(config, seq_len, masked)
        compute = flops / (args.peak_tflops * 1e12 * args.mfu)
        shares = []
        for gbit in LINKS_GBIT:
            shares.append(" / ".join(f"{comm[n, gbit] / (compute + comm[n, gbit]):.0%}" for n in DEVICES))
        print(f"| {name} {batch} x {seq_len} | {flops / 1e12:.1f} | {compute * 1e3:.0f} ms | " + " | ".join(shares)
              + " |")


if __name__ == "__main__":
    main()
