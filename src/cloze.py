"""Entity cloze of a masked-LM model (the probe of ``src/data/cloze.py``): predictions at the masked entity tokens,
the score, and a CLI that scores a pre-training checkpoint::

    python -m src.cloze --checkpoint output/pretrain/ernie-1_3000.ckpt --input heldout.tagged.txt \\
        --data_format tagged [--max_seq_len 128] [--json out.json]
"""
import logging
from collections import Counter

import numpy as np
from mindspore import Tensor

from .checkpoint import load_weights, log_report
from .cli import add_flags, model_config_and_tokenizer, new_parser, run_cli
from .data.cloze import CLOZE_FORMATS, cloze_columns, entity_cloze_items, read_cloze_sentences, score_entity_cloze
from .data.common import InputError
from .dataset import eval_batches
from .fileio import write_json
from .heads import ErnieForPretraining
from .runtime import init_runtime

logger = logging.getLogger(__name__)


def predict_entity_cloze(model, items, batch_size=32, max_seq_len=None):
    """Argmax ids at each item's masked positions from ``model(input_ids, token_type_ids, attention_mask,
    masked_lm_positions)`` -> ``(mlm_logits [B, P, vocab], ...)`` (``ErnieForPretraining``), in inference mode."""
    columns = cloze_columns(items, max_seq_len)
    names = ("input_ids", "segment_ids", "input_mask", "masked_lm_positions")
    was_training = getattr(model, "training", False)
    if hasattr(model, "set_train"):
        model.set_train(False)
    predicted, start = [], 0
    try:
        for real_rows, batch in eval_batches(columns, names, batch_size):
            outputs = model(*(Tensor(array) for array in batch))
            mlm_logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
            argmax = np.asarray(mlm_logits.asnumpy() if hasattr(mlm_logits, "asnumpy") else mlm_logits).argmax(-1)
            for row in range(real_rows):
                predicted.append(argmax[row, :len(items[start + row].masked_positions)].tolist())
            start += real_rows
    finally:
        if hasattr(model, "set_train"):
            model.set_train(was_training)
    return predicted


def run_entity_cloze(model, items, batch_size=32, max_seq_len=None):
    """Scores ``model`` (an ``ErnieForPretraining``) on the cloze ``items``: ``score_entity_cloze``'s dict."""
    return score_entity_cloze(predict_entity_cloze(model, items, batch_size, max_seq_len), items)


def read_entity_cloze_items(eval_source, tokenizer, data_format="tagged", max_seq_len=128):
    """The cloze items of held-out files (``read_cloze_sentences``), with their counts logged."""
    stats = Counter()
    items = entity_cloze_items(read_cloze_sentences(eval_source, data_format), tokenizer, max_seq_len, stats=stats)
    logger.info("entity cloze data %s: %s", eval_source, " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
    if not items:
        raise InputError(f"{eval_source}:1: no entity with known tokens to score")
    return items


def evaluate_entity_cloze(model, eval_source, tokenizer, data_format="tagged", max_seq_len=128, batch_size=32,
                          items=None):
    """Reads held-out files, builds the items and scores ``model``; pass ``items`` from an earlier call to skip
    reading again. Returns ``(scores, items)``."""
    if items is None:
        items = read_entity_cloze_items(eval_source, tokenizer, data_format, max_seq_len)
    return run_entity_cloze(model, items, batch_size, max_seq_len), items


def build_parser():
    parser = new_parser("python -m src.cloze", "Entity cloze accuracy of a pre-training checkpoint.")
    add = parser.add_argument
    add("--checkpoint", required=True, help="ErnieForPretraining .ckpt (ernie_config.json, vocab.txt beside it)")
    add("--input", nargs="+", required=True, help="held-out files or directories with entity tags")
    add("--data_format", default="tagged", choices=CLOZE_FORMATS, help="word/tag text or BIO characters")
    add_flags(parser, "config", "vocab_file", "max_seq_len", "device_target", "debug", max_seq_len={"default": 128})
    add("--batch_size", type=int, default=64, help="items per model call")
    add("--json", default="", help="also write the scores here")
    return parser


def score_checkpoint(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    device_target = init_runtime(args.device_target, None, 0)
    config, _, tokenizer = model_config_and_tokenizer(args.config, args.vocab_file, args.checkpoint, None,
                                                      device_target)
    model = ErnieForPretraining(config)
    log_report(load_weights(model, args.checkpoint), args.checkpoint, model)
    items = read_entity_cloze_items(args.input, tokenizer, args.data_format, args.max_seq_len)
    predicted = predict_entity_cloze(model, items, args.batch_size, args.max_seq_len)
    scores = score_entity_cloze(predicted, items)
    print("cloze " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in scores.items()),
          flush=True)
    # What the model puts at masked entity characters says what it has learned: a frequent-character plateau shows
    # as punctuation and function characters here.
    counts = Counter(token for ids in predicted for token in tokenizer.convert_ids_to_tokens(ids))
    scores["top_predictions"] = counts.most_common(10)
    print("most frequent predictions at masked entity characters: "
          + " ".join(f"{token} {count}" for token, count in scores["top_predictions"]), flush=True)
    if args.json:
        write_json(scores, args.json)
    return scores


def main(argv=None):
    return run_cli(score_checkpoint, argv)


if __name__ == "__main__":
    main()
