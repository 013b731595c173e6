"""Hugging Face ``ErnieForTokenClassification`` and ``ErnieForQuestionAnswering`` checkpoints (no pooler) convert,
match torch, export, predict and evaluate (issue 13 item 11).

Each model is made by transformers with random weights and saved with ``save_pretrained(safe_serialization=True)``;
``python -m src.convert_checkpoint --format hf`` converts it, a ``task.json`` written beside the converted checkpoint
says what it was trained for, and then: our logits equal torch's within 1e-5 (float32, logits of magnitude ~1), the
MindIR export gives the checkpoint's logits, ``predict.py`` gives the answer torch's logits give, and
``run_ernie_ner.py`` / ``run_ernie_mrc.py --do_eval`` score it.
"""
import json
import os
import shutil

import numpy as np
import pytest
import mindspore as ms

import export
import predict
from src.checkpoint import load_weights
from src.convert_checkpoint import main as convert_main
from src.data.mrc import MrcExample, convert_mrc_examples, extract_answers
from src.ernie_model import load_config
from src.finetune import main as finetune_main
from src.heads import ErnieForQuestionAnswering, ErnieForTokenClassification
from src.serving.runtime import MindIRBackend
from src.tasks.registry import MSRA_TAGS
from src.tokenizer import ErnieTokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-5
VOCAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tiny_vocab.txt")
LABELS = sorted(MSRA_TAGS, key=MSRA_TAGS.get)
TEXT = "北京大学在中国北京"
CONTEXT, QUESTION = "北京大学创建于一九八年，是中国第一所国立大学。", "北京大学创建于哪一年？"


def hf_checkpoint(folder, cls, **kwargs):
    """A random-weight transformers model saved as safetensors with our vocabulary; returns the torch model."""
    vocab_size = sum(1 for _ in open(VOCAB, encoding="utf-8"))
    config = transformers.ErnieConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=64, hidden_act="relu",
                                      max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-5,
                                      use_task_id=False, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                      **kwargs)
    torch.manual_seed(0)
    model = cls(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # far from the initial values, so that a wrongly mapped tensor shows
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1:
                parameter.copy_((1.0 if "LayerNorm.weight" in name else 0.0)
                                + 0.2 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / parameter.shape[1] ** 0.5)
    model.save_pretrained(str(folder), safe_serialization=True)
    assert os.path.isfile(folder / "model.safetensors")
    assert not any("pooler" in name for name in model.state_dict())
    shutil.copy(VOCAB, folder / "vocab.txt")
    return model


def converted(tmp_path, task_json, caplog):
    caplog.clear()
    assert convert_main(["--format", "hf", "--input", str(tmp_path / "hf"), "--output",
                         str(tmp_path / "converted" / "model.ckpt")]) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text  # no pooler is no loss
    folder = tmp_path / "converted"
    (folder / "task.json").write_text(json.dumps(task_json), encoding="utf-8")
    return folder


def torch_logits(model, ids, types, mask):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids).long(), token_type_ids=torch.tensor(types).long(),
                     attention_mask=torch.tensor(mask).long())


def model_inputs(tokenizer, text, max_seq_len):
    ids = [tokenizer.cls_token_id, *tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)), tokenizer.sep_token_id]
    padded = np.zeros((1, max_seq_len), np.int32)
    padded[0, :len(ids)] = ids
    mask = (padded != 0).astype(np.int32)
    return padded, np.zeros_like(padded), mask


def test_hf_token_classification_converts_exports_predicts_and_evaluates(tmp_path, capsys, caplog):
    theirs = hf_checkpoint(tmp_path / "hf", transformers.ErnieForTokenClassification, num_labels=len(LABELS))
    folder = converted(tmp_path, {"task_type": "msra_ner", "kind": "ner", "labels": LABELS, "max_seq_len": 16,
                                  "vocab_file": "vocab.txt", "use_crf": False}, caplog)
    config = load_config(str(folder / "ernie_config.json"))
    ours = ErnieForTokenClassification(config, len(LABELS))
    report = load_weights(ours, str(folder / "model.ckpt"))
    assert not report.missing and not report.unexpected
    ours.set_train(False)
    tokenizer = ErnieTokenizer(VOCAB)
    inputs = model_inputs(tokenizer, TEXT, 16)
    expected = torch_logits(theirs, *inputs).logits.numpy()
    logits = ours(*(ms.Tensor(x) for x in inputs)).asnumpy()
    np.testing.assert_allclose(logits, expected, atol=TOLERANCE, rtol=0)

    mindir = export.main(["--model", str(folder / "model.ckpt"), "--file_name", str(tmp_path / "out" / "ner"),
                          "--file_format", "MINDIR"])
    mindir = str(tmp_path / "out" / "ner.mindir") if not isinstance(mindir, str) else mindir
    (exported,) = MindIRBackend(mindir, 1, True).run({"input_ids": inputs[0], "segment_ids": inputs[1],
                                                      "input_mask": inputs[2]})
    np.testing.assert_allclose(exported, expected, atol=TOLERANCE, rtol=0)

    tags = [LABELS[i] for i in expected[0].argmax(-1)[1:1 + len(TEXT)]]
    for model in (str(folder / "model.ckpt"), mindir):
        result = predict.predict(["--model", model, "--text", TEXT, "--progress_bar", "false"])
        predicted = ["O"] * len(TEXT)
        for entity in result["entities"]:
            predicted[entity["start"]] = "B-" + entity["type"]
            predicted[entity["start"] + 1:entity["end"]] = ["I-" + entity["type"]] * (entity["end"] - entity["start"] - 1)
        from src.assessment_method import get_entities
        assert get_entities(predicted) == get_entities(tags), (model, result, tags)

    dev = tmp_path / "dev.tsv"
    dev.write_text("text_a\tlabel\n" + "\x02".join(TEXT) + "\t" + "\x02".join(["B-LOC", "I-LOC", "I-LOC", "I-LOC", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC"]) + "\n", encoding="utf-8")
    capsys.readouterr()
    metrics = finetune_main("ner", ["--task_type", "msra_ner", "--do_eval", "true", "--device_target", "CPU",
                                    "--load_finetune_checkpoint_path", str(folder / "model.ckpt"),
                                    "--eval_data_file_path", str(dev), "--output_dir", str(tmp_path / "eval"),
                                    "--progress_bar", "false"])
    assert {"precision", "recall", "f1"} <= set(metrics)


def test_hf_question_answering_converts_exports_predicts_and_evaluates(tmp_path, capsys, caplog):
    theirs = hf_checkpoint(tmp_path / "hf", transformers.ErnieForQuestionAnswering)
    info = {"task_type": "cmrc", "kind": "mrc", "labels": [], "max_seq_len": 40, "vocab_file": "vocab.txt",
            "max_query_len": 16, "doc_stride": 16}
    folder = converted(tmp_path, info, caplog)
    config = load_config(str(folder / "ernie_config.json"))
    ours = ErnieForQuestionAnswering(config)
    report = load_weights(ours, str(folder / "model.ckpt"))
    assert not report.missing and not report.unexpected
    ours.set_train(False)
    tokenizer = ErnieTokenizer(VOCAB)
    examples = [MrcExample("q", QUESTION, CONTEXT, [])]
    columns, features = convert_mrc_examples(examples, tokenizer, 40, 16, 16, is_training=False)
    inputs = (columns["input_ids"], columns["segment_ids"], columns["input_mask"])
    reference = torch_logits(theirs, *inputs)
    expected = (reference.start_logits.numpy(), reference.end_logits.numpy())
    start, end = (x.asnumpy() for x in ours(*(ms.Tensor(x) for x in inputs)))
    np.testing.assert_allclose(start, expected[0], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(end, expected[1], atol=TOLERANCE, rtol=0)

    mindir = export.main(["--model", str(folder / "model.ckpt"), "--file_name", str(tmp_path / "out" / "mrc"),
                          "--file_format", "MINDIR"])
    mindir = str(tmp_path / "out" / "mrc.mindir") if not isinstance(mindir, str) else mindir
    answers, _ = extract_answers(examples, features, *expected)
    for model in (str(folder / "model.ckpt"), mindir):
        result = predict.predict(["--model", model, "--context", CONTEXT, "--question", QUESTION,
                                  "--progress_bar", "false"])
        assert result["answer"] == answers["q"], (model, result)

    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q", "question": QUESTION, "answers": [{"text": "一九八年", "answer_start": 7}]}]}]}]},
        ensure_ascii=False), encoding="utf-8")
    metrics = finetune_main("mrc", ["--task_type", "cmrc", "--do_eval", "true", "--device_target", "CPU",
                                    "--load_finetune_checkpoint_path", str(folder / "model.ckpt"),
                                    "--eval_data_file_path", str(dev), "--output_dir", str(tmp_path / "eval"),
                                    "--progress_bar", "false"])
    assert metrics["total"] == 1
    predictions = json.load(open(tmp_path / "eval" / "dev_predictions.json", encoding="utf-8"))
    assert predictions == {"q": answers["q"]}
