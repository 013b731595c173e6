"""Build pre-training data as MindRecord (the model zoo's ``src/pretrain_reader.py`` command, kept under this name)::

    python -m src.pretraining_reader --input_file demo_train_set.gz --data_format ernie --vocab_file vocab.txt \\
        --output_file pretrain.mindrecord --max_seq_len 128 --masking ernie

Reading, pairing and masking are in ``src/data/pretraining.py``.
"""
import logging

from .cli import add_flags, new_parser, run_cli, str2bool
from .data.pretraining import (COLUMNS, DATA_FORMATS, MASKING_STRATEGIES, load_pretraining_data, parse_mix,
                               write_pretraining_mindrecord, write_pretraining_tfrecord)
from .data.tfrecord import write_tfrecord_schema
from .tokenizer import ErnieTokenizer

logger = logging.getLogger(__name__)


def build_parser():
    parser = new_parser("python -m src.pretraining_reader",
                        "Build ERNIE pre-training data (knowledge masking) as MindRecord.")
    add = parser.add_argument
    add("--input_file", nargs="+", required=True, help="files or directories (read recursively)")
    add("--output_file", required=True, help="MindRecord file to write (path0, path1 ... with --shard_num > 1)")
    add_flags(parser, "vocab_file", "seed", "skip_bad_examples", "debug", vocab_file={"required": True})
    add("--data_format", default="ernie", choices=DATA_FORMATS, help="ERNIE samples, raw text or word/tag text")
    add("--masking", default="ernie", choices=MASKING_STRATEGIES, help="masking level")
    add("--ernie_mix", default="char=1,phrase=1,entity=1", help="--masking ernie: level weights per sequence")
    add("--max_seq_len", type=int, default=128, help="sequence length")
    add("--mask_prob", type=float, default=0.15, help="share of the real tokens predicted")
    add("--max_predictions_per_seq", type=int, default=None, help="default ceil(mask_prob x max_seq_len)")
    add("--dupe_factor", type=int, default=1, help="masked copies of the data (new pairs and masks each)")
    add("--short_seq_prob", type=float, default=0.1, help="share of shorter sequences")
    add("--do_lower_case", type=str2bool, default=True, help="lower-case and strip accents (ERNIE's vocab)")
    add("--output_format", default="mindrecord", choices=["mindrecord", "tfrecord"],
        help="MindRecord, or TFRecord (with the seed's schema file OUTPUT_FILE.schema.json)")
    add("--shard_num", type=int, default=1, help="MindRecord shards")
    return parser


def convert(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tokenizer = ErnieTokenizer(args.vocab_file, do_lower_case=args.do_lower_case)
    columns, stats = load_pretraining_data(
        args.input_file, args.data_format, tokenizer, args.max_seq_len, args.masking, args.mask_prob,
        args.max_predictions_per_seq, parse_mix(args.ernie_mix), args.dupe_factor, args.short_seq_prob, args.seed,
        args.skip_bad_examples)
    logger.info("%s", stats.summary())
    if args.output_format == "tfrecord":
        write_pretraining_tfrecord(columns, args.output_file)
        write_tfrecord_schema({name: columns[name] for name in COLUMNS}, args.output_file + ".schema.json")
    else:
        write_pretraining_mindrecord(columns, args.output_file, args.shard_num)
    logger.info("wrote %d examples to %s", len(columns["input_ids"]), args.output_file)



def main(argv=None):
    return run_cli(convert, argv)


if __name__ == "__main__":
    main()
