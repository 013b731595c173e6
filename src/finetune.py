"""Fine-tuning and evaluation shared by ``run_ernie_classifier.py``, ``run_ernie_ner.py`` and ``run_ernie_mrc.py``.

Each task kind is a small class with the same four methods (``load``, ``build_model``, ``loss_cell``, ``evaluate``);
``run`` reads the flags, builds everything and calls the shared training loop in ``src/trainer.py``.
"""
import argparse
import logging
import os
from dataclasses import dataclass

import numpy as np

from . import assessment_method as metrics_lib
from .checkpoint import load_weights, log_report
from .cli import model_config_and_tokenizer, save_model_files
from .cli import str2bool
from .fileio import write_json, write_jsonl
from .finetune_task_reader import (ReaderStats, check_schema, convert_classification_examples, convert_ner_examples,
                                   entities_from_tags, ner_tags_from_token_predictions, read_classification_file,
                                   read_label_map, read_mindrecord_columns, read_ner_file)
from .heads import ErnieForQuestionAnswering, ErnieForSequenceClassification, ErnieForTokenClassification
from .losses import QuestionAnsweringLoss, SequenceClassificationLoss, TokenClassificationLoss
from .mrc import convert_mrc_examples, extract_answers, read_mrc_file
from .tasks import TASKS, label_names, tasks_of_kind
from .runtime import distributed_context, init_runtime
from .trainer import TrainingConfig, predict, train

logger = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "segment_ids", "input_mask")  # order of the model's (ids, token types, mask)


def sample_limit(args, is_training):
    """``--max_train_samples`` / ``--max_eval_samples`` as a slice end (None: everything)."""
    limit = args.max_train_samples if is_training else args.max_eval_samples
    return limit if limit > 0 else None


def first_rows(columns, limit):
    return {name: column[:limit] for name, column in columns.items()}


@dataclass
class TaskData:
    """Features as columns, plus what evaluation needs to map predictions back to the text."""
    columns: dict
    examples: list = None
    meta: list = None
    source: str = ""


class ClassificationTask:
    kind = "classification"
    train_columns = ("input_ids", "input_mask", "segment_ids", "label_ids")

    def __init__(self, args, tokenizer, label_map):
        self.args, self.tokenizer, self.label_map = args, tokenizer, label_map
        self.labels = label_names(label_map)

    def load(self, path, is_training):
        limit = sample_limit(self.args, is_training)
        if self.args.dataset_format == "mindrecord":
            return TaskData(first_rows(read_mindrecord_columns(path), limit), source=path)
        stats = ReaderStats()
        examples = read_classification_file(path, self.label_map, skip_bad_examples=self.args.skip_bad_examples,
                                            stats=stats)[:limit]
        columns = convert_classification_examples(examples, self.tokenizer, self.args.max_seq_len, self.label_map,
                                                  stats=stats)
        logger.info("%s: %s", path, stats.summary())
        return TaskData(columns, examples, source=path)

    def build_model(self, config):
        return ErnieForSequenceClassification(config, self.args.num_class)

    def loss_cell(self, model):
        return SequenceClassificationLoss(model)

    def evaluate(self, model, data, predictions_path=None):
        (logits,) = predict(model, data.columns, MODEL_INPUTS, self.args.eval_batch_size)
        return self.score(data, logits, predictions_path)

    def score(self, data, logits, predictions_path=None):
        """Metrics (and the predictions file) from the model's logits on ``data``."""
        probabilities = metrics_lib.softmax(logits.astype(np.float64))
        predicted = probabilities.argmax(-1)
        gold = data.columns["label_ids"]
        labelled = gold >= 0
        metrics = {}
        if labelled.any():
            predicted_labelled, gold_labelled = predicted[labelled], gold[labelled]
            metrics.update(metrics_lib.accuracy(predicted_labelled, gold_labelled))
            if self.args.num_class == 2:
                metrics.update(metrics_lib.binary_prf(predicted_labelled, gold_labelled, positive_label=1))
                if self.args.assessment_method == "mcc":
                    metrics["mcc"] = metrics_lib.matthews_corrcoef(predicted_labelled, gold_labelled)
                if self.args.assessment_method == "spearman":
                    metrics["spearman"] = metrics_lib.spearman(probabilities[labelled, 1], gold_labelled)
                if "qids" in data.columns and (data.columns["qids"] >= 0).all():  # question groups (dbqa): rank answers
                    metrics["mrr"] = metrics_lib.mean_reciprocal_rank(
                        data.columns["qids"][labelled], probabilities[labelled, 1], gold_labelled)
        if predictions_path:
            ids = [e.guid for e in data.examples] if data.examples else list(range(len(predicted)))
            write_jsonl(({"id": i, "label": self.labels[p], "probabilities": dict(zip(self.labels, map(float, prob)))}
                         for i, p, prob in zip(ids, predicted, probabilities)), predictions_path)
        return metrics


class NerTask:
    kind = "ner"
    train_columns = ("input_ids", "input_mask", "segment_ids", "label_ids")

    def __init__(self, args, tokenizer, label_map):
        self.args, self.tokenizer, self.label_map = args, tokenizer, label_map
        self.labels = label_names(label_map)
        self.id_to_label = dict(enumerate(self.labels))

    def load(self, path, is_training):
        limit = sample_limit(self.args, is_training)
        if self.args.dataset_format == "mindrecord":
            return TaskData(first_rows(read_mindrecord_columns(path), limit), source=path)
        stats = ReaderStats()
        examples = read_ner_file(path, self.label_map, skip_bad_examples=self.args.skip_bad_examples,
                                 stats=stats)[:limit]
        columns, alignments = convert_ner_examples(examples, self.tokenizer, self.args.max_seq_len, self.label_map,
                                                   stats=stats)
        logger.info("%s: %s", path, stats.summary())
        return TaskData(columns, examples, alignments, source=path)

    def build_model(self, config):
        return ErnieForTokenClassification(config, self.args.num_class, use_crf=self.args.use_crf)

    def loss_cell(self, model):
        return TokenClassificationLoss(model)

    def decode(self, model, emissions, lengths):
        if not model.use_crf:
            return [row[:n] for row, n in zip(emissions.argmax(-1), lengths)]
        from .crf import viterbi_decode_numpy
        crf = model.crf
        return viterbi_decode_numpy(emissions, crf.transitions.asnumpy(), crf.start_transitions.asnumpy(),
                                    crf.end_transitions.asnumpy(), lengths)

    def evaluate(self, model, data, predictions_path=None):
        (emissions,) = predict(model, data.columns, MODEL_INPUTS, self.args.eval_batch_size)
        return self.score(data, self.decode(model, emissions, data.columns["input_mask"].sum(-1)), predictions_path)

    def score(self, data, token_paths, predictions_path=None):
        """Entity metrics (and the predictions file) from the decoded tag ids of each row's real tokens."""
        lengths = data.columns["input_mask"].sum(-1)
        if data.meta is None:  # MindRecord input: score token-level tags between [CLS] and [SEP]
            gold = [[self.id_to_label[int(t)] for t in row[1:n - 1]] for row, n in zip(data.columns["label_ids"], lengths)]
            pred = [[self.id_to_label[int(t)] for t in path[1:n - 1]] for path, n in zip(token_paths, lengths)]
        else:
            gold = [example.tags for example in data.examples]
            pred = [ner_tags_from_token_predictions(alignment, path, self.id_to_label)
                    for alignment, path in zip(data.meta, token_paths)]
        metrics = {}
        if data.meta is None or all(tags is not None for tags in gold):
            metrics = metrics_lib.entity_prf(gold, pred)
        if predictions_path:
            texts = [e.chars for e in data.examples] if data.examples else [None] * len(pred)
            write_jsonl((_entity_record(i, chars, tags) for i, (chars, tags) in enumerate(zip(texts, pred))),
                        predictions_path)
        return metrics


def _entity_record(index, chars, tags):
    """Entities with character offsets into ``"".join(chars)`` (token offsets for MindRecord input)."""
    text = "".join(chars) if chars else None
    spans = entities_from_tags(chars or [" "] * len(tags), tags)  # without text, a token counts as one character
    return {"id": index, "text": text, "entities": [
        {"type": kind, "start": start, "end": end, "text": text[start:end] if text is not None else None}
        for kind, start, end in spans]}


class MrcTask:
    kind = "mrc"
    train_columns = ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")

    def __init__(self, args, tokenizer, label_map=None):
        self.args, self.tokenizer = args, tokenizer

    def load(self, path, is_training):
        args = self.args
        limit = sample_limit(args, is_training)
        if args.dataset_format == "mindrecord" and is_training:
            return TaskData(first_rows(read_mindrecord_columns(path), limit), source=path)
        json_path = path
        if args.dataset_format == "mindrecord":
            if not args.eval_json_path:
                raise ValueError("MRC evaluation from MindRecord needs --eval_json_path (the SQuAD-format JSON the "
                                 "MindRecord was made from) to recover answer texts")
            json_path = args.eval_json_path
        stats = ReaderStats()
        examples = read_mrc_file(json_path, is_training, skip_bad_examples=args.skip_bad_examples, stats=stats)[:limit]
        columns, features = convert_mrc_examples(examples, self.tokenizer, args.max_seq_len, args.max_query_len,
                                                 args.doc_stride, is_training, stats=stats)
        logger.info("%s: %s", json_path, stats.summary())
        if args.dataset_format == "mindrecord":
            stored = first_rows(read_mindrecord_columns(path), len(columns["unique_ids"]))
            if not (np.array_equal(stored["unique_ids"], columns["unique_ids"])
                    and np.array_equal(stored["input_ids"], columns["input_ids"])):
                raise ValueError(f"{path}: its windows differ from those of {json_path} with --max_seq_len "
                                 f"{args.max_seq_len} --max_query_len {args.max_query_len} --doc_stride "
                                 f"{args.doc_stride}; convert the MindRecord with the same settings")
            columns = stored
        return TaskData(columns, examples, features, source=json_path)

    def build_model(self, config):
        return ErnieForQuestionAnswering(config)

    def loss_cell(self, model):
        return QuestionAnsweringLoss(model)

    def evaluate(self, model, data, predictions_path=None):
        start_logits, end_logits = predict(model, data.columns, MODEL_INPUTS, self.args.eval_batch_size)
        return self.score(data, start_logits, end_logits, predictions_path)

    def score(self, data, start_logits, end_logits, predictions_path=None):
        """CMRC2018 EM/F1 (and the answers JSON) from the span logits of every window."""
        answers, nbest = extract_answers(data.examples, data.meta, start_logits, end_logits,
                                         n_best_size=self.args.n_best_size, max_answer_len=self.args.max_answer_len)
        references = {"data": [{"paragraphs": [{"context": e.context, "qas": [
            {"id": e.qas_id, "question": e.question, "answers": e.answers}]}]} for e in data.examples]}
        metrics = metrics_lib.cmrc_evaluate(references, answers)
        if predictions_path:
            write_json(answers, predictions_path)
            write_json(nbest, os.path.splitext(predictions_path)[0] + "_nbest.json")
        return metrics


TASK_KINDS = {"classification": ClassificationTask, "ner": NerTask, "mrc": MrcTask}


def build_parser(kind):
    """The seed's flags plus what a transformers/PaddleNLP user expects; per-task defaults come from ``TASKS``."""
    names = tasks_of_kind(kind)
    parser = argparse.ArgumentParser(description=f"ERNIE 1.0 fine-tuning and evaluation ({', '.join(names)})")
    add = parser.add_argument
    add("--task_type", default=names[0], choices=names)
    add("--device_target", default="auto", choices=["auto", "Ascend", "GPU", "CPU"])
    add("--device_id", type=int, default=None)
    add("--do_train", type=str2bool, default=False)
    add("--do_eval", type=str2bool, default=False)
    add("--epoch_num", type=int, default=None)
    add("--num_class", type=int, default=None, help="number of labels (default: the task's)")
    add("--use_crf", type=str2bool, default=False, help="NER: CRF head instead of per-token softmax")
    add("--assessment_method", default=None,
        help="metric that selects the best checkpoint: accuracy, f1, mcc, spearman, mrr (classification), "
             "f1 (ner), exact_match or f1 (mrc)")
    add("--task_data_dir", default="", help="ERNIE task_data root: default data files are "
                                             "TASK_DATA_DIR/<task folder>/{train,dev,test}.* and label_map.json")
    add("--eval_split", default="dev", choices=["dev", "test"], help="with --task_data_dir: the split to evaluate")
    add("--train_data_file_path", default="")
    add("--eval_data_file_path", default="", help="dev data during training; the data scored by --do_eval")
    add("--eval_json_path", default="", help="MRC with MindRecord input: the JSON the eval MindRecord came from")
    add("--vocab_file_path", default="", help="vocab.txt (default: the one beside the pretrained checkpoint)")
    add("--label2id_file_path", default="", help="label_map.json (default: the task's labels)")
    add("--load_pretrain_checkpoint_path", default="", help="pretrained ERNIE .ckpt; without it training starts "
                                                             "from random weights")
    add("--load_finetune_checkpoint_path", default="", help="fine-tuned .ckpt to evaluate")
    add("--save_finetune_checkpoint_path", default="", help="where checkpoints go (alias of --output_dir)")
    add("--output_dir", default="", help="checkpoints, train_log.jsonl and predictions (default output/TASK)")
    add("--train_data_shuffle", type=str2bool, default=True)
    add("--eval_data_shuffle", type=str2bool, default=False, help="accepted for compatibility; evaluation keeps order")
    add("--schema_file_path", default="", help="MindRecord schema JSON to check the data columns against")
    add("--dataset_format", default="raw", choices=["raw", "mindrecord"])
    add("--config", default="", help="model config: a preset (base, tiny) or ernie_config.json "
                                     "(default: the one beside the pretrained checkpoint, else base)")
    add("--compute_dtype", default=None, choices=["float32", "float16", "bfloat16"])
    add("--learning_rate", type=float, default=None)
    add("--batch_size", type=int, default=None, help="training batch size per process")
    add("--eval_batch_size", type=int, default=32)
    add("--max_seq_len", type=int, default=None)
    add("--warmup_proportion", type=float, default=0.1)
    add("--weight_decay", type=float, default=0.01)
    add("--optimizer", default="AdamWeightDecay", choices=["AdamWeightDecay", "Lamb", "Momentum"])
    add("--max_grad_norm", type=float, default=1.0)
    add("--seed", type=int, default=0)
    add("--max_steps", type=int, default=-1, help="> 0: train this many steps, whatever --epoch_num")
    add("--eval_every", type=int, default=0, help="evaluate every N steps (default: each epoch)")
    add("--eval_during_training", type=str2bool, default=True,
        help="evaluate the eval data while training and keep the best checkpoint; false: evaluate the final "
             "weights once (use it when the eval data is a test set)")
    add("--log_every", type=int, default=10)
    add("--save_every", type=int, default=0, help="write the resumable checkpoint every N steps (default: each epoch)")
    add("--keep_checkpoint_max", type=int, default=1)
    add("--resume", type=str2bool, default=True, help="continue from OUTPUT_DIR/checkpoint_last.ckpt if present")
    add("--skip_bad_examples", type=str2bool, default=False, help="warn and count malformed examples instead of failing")
    add("--max_train_samples", type=int, default=0, help="use only the first N training examples (0: all)")
    add("--max_eval_samples", type=int, default=0, help="evaluate only the first N examples (0: all)")
    add("--progress_bar", type=str2bool, default=True)
    if kind == "mrc":
        add("--max_query_len", type=int, default=None)
        add("--doc_stride", type=int, default=None)
        add("--max_answer_len", type=int, default=100)
        add("--n_best_size", type=int, default=20)
    return parser


def resolve_defaults(args):
    spec = TASKS[args.task_type]
    for name, value in (("epoch_num", spec.epoch_num), ("num_class", spec.num_labels),
                        ("assessment_method", spec.assessment_method), ("learning_rate", spec.learning_rate),
                        ("batch_size", spec.batch_size), ("max_seq_len", spec.max_seq_len),
                        ("max_query_len", spec.max_query_len), ("doc_stride", spec.doc_stride)):
        if getattr(args, name, value) is None:
            setattr(args, name, value)
    args.output_dir = args.output_dir or args.save_finetune_checkpoint_path or os.path.join("output", args.task_type)
    if args.task_data_dir:
        folder = os.path.join(args.task_data_dir, spec.data_dir)
        args.train_data_file_path = args.train_data_file_path or os.path.join(folder, spec.files["train"])
        if args.eval_split not in spec.files:
            raise SystemExit(f"{args.task_type} has no {args.eval_split} split (it has {sorted(spec.files)})")
        args.eval_data_file_path = args.eval_data_file_path or os.path.join(folder, spec.files[args.eval_split])
        label_map = os.path.join(folder, "label_map.json")
        if not args.label2id_file_path and os.path.exists(label_map):
            args.label2id_file_path = label_map
    if not (args.do_train or args.do_eval):
        raise SystemExit("nothing to do: pass --do_train true and/or --do_eval true")
    if args.do_train and not args.train_data_file_path:
        raise SystemExit("--do_train needs --train_data_file_path")
    if args.do_eval and not args.eval_data_file_path:
        raise SystemExit("--do_eval needs --eval_data_file_path")
    if args.do_eval and not args.do_train and not args.load_finetune_checkpoint_path:
        raise SystemExit("--do_eval without --do_train needs --load_finetune_checkpoint_path")
    return args


def task_info(args, spec, label_map):
    """What a predictor needs besides the weights and vocab.txt; written as task.json beside the checkpoints."""
    return {"task_type": args.task_type, "kind": spec.kind, "labels": label_names(label_map),
            "max_seq_len": args.max_seq_len, "use_crf": args.use_crf if spec.kind == "ner" else None,
            "max_query_len": args.max_query_len if spec.kind == "mrc" else None,
            "doc_stride": args.doc_stride if spec.kind == "mrc" else None, "vocab_file": "vocab.txt"}


def run(args):
    args = resolve_defaults(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    device_target = init_runtime(args.device_target, args.device_id, args.seed)
    rank, world_size = distributed_context()
    spec = TASKS[args.task_type]

    weights_path = args.load_finetune_checkpoint_path if not args.do_train else args.load_pretrain_checkpoint_path
    config, config_source, tokenizer = model_config_and_tokenizer(
        args.config, args.vocab_file_path, weights_path, args.compute_dtype, device_target, "--vocab_file_path")
    label_map = read_label_map(args.label2id_file_path) if args.label2id_file_path else dict(spec.label_map)
    if spec.kind != "mrc" and len(label_names(label_map)) != args.num_class:
        raise SystemExit(f"--num_class {args.num_class} but the label map has {len(label_names(label_map))} labels "
                         f"({args.label2id_file_path or 'task default'})")
    task = TASK_KINDS[spec.kind](args, tokenizer, label_map)
    logger.info("task %s on %s, model config %s, vocab %s", args.task_type, device_target, config_source,
                tokenizer.vocab_file)

    model = task.build_model(config)
    os.makedirs(args.output_dir, exist_ok=True)
    eval_data = task.load(args.eval_data_file_path, is_training=False) if args.eval_data_file_path else None
    if eval_data and args.schema_file_path:
        check_schema(args.schema_file_path, eval_data.columns, eval_data.source)
    if args.do_train:
        if args.load_pretrain_checkpoint_path:
            log_report(load_weights(model, args.load_pretrain_checkpoint_path), args.load_pretrain_checkpoint_path,
                       model)
        else:
            logger.warning("no --load_pretrain_checkpoint_path: training from randomly initialised weights")
        if rank == 0:
            save_model_files(args.output_dir, config, tokenizer)
            write_json(task_info(args, spec, label_map), os.path.join(args.output_dir, "task.json"))
        train_data = task.load(args.train_data_file_path, is_training=True)
        select_best = eval_data is not None and args.eval_during_training
        if args.schema_file_path:
            check_schema(args.schema_file_path, train_data.columns, train_data.source)
        training = TrainingConfig(
            output_dir=args.output_dir, epochs=args.epoch_num, batch_size=args.batch_size,
            learning_rate=args.learning_rate, optimizer=args.optimizer, warmup_proportion=args.warmup_proportion,
            weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm, max_steps=args.max_steps,
            eval_every=args.eval_every, log_every=args.log_every, save_every=args.save_every,
            keep_checkpoint_max=args.keep_checkpoint_max, checkpoint_prefix=args.task_type, seed=args.seed,
            shuffle=args.train_data_shuffle, resume=args.resume, loss_scale=config.compute_dtype == "float16",
            metric_for_best=args.assessment_method if select_best else "", progress_bar=args.progress_bar)
        train(task.loss_cell(model), model, train_data.columns, task.train_columns, training,
              evaluate=(lambda m: task.evaluate(m, eval_data)) if select_best else None,
              rank=rank, world_size=world_size)
        best = os.path.join(args.output_dir, f"{args.task_type}-best.ckpt")
        if select_best and os.path.exists(best):
            load_weights(model, best)
            logger.info("evaluating the best checkpoint %s", best)
    elif args.do_eval:
        report = load_weights(model, args.load_finetune_checkpoint_path)
        if report.missing:
            raise SystemExit(f"{args.load_finetune_checkpoint_path} lacks {report.missing[:5]}: not a fine-tuned "
                             f"{args.task_type} checkpoint")
    if args.do_eval and rank == 0:
        split = os.path.splitext(os.path.basename(args.eval_data_file_path))[0]
        suffix = ".json" if spec.kind == "mrc" else ".jsonl"
        predictions_path = os.path.join(args.output_dir, f"{split}_predictions{suffix}")
        metrics = task.evaluate(model, eval_data, predictions_path)
        print(metrics_lib.format_metrics(metrics), flush=True)
        write_json(metrics, os.path.join(args.output_dir, f"{split}_metrics.json"))
        logger.info("predictions and metrics written to %s", args.output_dir)
        return metrics
    return None


def main(kind, argv=None):
    return run(build_parser(kind).parse_args(argv))

