"""Convert a fine-tuning data file to MindRecord or TFRecord (the model zoo's converter command, kept under its
name)::

    python -m src.finetune_task_reader --task_type xnli --vocab_path vocab.txt --max_seq_len 512 \\
        --input_file dev.tsv --output_file dev.mindrecord --is_training false

The file is read and turned into features by the task itself (``src/tasks``), exactly as fine-tuning reads it.
"""
import logging

from .cli import add_flags, new_parser, run_cli, str2bool
from .data.mindrecord import write_mindrecord
from .data.tfrecord import write_tfrecord, write_tfrecord_schema
from .tasks.base import EvalOptions
from .tasks.registry import TASKS, default_task_info, label_map_of, task_class
from .tokenizer import ErnieTokenizer

logger = logging.getLogger(__name__)


def build_parser():
    parser = new_parser("python -m src.finetune_task_reader", "Convert an ERNIE fine-tuning file to MindRecord.")
    add = parser.add_argument
    add_flags(parser, "task_type", "vocab_file", "label_map_file", "max_seq_len", "max_query_len", "doc_stride",
              "columns", "skip_bad_examples", "debug", task_type={"required": True, "choices": list(TASKS)},
              vocab_file={"required": True}, max_seq_len={"default": 128})
    add("--do_lower_case", type=str2bool, default=True, help="lower-case and strip accents (ERNIE's vocab)")
    add("--input_file", required=True, help="the data file (TSV, NER, SQuAD JSON)")
    add("--output_file", required=True, help="records to write (MindRecord: path0, path1 ... with --shard_num > 1)")
    add("--output_format", default="mindrecord", choices=["mindrecord", "tfrecord"],
        help="MindRecord, or TFRecord (tf.train.Example rows, with the seed's schema file OUTPUT_FILE.schema.json)")
    add("--shard_num", type=int, default=1, help="MindRecord shards")
    add("--is_training", type=str2bool, default=False, help="MRC: training windows (answer positions) or "
                                                            "evaluation windows (unique ids)")
    return parser


def convert(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    info = default_task_info(args.task_type, args.max_seq_len, max_query_len=args.max_query_len,
                             doc_stride=args.doc_stride)
    label_map = label_map_of(info, args.label_map_file)
    options = EvalOptions(skip_bad_examples=args.skip_bad_examples,
                          columns=tuple(args.columns.split(",")) if args.columns else None)
    task = task_class(info.kind)(info, ErnieTokenizer(args.vocab_file, do_lower_case=args.do_lower_case), options,
                                 label_map)
    columns = task.load(args.input_file, is_training=args.is_training).columns
    if "qids" in columns and (columns["qids"] < 0).all():  # no question groups in this file
        del columns["qids"]
    if args.output_format == "tfrecord":
        write_tfrecord(columns, args.output_file)
        write_tfrecord_schema(columns, args.output_file + ".schema.json")
    else:
        write_mindrecord(columns, args.output_file, args.shard_num)
    logger.info("%s -> %s: %d records", args.input_file, args.output_file, len(columns["input_ids"]))


def main(argv=None):
    return run_cli(convert, argv)


if __name__ == "__main__":
    main()
