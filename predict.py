"""Predict on raw text with an exported model (.mindir / .onnx) or a fine-tuned checkpoint.

    python predict.py --model export/chnsenticorp.onnx --text "这家酒店很干净"
    python predict.py --model output/msra_ner --text "张三在北京工作。"           # a fine-tuning output folder
    python predict.py --model export/cmrc.mindir --context "..." --question "..."
    python predict.py --model export/msra_ner.onnx --input_file texts.txt --output_file entities.jsonl
    python predict.py --model export/chnsenticorp.int8.onnx --eval_data_file_path dev.tsv   # metrics on labelled data

Batch mode reads one text a line (``.txt`` and other files) or JSON lines (``.jsonl`` / ``.json``: ``{"text",
"text_b"}``, ``{"text"}`` or ``{"context", "question"}``, optional ``"id"``) and writes one JSON object a line.
Results: classification ``label`` + ``probabilities``; NER ``entities`` [{type, start, end, text}] with character
offsets into the input text; MRC ``answer``, ``start``, ``end`` (into the context) and ``probability``. ``windows``
says how many model windows a long input needed (it is never truncated).
"""
import json
import logging

from src.assessment_method import format_metrics
from src.cli import add_flags, new_parser, run_cli
from src.data.common import InputError, iter_lines
from src.fileio import write_jsonl
from src.progress import counter, set_enabled as set_progress_bars
from src.serving.predictor import Predictor
from src.tasks.registry import TASKS

CHUNK = 256  # records per predictor call in batch mode (bounds memory on large files)


def build_parser():
    parser = new_parser(None, "ERNIE predictions on raw text")
    add = parser.add_argument
    add_flags(parser, "model", model={"required": True})
    add_flags(parser, "task_type", task_type={"choices": list(TASKS), "help": "checked against the model; needed "
                                                                              "for a checkpoint without task.json"})
    add("--text", action="append", default=None, help="classification or NER input (repeat for several)")
    add("--text_b", default=None, help="second text of a sentence-pair task (xnli, dbqa)")
    add("--context", default=None, help="MRC passage")
    add("--question", default=None, help="MRC question")
    add("--input_file", default=None, help="batch mode: one text a line, or JSON lines (.jsonl / .json)")
    add("--output_file", default=None, help="batch mode: JSON lines out (default: stdout)")
    add_flags(parser, "eval_data_file_path", "dataset_format", "eval_json_path", "batch_size_serving", "num_threads",
              "device_target", eval_data_file_path={"default": None, "help": "score the model on labelled data "
                                                                             "(TSV, SQuAD JSON, MindRecord)"})
    add("--stride", type=int, default=None, help="tokens between window starts of a long text (default: half a "
                                                 "window; MRC: the trained doc_stride)")
    add_flags(parser, "n_best_size", "max_answer_len", "config", "vocab_file", "use_crf", "max_seq_len",
              "progress_bar", "debug")
    return parser


def read_records(path, required_fields):
    """(line number, record) of each input line; JSON lines for .jsonl/.json files, else one text a line."""
    as_json = path.endswith((".jsonl", ".json"))
    if not as_json and tuple(required_fields) != ("text",):
        raise InputError(f"{path}: this model's input must be JSON lines (.jsonl) with "
                         f"{' and '.join(map(repr, required_fields))}")
    records, blank = [], None
    for lineno, line in iter_lines(path):
        if not line.strip():
            blank = blank or lineno  # blank lines at the end of the file are an editor's, not inputs
            continue
        if blank:
            raise InputError(f"{path}:{blank}: empty line (one input a line)")
        if not as_json:
            records.append((lineno, {"text": line}))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        missing = [k for k in required_fields if not isinstance(record, dict) or not isinstance(record.get(k), str)]
        if missing:
            raise InputError(f"{path}:{lineno}: needs the text field(s) {missing}")
        records.append((lineno, record))
    if not records:
        raise InputError(f"{path}: no inputs")
    return records


def results(records, predictor):
    with counter(len(records), "predicting", unit="text") as progress:
        for start in range(0, len(records), CHUNK):
            chunk = records[start:start + CHUNK]
            for (lineno, record), result in zip(chunk, predictor.predict([r for _, r in chunk])):
                yield {"id": record.get("id", lineno), **result}
            progress.update(len(chunk))


def write_results(records, predictor, output_file):
    if output_file:
        write_jsonl(results(records, predictor), output_file)
    else:
        for result in results(records, predictor):
            print(json.dumps(result, ensure_ascii=False), flush=True)


def predict(argv=None):
    args = build_parser().parse_args(argv)
    # stderr: what the model is (task.json's or the flags' max_seq_len, labels, CRF); stdout keeps the results
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("src").setLevel(logging.INFO)
    set_progress_bars(args.progress_bar)
    single = {k: getattr(args, k) for k in ("text", "text_b", "context", "question") if getattr(args, k) is not None}
    if sum(map(bool, (single, args.input_file, args.eval_data_file_path))) != 1:
        raise ValueError("give one of: the inputs of one example (--text, or --context and --question), "
                         "--input_file, --eval_data_file_path")
    predictor = Predictor.from_path(
        args.model, batch_size=args.batch_size, num_threads=args.num_threads, device_target=args.device_target,
        stride=args.stride, n_best_size=args.n_best_size, max_answer_len=args.max_answer_len,
        task_type=args.task_type, config=args.config, vocab_file=args.vocab_file, use_crf=args.use_crf,
        max_seq_len=args.max_seq_len)
    task, info = predictor.task, predictor.info
    if args.task_type and args.task_type != info.task_type:
        raise ValueError(f"--task {args.task_type} but {args.model} is a {info.task_type} model")
    if args.eval_data_file_path:
        task.options.dataset_format, task.options.eval_json_path = args.dataset_format, args.eval_json_path
        data = task.load(args.eval_data_file_path, is_training=False)
        metrics = task.score(data, predictor.backend.run(data.columns))
        print(format_metrics(metrics))
        return metrics
    if args.input_file:
        write_results(read_records(args.input_file, task.required_fields), predictor, args.output_file)
        return None
    missing = [k for k in task.required_fields if k not in single]
    if missing:
        raise ValueError(f"a {info.task_type} model needs --{' and --'.join(missing)}")
    texts = single.pop("text", [None])
    if len(texts) > 1 and "text_b" in single:
        raise ValueError("--text_b goes with a single --text")
    records = [{**single, "text": text} if text is not None else single for text in texts]
    answers = [{**record, **result} for record, result in zip(records, predictor.predict(records))]
    for answer in answers:
        print(json.dumps(answer, ensure_ascii=False))
    return answers[0] if len(answers) == 1 else answers


def main(argv=None):
    return run_cli(predict, argv)


if __name__ == "__main__":
    main()
