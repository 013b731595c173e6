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
import argparse
import json

from src.assessment_method import format_metrics
from src.cli import str2bool
from src.fileio import write_jsonl
from src.inference import REQUIRED_FIELDS, Predictor, evaluate_outputs, load_eval_data, model_columns
from src.tasks import TASKS

CHUNK = 256  # records per predictor call in batch mode (bounds memory on large files)


def build_parser():
    parser = argparse.ArgumentParser(description="ERNIE predictions on raw text")
    add = parser.add_argument
    add("--model", required=True, help=".mindir or .onnx (with its .json sidecar), or a fine-tuned .ckpt / folder")
    add("--task", default=None, choices=list(TASKS), help="checked against the model; needed for a checkpoint "
                                                          "without task.json")
    add("--text", action="append", default=None, help="classification or NER input (repeat for several)")
    add("--text_b", default=None, help="second text of a sentence-pair task (xnli, dbqa)")
    add("--context", default=None, help="MRC passage")
    add("--question", default=None, help="MRC question")
    add("--input_file", default=None, help="batch mode: one text a line, or JSON lines (.jsonl / .json)")
    add("--output_file", default=None, help="batch mode: JSON lines out (default: stdout)")
    add("--eval_data_file_path", default=None, help="score the model on labelled data (TSV, SQuAD JSON, MindRecord) "
                                                    "and print the fine-tuning scripts' metrics")
    add("--dataset_format", default="raw", choices=["raw", "mindrecord"], help="of --eval_data_file_path")
    add("--eval_json_path", default="", help="MRC MindRecord evaluation: the SQuAD JSON it was made from")
    add("--batch_size", type=int, default=8, help="windows per model call (exports with a fixed batch use theirs)")
    add("--num_threads", type=int, default=None, help="onnxruntime intra-op threads")
    add("--device_target", default="auto", choices=["auto", "Ascend", "GPU", "CPU"], help="MindSpore backends")
    add("--stride", type=int, default=None, help="tokens between window starts of a long text")
    add("--n_best_size", type=int, default=20)
    add("--max_answer_len", type=int, default=100)
    # a checkpoint without task.json / ernie_config.json / vocab.txt beside it
    add("--config", default=None)
    add("--vocab_file", default=None)
    add("--use_crf", type=str2bool, default=None)
    add("--max_seq_len", type=int, default=None)
    return parser


def read_records(path, kind):
    """(line number, record) of each input line; JSON lines for .jsonl/.json files, else one text a line."""
    as_json = path.endswith((".jsonl", ".json"))
    if kind == "mrc" and not as_json:
        raise SystemExit(f"{path}: MRC input must be JSON lines (.jsonl) with 'context' and 'question'")
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").removesuffix("\r")
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                raise SystemExit(f"{path}:{lineno}: empty line (one input a line)")
            if not as_json:
                records.append((lineno, {"text": line}))
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise SystemExit(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            missing = [k for k in REQUIRED_FIELDS[kind] if not isinstance(record, dict) or
                       not isinstance(record.get(k), str)]
            if missing:
                raise SystemExit(f"{path}:{lineno}: needs the text field(s) {missing}")
            records.append((lineno, record))
    if not records:
        raise SystemExit(f"{path}: no inputs")
    return records


def results(records, predictor):
    for start in range(0, len(records), CHUNK):
        chunk = records[start:start + CHUNK]
        for (lineno, record), result in zip(chunk, predictor.predict([r for _, r in chunk])):
            yield {"id": record.get("id", lineno), **result}


def write_results(records, predictor, output_file):
    if output_file:
        write_jsonl(results(records, predictor), output_file)
    else:
        for result in results(records, predictor):
            print(json.dumps(result, ensure_ascii=False), flush=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    single = {k: getattr(args, k) for k in ("text", "text_b", "context", "question") if getattr(args, k) is not None}
    if sum(map(bool, (single, args.input_file, args.eval_data_file_path))) != 1:
        raise SystemExit("give one of: the inputs of one example (--text, or --context and --question), "
                         "--input_file, --eval_data_file_path")
    try:
        predictor = Predictor.from_path(
            args.model, batch_size=args.batch_size, num_threads=args.num_threads, device_target=args.device_target,
            stride=args.stride, n_best_size=args.n_best_size, max_answer_len=args.max_answer_len,
            task_type=args.task, config=args.config, vocab_file=args.vocab_file, use_crf=args.use_crf,
            max_seq_len=args.max_seq_len)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"cannot load {args.model}: {err}") from None
    info = predictor.info
    if args.task and args.task != info.task_type:
        raise SystemExit(f"--task {args.task} but {args.model} is a {info.task_type} model")
    if args.eval_data_file_path:
        task, data = load_eval_data(info, args.eval_data_file_path, args.dataset_format, args.eval_json_path,
                                    args.n_best_size, args.max_answer_len)
        metrics = evaluate_outputs(task, data, predictor.backend.run(model_columns(data.columns)))
        print(format_metrics(metrics))
        return metrics
    if args.input_file:
        write_results(read_records(args.input_file, info.kind), predictor, args.output_file)
        return None
    missing = [k for k in REQUIRED_FIELDS[info.kind] if k not in single]
    if missing:
        raise SystemExit(f"a {info.task_type} model needs --{' and --'.join(missing)}")
    texts = single.pop("text", [None])
    if len(texts) > 1 and "text_b" in single:
        raise SystemExit("--text_b goes with a single --text")
    records = [{**single, "text": text} if text is not None else single for text in texts]
    results = predictor.predict(records)
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return results[0] if len(results) == 1 else results


if __name__ == "__main__":
    main()
