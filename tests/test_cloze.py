"""Entity cloze (src/data/cloze.py, src/cloze.py) on hand-made sentences whose items and scores are worked out by hand."""
from collections import Counter

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn, ops

from src.cloze import evaluate_entity_cloze, predict_entity_cloze, run_entity_cloze
from src.data.cloze import (bio_entity_words, cloze_columns, entity_cloze_items, read_cloze_sentences,
                            score_entity_cloze)
from src.data.knowledge import tagged_words
from src.tokenizer import ErnieTokenizer, write_vocab

# 江泽民 在 北京 会见 了 联合国 秘书长 安南 。  -> four entities: PER, LOC, ORG, PER
TAGGED = "江/nr  泽民/nr  在/p  北京/ns  会见/v  了/u  联合国/nt  秘书长/n  安南/nr  。/w"
SENTENCE = "江泽民在北京会见了联合国秘书长安南。"
# with [CLS] at 0: 江1 泽2 民3 在4 北5 京6 会7 见8 了9 联10 合11 国12 秘13 书14 长15 安16 南17 。18 [SEP]19
EXPECTED = [("江泽民", "PER", [1, 2, 3]), ("北京", "LOC", [5, 6]), ("联合国", "ORG", [10, 11, 12]),
            ("安南", "PER", [16, 17])]


@pytest.fixture
def tokenizer(tmp_path):
    path = tmp_path / "vocab.txt"
    write_vocab(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + sorted(set(SENTENCE + "张三李四上海大学读书去")),
                path)
    return ErnieTokenizer(path)


def ids(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(list(text))


def test_items_from_a_tagged_sentence(tokenizer):
    stats = Counter()
    items = entity_cloze_items([tagged_words(TAGGED, "hand")], tokenizer, 64, tag_scheme="pos", stats=stats)
    assert [(i.entity, i.entity_type, i.masked_positions) for i in items] == EXPECTED
    sentence_ids = [tokenizer.cls_token_id] + ids(tokenizer, SENTENCE) + [tokenizer.sep_token_id]
    for item, (text, _, positions) in zip(items, EXPECTED):
        assert item.original_ids == ids(tokenizer, text)
        expected_input = list(sentence_ids)
        for p in positions:  # only this entity is masked; the others stay visible
            expected_input[p] = tokenizer.mask_token_id
        assert item.input_ids == expected_input
    assert stats == Counter(sentences=1, entities=4, items=4)


def test_documents_windows_unknown_and_too_long_entities(tokenizer):
    stats = Counter()
    documents = [[tagged_words(TAGGED, "hand"), tagged_words("去/v  纽约/ns  。/w", "hand")]]  # 纽约: not in vocab
    items = entity_cloze_items(documents, tokenizer, 8, tag_scheme="pos", stats=stats)  # 6 tokens of room
    # 18 tokens -> windows of 6: 江泽民 starts the sentence (window 0..5); 北京 (4,5) -> window 2..7;
    # 联合国 (9..11) -> window 7..12; 安南 (15,16) -> the last 6 tokens, 12..17
    assert [i.masked_positions for i in items] == [[1, 2, 3], [3, 4], [3, 4, 5], [4, 5]]
    assert items[3].input_ids == [tokenizer.cls_token_id] + ids(tokenizer, "秘书长") + [tokenizer.mask_token_id] * 2 \
        + ids(tokenizer, "。") + [tokenizer.sep_token_id]
    assert stats == Counter(sentences=2, entities=5, items=4, windowed=4, skipped_unknown_token=1)
    stats = Counter()
    items = entity_cloze_items(documents[0][:1], tokenizer, 4, tag_scheme="pos", stats=stats)
    assert [i.entity for i in items] == ["北京", "安南"]
    assert stats["skipped_too_long"] == 2


def test_bio_entities_and_file_readers(tmp_path, tokenizer):
    chars = list("张三李四在上海大学读书")
    tags = ["B-PER", "I-PER", "B-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"]
    items = entity_cloze_items([list(zip(chars, tags))], tokenizer, 32, tag_scheme="bio")
    # two adjacent persons stay two entities in BIO
    assert [(i.entity, i.entity_type, i.masked_positions) for i in items] == [
        ("张三", "PER", [1, 2]), ("李四", "PER", [3, 4]), ("上海大学", "ORG", [6, 7, 8, 9])]
    bio = tmp_path / "test_bio.txt"
    bio.write_text("".join(f"{c}\t{t}\n" for c, t in zip(chars, tags)) + "\n", encoding="utf-8")
    from_file = entity_cloze_items(read_cloze_sentences(str(bio), "bio"), tokenizer, 32)
    assert from_file == items
    assert read_cloze_sentences(str(bio), "bio") == [bio_entity_words(chars, tags)]
    tagged = tmp_path / "heldout.tagged.txt"
    tagged.write_text(TAGGED + "\n\n", encoding="utf-8")
    assert entity_cloze_items(read_cloze_sentences(str(tagged), "tagged"), tokenizer, 64) == \
        entity_cloze_items([tagged_words(TAGGED, "hand")], tokenizer, 64, tag_scheme="pos")


def test_scores_worked_out_by_hand(tokenizer):
    items = entity_cloze_items([tagged_words(TAGGED, "hand")], tokenizer, 64, tag_scheme="pos")
    wrong = tokenizer.mask_token_id
    predictions = [items[0].original_ids,                       # 3 of 3
                   [items[1].original_ids[0], wrong],            # 1 of 2
                   [wrong, wrong, wrong],                        # 0 of 3
                   items[3].original_ids]                        # 2 of 2
    assert score_entity_cloze(predictions, items) == {
        "cloze_char_accuracy": 6 / 10, "cloze_entity_exact": 2 / 4, "cloze_entities": 4, "cloze_chars": 10}
    with pytest.raises(ValueError, match="2 predicted ids for 3 masked tokens"):
        score_entity_cloze([items[0].original_ids[:2]] + predictions[1:], items)
    with pytest.raises(ValueError, match="3 predictions for 4 cloze items"):
        score_entity_cloze(predictions[:3], items)


class PositionAnswers(nn.Cell):
    """A fake masked LM: at sequence position p it predicts ``answers[p]`` (one-hot logits), whatever the input."""

    def __init__(self, answers, vocab_size):
        super().__init__()
        self.answers = Tensor(np.asarray(answers, np.int32))
        self.vocab_size = vocab_size

    def construct(self, input_ids, token_type_ids, attention_mask, masked_lm_positions):
        predicted = ops.gather(self.answers, masked_lm_positions, 0)
        logits = ops.one_hot(predicted, self.vocab_size, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))
        return logits, ops.zeros((input_ids.shape[0], 2), ms.float32)


def test_run_entity_cloze_with_a_model_that_knows_some_characters(tokenizer):
    items = entity_cloze_items([tagged_words(TAGGED, "hand")], tokenizer, 64, tag_scheme="pos")
    answers = [tokenizer.cls_token_id] + ids(tokenizer, SENTENCE) + [tokenizer.sep_token_id]
    answers[5] = answers[6]    # 北京 -> 京京: 1 of 2
    answers[12] = answers[10]  # 联合国 -> 联合联: 2 of 3
    model = PositionAnswers(answers, len(tokenizer))
    scores = run_entity_cloze(model, items, batch_size=3)  # 2 batches, the last one padded
    assert scores == {"cloze_char_accuracy": 8 / 10, "cloze_entity_exact": 2 / 4, "cloze_entities": 4,
                      "cloze_chars": 10}


def tiny_ernie(tokenizer):
    from src.ernie_model import load_config
    from src.heads import ErnieForPretraining
    ms.set_seed(0)
    return ErnieForPretraining(load_config("tiny", vocab_size=len(tokenizer), hidden_size=32, num_attention_heads=2,
                                           intermediate_size=64, hidden_dropout_prob=0.0,
                                           attention_probs_dropout_prob=0.0))


def test_a_real_tiny_ernie_gives_the_same_predictions_batched_and_one_by_one(tokenizer):
    model = tiny_ernie(tokenizer)
    items = entity_cloze_items([tagged_words(TAGGED, "hand")], tokenizer, 24, tag_scheme="pos")
    batched = predict_entity_cloze(model, items, batch_size=3, max_seq_len=24)  # a padded last batch
    # padding rows, padded positions and the batch size change nothing: one item at a time, unpadded, agrees
    for item, predicted in zip(items, batched):
        logits, _ = model(Tensor([item.input_ids], ms.int32), Tensor([[0] * len(item.input_ids)], ms.int32),
                          Tensor([[1] * len(item.input_ids)], ms.int32), Tensor([item.masked_positions], ms.int32))
        assert logits.asnumpy()[0].argmax(-1).tolist() == predicted
    assert score_entity_cloze(batched, items)["cloze_char_accuracy"] < 0.5  # an untrained model does not know them


def test_a_real_tiny_ernie_that_memorised_the_entities_scores_one(tokenizer, graph_mode):
    model = tiny_ernie(tokenizer)
    items = entity_cloze_items([tagged_words(TAGGED, "hand")], tokenizer, 24, tag_scheme="pos")
    columns = cloze_columns(items, 24)
    inputs = [Tensor(columns[name]) for name in ("input_ids", "segment_ids", "input_mask", "masked_lm_positions")]
    labels = np.zeros(columns["masked_lm_positions"].shape, np.int32)
    weights = np.zeros(labels.shape, np.float32)
    for row, item in enumerate(items):
        labels[row, :len(item.original_ids)] = item.original_ids
        weights[row, :len(item.original_ids)] = 1.0

    class MaskedLMLoss(nn.Cell):
        def __init__(self):
            super().__init__()
            self.model = model

        def construct(self, input_ids, segment_ids, input_mask, positions, labels, weights):
            logits, _ = self.model(input_ids, segment_ids, input_mask, positions)
            losses = ops.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
            return (losses * weights.reshape(-1)).sum() / weights.sum()

    train_step = nn.TrainOneStepCell(MaskedLMLoss(), nn.Adam(model.trainable_params(), learning_rate=2e-2))
    train_step.set_train(True)
    for _ in range(40):
        train_step(*inputs, Tensor(labels), Tensor(weights))
    assert model.training
    scores = run_entity_cloze(model, items, batch_size=4, max_seq_len=24)
    assert model.training  # run_entity_cloze restores the mode it found
    assert scores == {"cloze_char_accuracy": 1.0, "cloze_entity_exact": 1.0, "cloze_entities": 4, "cloze_chars": 10}
    again, _ = evaluate_entity_cloze(model, None, tokenizer, max_seq_len=24, batch_size=4, items=items)
    assert again == scores


def test_pretraining_reports_the_cloze_beside_mlm_accuracy(tmp_path, tokenizer):
    """run_ernie_pretrain.py --eval_data on word/tag text logs the entity cloze at each evaluation."""
    import json

    from src.pretrain import main
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([TAGGED, "张三/nr  去/v  上海/ns  读书/v  。/w", ""] * 8), encoding="utf-8")
    main(["--data_dir", str(corpus), "--data_format", "tagged", "--eval_data", str(corpus), "--vocab_file",
          tokenizer.vocab_file, "--config", "tiny", "--max_seq_len", "32", "--batch_size", "4", "--train_steps", "2",
          "--eval_every", "2", "--output_dir", str(tmp_path / "out"), "--device_target", "CPU",
          "--progress_bar", "false"])
    evaluations = [json.loads(line) for line in open(tmp_path / "out" / "train_log.jsonl", encoding="utf-8")
                   if '"eval"' in line]
    assert evaluations and {"mlm_accuracy", "cloze_char_accuracy", "cloze_entity_exact"} <= set(evaluations[-1])
    assert evaluations[-1]["cloze_entities"] == 6 * 8  # four entities a first line, two a second, eight times
