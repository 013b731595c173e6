"""Predictions on raw text: the checkpoint, MindIR and ONNX backends give the same answers; NER entity and MRC answer
offsets index the original text exactly (spaces, English, full-width characters, emoji, combining marks); long texts
are windowed and nothing is cut; predict.py's single, batch and evaluation modes."""
import json
import os

import numpy as np
import pytest
import mindspore as ms

import export
import predict
from src.data.mrc import sliding_windows
from src.serving.predictor import Predictor
from src.tasks.registry import TaskInfo, build_task
from src.tokenizer import ErnieTokenizer
from test_export import MSRA_LABELS, TINY_VOCAB, make_finetuned

SEQ_LEN = 24
TOLERANCE = 1e-5  # probabilities, float32 models

MIXED = "张三 在北京,hotel 👍北京 ＡＢＣ全角 e\u0301北京！"  # spaces, English, emoji, full-width, a combining mark
LONG_NER = "张三在北京读书。" * 9 + "北京"  # 74 chars -> several windows of 22 tokens
RECORDS = {
    "classification": [{"text": "房间很好，服务也不错。"}, {"text": "价格太贵了，不推荐。" * 8},
                       {"text": "the hotel is ok", "text_b": "很好"}],
    "ner": [{"text": MIXED}, {"text": LONG_NER}, {"text": ""}],
    "mrc": [{"context": "北京是中华人民共和国的首都，也是全国的政治中心。", "question": "首都是哪里？"},
            {"context": "The hotel 在 北京 👍，ＡＢＣ。" * 4, "question": "hotel 在哪里？"}],
}
KINDS = {"classification": ("chnsenticorp", False), "ner": ("msra_ner", False), "ner_crf": ("msra_ner", True),
         "mrc": ("cmrc", False)}

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Per kind: (fine-tuning folder, MindIR with an open batch size, ONNX with batch 2)."""
    root = tmp_path_factory.mktemp("predict")
    ms.set_context(mode=ms.GRAPH_MODE)
    models = {}
    for name, (task_type, use_crf) in KINDS.items():
        folder = make_finetuned(str(root / name), task_type, use_crf, max_seq_len=SEQ_LEN, seed=3)
        mindir = export.main(["--ckpt_file", folder, "--file_name", str(root / "out" / name),
                              "--dynamic_shape", "batch"])
        onnx = export.main(["--ckpt_file", folder, "--file_name", str(root / "out" / name), "--file_format", "ONNX",
                            "--batch_size", "2"])
        models[name] = (folder, mindir, onnx)
    return models

def records_of(name):
    return RECORDS["ner" if name.startswith("ner") else name]

@pytest.mark.parametrize("name", list(KINDS))
def test_checkpoint_mindir_and_onnx_backends_agree(exported, name):
    pytest.importorskip("onnxruntime")
    records = records_of(name)
    results = [Predictor.from_path(path, batch_size=3).predict(records) for path in exported[name]]
    reference = results[0]
    for other in results[1:]:
        assert len(other) == len(reference) == len(records)
        for want, got in zip(reference, other):
            if "probabilities" in want:
                assert got["label"] == want["label"]
                np.testing.assert_allclose(list(got["probabilities"].values()), list(want["probabilities"].values()),
                                           rtol=0, atol=TOLERANCE)
            elif "entities" in want:
                assert got["entities"] == want["entities"]
            else:
                assert (got["answer"], got["start"], got["end"]) == (want["answer"], want["start"], want["end"])
                assert abs(got["probability"] - want["probability"]) < TOLERANCE
            assert got["windows"] == want["windows"]
    for record, result in zip(records, reference):  # the random model's answers index the text exactly
        for entity in result.get("entities", []):
            assert entity["text"] and record["text"][entity["start"]:entity["end"]] == entity["text"]
        if "answer" in result:
            assert result["answer"] and record["context"][result["start"]:result["end"]] == result["answer"]
    if name.startswith("ner"):
        assert reference[0]["entities"] and reference[1]["windows"] > 1 and reference[2] == {"entities": [],
                                                                                            "windows": 1}
    if name == "classification":
        assert [r["windows"] for r in reference] == [1, 7, 1]  # 80 tokens: windows of 22 every 11
    if name == "mrc":
        assert reference[1]["windows"] > 1

class RuleBackend:
    """A stand-in model that tags, or scores, tokens by their id only, so the correct answer is known by construction;
    it records the rows it was given."""

    def __init__(self, tokenizer, kind, labels=None, blind_edges=False):
        self.ids = {c: tokenizer.vocab[c] for c in "张三北京"}
        self.kind, self.labels, self.rows = kind, labels, []
        self.blind_edges = blind_edges  # NER: the first and last token of a window get "O" (too little context)

    def run(self, columns):
        ids = columns["input_ids"]
        self.rows.extend(ids.tolist())
        if self.kind == "ner":  # 张三 -> PER, 北京 -> LOC
            tags = np.full(ids.shape, self.labels.index("O"))
            for char, tag in zip("张三北京", ("B-PER", "I-PER", "B-LOC", "I-LOC")):
                tags[ids == self.ids[char]] = self.labels.index(tag)
            if self.blind_edges:
                rows = np.arange(len(ids))
                tags[:, 1] = tags[rows, columns["input_mask"].sum(1) - 2] = self.labels.index("O")
            return (np.eye(len(self.labels), dtype=np.float32)[tags] * 5.0,)
        if self.kind == "mrc":  # an answer starts at 北 and ends at 京 of the context
            context = columns["segment_ids"] == 1
            start = np.where(context & (ids == self.ids["北"]), 8.0, 0.0).astype(np.float32)
            end = np.where(context & (ids == self.ids["京"]), 8.0, 0.0).astype(np.float32)
            return start, end
        # classification: a window's logits say how many 北 it holds
        return (np.stack([np.zeros(len(ids)), (ids == self.ids["北"]).sum(1)], 1).astype(np.float32),)

def rule_predictor(kind, labels=(), blind_edges=False):
    info = TaskInfo("msra_ner" if kind == "ner" else "cmrc" if kind == "mrc" else "chnsenticorp", kind, list(labels),
                    SEQ_LEN, TINY_VOCAB, max_query_len=8, doc_stride=6)
    predictor = Predictor(build_task(info), None)
    predictor.backend = RuleBackend(predictor.tokenizer, kind, list(labels), blind_edges)
    return predictor

def expected_spans(text, word):
    spans, start = [], text.find(word)
    while start >= 0:
        spans.append((start, start + len(word)))
        start = text.find(word, start + 1)
    return spans

@pytest.mark.parametrize("text", [MIXED, LONG_NER, "  北京\t张三\n", "👍" * 30 + "北京"])
def test_ner_entities_index_the_original_text(text):
    predictor = rule_predictor("ner", MSRA_LABELS)
    (result,) = predictor.predict([{"text": text}])
    want = sorted([("PER", s, e) for s, e in expected_spans(text, "张三")] +
                  [("LOC", s, e) for s, e in expected_spans(text, "北京")], key=lambda x: x[1])
    got = [(e["type"], e["start"], e["end"]) for e in result["entities"]]
    assert got == want
    assert all(text[e["start"]:e["end"]] == e["text"] for e in result["entities"])

def test_long_ner_text_takes_each_tag_from_the_window_with_most_context():
    # one token per char; windows of 22 tokens starting every 11. The stand-in model cannot tag the first and last
    # token of a window, so only tags taken from the window where a token is central find every entity: 北 at char 21
    # is the last token of window 0 and the 11th of window 1.
    text = "很好" * 10 + "很北京" + "张三在北京读书。" * 6 + "很"
    predictor = rule_predictor("ner", MSRA_LABELS, blind_edges=True)
    (result,) = predictor.predict([{"text": text}])
    windows = sliding_windows(len(text), SEQ_LEN - 2, (SEQ_LEN - 2) // 2)
    assert result["windows"] == len(windows) == 6
    want = sorted([("PER", s, e) for s, e in expected_spans(text, "张三")] +
                  [("LOC", s, e) for s, e in expected_spans(text, "北京")], key=lambda x: x[1])
    assert [(e["type"], e["start"], e["end"]) for e in result["entities"]] == want
    assert want[0] == ("LOC", 21, 23)
    seen = set()
    for (start, length), row in zip(windows, predictor.backend.rows):
        assert row[0] == 1 and row[length + 1] == 2  # [CLS] window [SEP]
        seen.update(range(start, start + length))
    assert seen == set(range(len(text)))  # nothing cut

def test_long_classification_text_averages_its_windows():
    text = "北京很好。" * 10  # 50 tokens; windows of 22, stride 11
    predictor = rule_predictor("classification", ["0", "1"])
    (result,) = predictor.predict([{"text": text}])
    tokens = predictor.tokenizer.convert_tokens_to_ids(predictor.tokenizer.tokenize(text))
    windows = sliding_windows(len(tokens), SEQ_LEN - 2, (SEQ_LEN - 2) // 2)
    assert result["windows"] == len(windows) == 4
    rows = predictor.backend.rows
    covered = [token for (start, length), row in zip(windows, rows) for token in row[1:length + 1]]
    assert sorted(set(range(len(tokens)))) == sorted({start + i for start, length in windows for i in range(length)})
    assert covered == [t for start, length in windows for t in tokens[start:start + length]]
    logits = np.array([[0.0, sum(t == predictor.backend.ids["北"] for t in row)] for row in rows])
    probabilities = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).mean(0)
    assert result["label"] == "1"
    np.testing.assert_allclose([result["probabilities"]["0"], result["probabilities"]["1"]], probabilities, atol=1e-12)

def test_long_second_text_is_cut_and_says_so():
    predictor = rule_predictor("classification", ["0", "1"])
    short, long = predictor.predict([{"text": "北京很好", "text_b": "很好"}, {"text": "很好", "text_b": "北京很好" * 10}])
    assert "text_b_truncated" not in short and short["windows"] == 1
    assert long["text_b_truncated"] is True and long["windows"] == 1
    assert all(len([t for t in row if t]) <= SEQ_LEN for row in predictor.backend.rows)

@pytest.mark.parametrize("context", [
    "The hotel 在 北京 👍，ＡＢＣ。",
    "ＡＢＣ" + "是 the 首都 👍 " * 12 + "北京" + " ok" * 3,  # the answer is in a later window
])
def test_mrc_answer_offsets_index_the_context(context):
    predictor = rule_predictor("mrc")
    (result,) = predictor.predict([{"context": context, "question": "首都是哪里？"}])
    (start, end), = expected_spans(context, "北京")
    assert (result["answer"], result["start"], result["end"]) == ("北京", start, end)
    assert context[result["start"]:result["end"]] == "北京"
    if len(context) > 40:
        assert result["windows"] > 1

def test_records_missing_their_text_are_refused():
    with pytest.raises(ValueError, match=r"record 1: .*\['question'\]"):
        rule_predictor("mrc").predict([{"context": "北京", "question": "哪里"}, {"context": "北京"}])

def run_cli(argv, capsys):
    result = predict.main(argv)
    return result, capsys.readouterr().out

def test_cli_single_text(exported, capsys):
    pytest.importorskip("onnxruntime")
    onnx = exported["classification"][2]
    result, out = run_cli(["--model", onnx, "--task", "chnsenticorp", "--text", "这家酒店很干净"], capsys)
    assert json.loads(out) == result and set(result["probabilities"]) == {"0", "1"}
    with pytest.raises(SystemExit, match="is a chnsenticorp model"):
        predict.main(["--model", onnx, "--task", "xnli", "--text", "很好"])
    with pytest.raises(SystemExit, match="needs --context and --question"):
        predict.main(["--model", exported["mrc"][2], "--text", "很好"])
    _, out = run_cli(["--model", exported["mrc"][1], "--context", "北京是首都。", "--question", "首都？"], capsys)
    assert {"context", "question", "answer", "start", "end", "probability", "windows"} == set(json.loads(out))
    with pytest.raises(SystemExit, match="describe a checkpoint"):
        predict.main(["--model", onnx, "--text", "很好", "--max_seq_len", "64"])

def test_cli_batch_mode(exported, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    folder, _, onnx = exported["ner"]
    texts = [r["text"] or "。" for r in RECORDS["ner"]]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    predict.main(["--model", onnx, "--input_file", str(tmp_path / "in.txt"), "--output_file", str(out)])
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = Predictor.from_path(folder).predict([{"text": t} for t in texts])
    assert [line.pop("id") for line in lines] == [1, 2, 3] and lines == expected

    (tmp_path / "in.jsonl").write_text(
        "\n".join(json.dumps({"id": f"q{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(texts)),
        encoding="utf-8")
    _, printed = run_cli(["--model", onnx, "--input_file", str(tmp_path / "in.jsonl")], capsys)
    assert [json.loads(line)["id"] for line in printed.splitlines()] == ["q0", "q1", "q2"]

def test_cli_evaluation_mode_matches_the_checkpoint(exported, capsys):
    pytest.importorskip("onnxruntime")
    data = os.path.join(os.path.dirname(TINY_VOCAB), "chnsenticorp.tsv")
    folder, _, onnx = exported["classification"]
    from_onnx, out = run_cli(["--model", onnx, "--eval_data_file_path", data], capsys)
    from_checkpoint, _ = run_cli(["--model", folder, "--eval_data_file_path", data], capsys)
    assert from_onnx["total_num"] == 4 and from_onnx["acc_num"] == from_checkpoint["acc_num"]
    assert f"accuracy {from_onnx['accuracy']:.6f}" in out

@pytest.mark.parametrize("content, suffix, message", [
    ('{"text": "北京"}\n{"text": 北京}\n', ".jsonl", r"in\.jsonl:2: not valid JSON"),
    ('{"text": "北京"}\n{"txt": "北京"}\n', ".jsonl", r"in\.jsonl:2: needs the text field"),
    ("北京\n\n张三\n", ".txt", r"in\.txt:2: empty line"),
])
def test_cli_bad_input_names_file_and_line(exported, tmp_path, content, suffix, message):
    path = tmp_path / f"in{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        predict.main(["--model", exported["ner"][1], "--input_file", str(path), "--output_file",
                      str(tmp_path / "out.jsonl")])
    assert not os.path.exists(tmp_path / "out.jsonl")

def test_cli_mrc_needs_json_lines(exported, tmp_path):
    (tmp_path / "in.txt").write_text("北京\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="input must be JSON lines"):
        predict.main(["--model", exported["mrc"][1], "--input_file", str(tmp_path / "in.txt")])

class RecordingBackend:
    """Records the rows it is given; returns per-token emissions that depend only on each token id (or, with
    ``per_token=False``, per-row logits)."""

    def __init__(self, num_labels, per_token=True):
        self.num_labels, self.per_token, self.rows = num_labels, per_token, []

    def run(self, columns):
        ids = columns["input_ids"]
        self.rows.extend(ids.tolist())
        one_hot = np.eye(self.num_labels, dtype=np.float32)
        return (one_hot[ids % self.num_labels] if self.per_token else one_hot[ids.sum(1) % self.num_labels],)

@pytest.mark.real_data
def test_ner_features_and_offsets_on_real_sentences(shared_data, ernie_vocab):
    """The predictor's windows of raw text hold exactly the training features' tokens (convert_ner_examples), and
    tags map back to the right characters, on MSRA-NER dev with ERNIE's vocabulary (128 sentences need windows)."""
    from src.data.ner import convert_ner_examples, entities_from_tags, read_ner_file

    label_map = {label: i for i, label in enumerate(MSRA_LABELS)}
    examples = read_ner_file(os.path.join(shared_data, "msra_ner_ernie", "dev.tsv"), label_map)
    columns, alignments = convert_ner_examples(examples, ErnieTokenizer(ernie_vocab), 1024, label_map)
    max_seq_len = 64
    info = TaskInfo("msra_ner", "ner", MSRA_LABELS, max_seq_len, ernie_vocab)
    predictor = Predictor(build_task(info), RecordingBackend(len(MSRA_LABELS)))
    texts = ["".join(example.chars) for example in examples]
    results = predictor.predict([{"text": text} for text in texts])

    row = 0
    long_texts = 0
    for text, result, full_ids, full_mask, alignment in zip(texts, results, columns["input_ids"],
                                                            columns["input_mask"], alignments):
        tokens = full_ids[1:full_mask.sum() - 1].tolist()  # the whole sentence, as training tokenizes it
        windows = sliding_windows(len(tokens), max_seq_len - 2, (max_seq_len - 2) // 2)
        assert result["windows"] == len(windows)
        long_texts += len(windows) > 1
        for start, length in windows:
            assert predictor.backend.rows[row][:length + 2] == [1, *tokens[start:start + length], 2]
            row += 1
        # each char's tag is its first token's id % 7 (RecordingBackend), wherever the window
        tags = ["O"] * len(text)
        for position, char_index in enumerate(alignment.token_to_char[1:len(tokens) + 1]):
            if position == 0 or alignment.token_to_char[position] != char_index:
                tags[char_index] = MSRA_LABELS[tokens[position] % len(MSRA_LABELS)]
        want = [(kind, start, end) for kind, start, end in entities_from_tags(list(text), tags)]
        assert [(e["type"], e["start"], e["end"]) for e in result["entities"]] == want
        assert all(text[e["start"]:e["end"]] == e["text"] for e in result["entities"])
    assert row == len(predictor.backend.rows) and long_texts > 100

@pytest.mark.real_data
def test_classification_features_on_real_reviews(shared_data, ernie_vocab):
    """A review that fits is exactly the training feature row (convert_classification_examples); a longer one is
    windowed over all its tokens."""
    from src.data.classification import convert_classification_examples, read_classification_file

    label_map = {"0": 0, "1": 1}
    examples = read_classification_file(os.path.join(shared_data, "chnsenticorp_ernie", "dev.tsv"), label_map)[:300]
    max_seq_len = 128
    info = TaskInfo("chnsenticorp", "classification", ["0", "1"], max_seq_len, ernie_vocab)
    predictor = Predictor(build_task(info), RecordingBackend(2, per_token=False))
    results = predictor.predict([{"text": e.text_a} for e in examples])
    columns = convert_classification_examples(examples, predictor.tokenizer, 4096, label_map)
    row = 0
    for result, ids, mask in zip(results, columns["input_ids"], columns["input_mask"]):
        tokens = ids[1:mask.sum() - 1].tolist()
        windows = sliding_windows(len(tokens), max_seq_len - 2, (max_seq_len - 2) // 2)
        assert result["windows"] == len(windows)
        for start, length in windows:
            assert predictor.backend.rows[row] == [1, *tokens[start:start + length], 2] + [0] * (max_seq_len - length - 2)
            row += 1
    assert sum(r["windows"] > 1 for r in results) > 50
