"""Metrics against independent references: sklearn / scipy / seqeval where installed, a literal transcription of
Paddle ERNIE's evaluate_mrr and of the official cmrc2018_evaluate.py, and hand-computed cases."""
import json
import os
import random
import re

import numpy as np
import pytest

from src import assessment_method as am


# ---------------------------------------------------------------- classification

def test_accuracy():
    assert am.accuracy([1, 0, 2, 2], np.array([1, 1, 2, 0])) == {"acc_num": 2, "total_num": 4, "accuracy": 0.5}
    with pytest.raises(ValueError, match="3 predicted labels but 2 gold"):
        am.accuracy([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="no labels"):
        am.accuracy([], [])


def test_binary_prf_by_hand():
    # tp 2 (pos 0, 3), fp 1 (pos 1), fn 1 (pos 4); label 2 counts as negative
    result = am.binary_prf([1, 1, 0, 1, 0, 2], [1, 0, 0, 1, 1, 2])
    assert result == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3}, abs=1e-12)
    assert am.binary_prf([0, 0], [0, 0]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.filterwarnings("ignore:A single label was found")  # sklearn, on draws with one class
def test_binary_prf_and_mcc_match_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, classes = int(rng.integers(1, 30)), int(rng.integers(2, 4))
        pred, gold = rng.integers(0, classes, n), rng.integers(0, classes, n)
        p, r, f, _ = metrics.precision_recall_fscore_support(gold, pred, labels=[1], average=None, zero_division=0)
        assert am.binary_prf(pred, gold) == pytest.approx({"precision": p[0], "recall": r[0], "f1": f[0]}, abs=1e-12)
        assert am.matthews_corrcoef(pred, gold) == pytest.approx(metrics.matthews_corrcoef(gold, pred), abs=1e-12)


def test_mcc_binary_formula_by_hand():
    pred, gold = [1, 1, 0, 0, 1, 0, 1], [1, 0, 0, 1, 1, 0, 1]
    tp, tn, fp, fn = 3, 2, 1, 1
    want = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert am.matthews_corrcoef(pred, gold) == pytest.approx(want, abs=1e-12)
    assert am.matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0  # undefined: a constant prediction


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(3, 40))
        x = rng.integers(0, 4, n) if trial % 2 else rng.normal(size=n)  # integer draws: many ties
        y = rng.integers(0, 2, n) if trial % 3 else rng.normal(size=n)
        if len(set(x.tolist())) == 1 or len(set(y.tolist())) == 1:
            continue
        assert am.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert np.isnan(am.spearman([1, 2, 3], [5, 5, 5]))


def paddle_evaluate_mrr(qids, scores, labels):
    """Literal transcription of PaddlePaddle/ERNIE finetune/classifier.py: sort by (qid, -score), then scan."""
    preds = sorted(zip(qids, scores, labels), key=lambda elem: (elem[0], -elem[1]))
    last_qid, total_mrr, qnum, rank, correct = None, 0.0, 0.0, 0.0, False
    for qid, score, label in preds:
        if qid != last_qid:
            rank, correct, last_qid = 0.0, False, qid
            qnum += 1
        rank += 1
        if not correct and label != 0:
            total_mrr += 1.0 / rank
            correct = True
    return total_mrr / qnum


def test_mrr_by_hand():
    qids = [7, 7, 7, 3, 3, 9, 9]
    scores = [0.2, 0.9, 0.5, 0.4, 0.4, 0.8, 0.1]
    labels = [1, 0, 1, 0, 1, 0, 0]
    # qid 7 ranks 0.9(0) 0.5(1): 1/2; qid 3 ties keep input order, positive second: 1/2; qid 9 has no positive: 0
    assert am.mean_reciprocal_rank(qids, scores, labels) == pytest.approx((0.5 + 0.5 + 0.0) / 3, abs=1e-12)


def test_mrr_matches_paddle_evaluate_mrr():
    rng = np.random.default_rng(2)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        qids = rng.integers(0, 5, n).tolist()
        scores = rng.integers(0, 4, n).astype(float).tolist()  # coarse scores: ties
        labels = rng.integers(0, 2, n).tolist()
        assert am.mean_reciprocal_rank(qids, scores, labels) == pytest.approx(
            paddle_evaluate_mrr(qids, scores, labels), abs=1e-12)
    with pytest.raises(ValueError, match="qids"):
        am.mean_reciprocal_rank([1], [0.5, 0.2], [1, 0])


# ---------------------------------------------------------------- NER

def test_get_entities_rules():
    assert am.get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    assert am.get_entities(["O", "I-PER", "I-PER"]) == [("PER", 1, 2)]  # I- after O starts a chunk
    assert am.get_entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 2)]  # type switch
    assert am.get_entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 0), ("PER", 1, 2)]
    assert am.get_entities(["S-ORG", "B-ORG", "E-ORG", "E-ORG"]) == [("ORG", 0, 0), ("ORG", 1, 2), ("ORG", 3, 3)]
    assert am.get_entities(["O", "I-PER"]) == [("PER", 1, 1)]  # trailing entity
    assert am.get_entities([]) == []
    with pytest.raises(ValueError, match="not an NER tag"):
        am.get_entities(["B-PER", "PER"])


def test_entity_prf_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O", "B-LOC"]]
    result = am.entity_prf(gold, pred)
    assert (result["gold"], result["pred"], result["correct"]) == (3, 3, 1)
    assert result["precision"] == result["recall"] == result["f1"] == pytest.approx(1 / 3, abs=1e-12)
    assert result["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "gold": 1, "pred": 1,
                                         "correct": 1}
    assert result["per_type"]["LOC"]["correct"] == 0 and result["per_type"]["ORG"]["pred"] == 1
    with pytest.raises(ValueError, match="sequence 0: 2 gold tags but 1 predicted"):
        am.entity_prf([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="list of tag sequences"):
        am.entity_prf(["O", "B-PER"], ["O", "B-PER"])


TAGS = ["O", "O", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-ORG", "I-ORG"]


def random_tags(rng, length, tags=TAGS):
    return [rng.choice(tags) for _ in range(length)]


def perturb(rng, tags):
    """A prediction that shares most of the gold tags, so that some entities match."""
    return [rng.choice(TAGS) if rng.random() < 0.2 else tag for tag in tags]


def test_entity_prf_matches_seqeval_on_random_and_adversarial_tags():
    sequence_labeling = pytest.importorskip("seqeval.metrics.sequence_labeling")
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    bio = [t for t in TAGS if t[0] in "OBI"]
    adversarial = [["I-PER"], ["O", "I-PER", "I-LOC"], ["B-PER", "I-LOC", "E-LOC"], ["E-PER", "E-PER", "S-PER"],
                   ["B-PER", "S-PER", "I-PER", "B-LOC"], ["I-ORG", "E-ORG", "I-ORG"], ["S-LOC", "I-LOC", "O", "E-LOC"],
                   ["B-ORG", "I-ORG", "I-ORG"], ["O", "O"]]
    for case in range(3000):
        tag_set = bio if case % 2 else TAGS  # BIO-only sequences and mixed IOBES
        gold = [random_tags(rng, rng.randint(0, 12), tag_set) for _ in range(rng.randint(1, 4))]
        pred = [perturb(rng, tags) if rng.random() < 0.7 else random_tags(rng, len(tags), tag_set) for tags in gold]
        if case < len(adversarial) ** 2:
            gold.append(adversarial[case % len(adversarial)])
            pred.append(adversarial[case // len(adversarial)][:len(gold[-1])])
            pred[-1] += ["O"] * (len(gold[-1]) - len(pred[-1]))
        for tags in gold + pred:
            assert am.get_entities(tags) == sequence_labeling.get_entities(tags)
        result = am.entity_prf(gold, pred)
        for name, score in (("precision", seqeval_metrics.precision_score), ("recall", seqeval_metrics.recall_score),
                            ("f1", seqeval_metrics.f1_score)):
            assert result[name] == pytest.approx(score(gold, pred, zero_division=0), abs=1e-12), (name, gold, pred)
        p, r, f, support = sequence_labeling.precision_recall_fscore_support(gold, pred, average=None,
                                                                             zero_division=0)
        per_type = result["per_type"]
        assert [per_type[t]["precision"] for t in per_type] == pytest.approx(p.tolist(), abs=1e-12)
        assert [per_type[t]["recall"] for t in per_type] == pytest.approx(r.tolist(), abs=1e-12)
        assert [per_type[t]["f1"] for t in per_type] == pytest.approx(f.tolist(), abs=1e-12)
        assert [per_type[t]["gold"] for t in per_type] == support.tolist()


# ---------------------------------------------------------------- CMRC2018

def test_word_tokenize_follows_nltk_rules():
    cases = {
        '"the yes man"': ["``", "the", "yes", "man", "''"],
        "42%": ["42", "%"],
        "nt$25,000": ["nt", "$", "25,000"],
        "a,b": ["a", ",", "b"],
        "(canopy),": ["(", "canopy", ")", ","],
        "r&b": ["r", "&", "b"],
        "3.88 and 4.": ["3.88", "and", "4", "."],
        "st. john of matha": ["st.", "john", "of", "matha"],
        "wait... ok?!": ["wait", "...", "ok", "?", "!"],
        "don't stop 'em": ["do", "n't", "stop", "'", "em"],
        "ho(o)p'": ["ho", "(", "o", ")", "p", "'"],
        "1\u20142": ["1", "\u2014", "2"],
        " \xa0 ": [],
    }
    for text, tokens in cases.items():
        assert am._word_tokenize(text) == tokens, text


def test_word_tokenize_equals_nltk():
    """nltk is a test extra (requirements-dev.txt), not a dependency; its word tokenizer needs no Punkt data."""
    tokenize = pytest.importorskip("nltk.tokenize").NLTKWordTokenizer().tokenize
    rng = random.Random(3)
    alphabet = list("abnst12 .,;%$&()[]{}<>\"'!?@#«»‘„—\u2013|°．") + ["n't", "'s", "'ll", "\xa0", "...", "3.5"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        assert am._word_tokenize(text) == tokenize(text), text


def test_mixed_segmentation():
    assert am.cmrc_mixed_segmentation(" 《The Yes Man》是2000年 (电影)。") == [
        "the", "yes", "man", "是", "2000", "年", "(", "电", "影", ")"]
    assert am.cmrc_mixed_segmentation("光荣和ω-force") == ["光", "荣", "和", "ωforce"]  # '-' removed first


def squad(*questions):
    """A SQuAD-format dataset of (id, [answers]) pairs."""
    return {"data": [{"paragraphs": [{"context": "", "qas": [
        {"id": qid, "question": "", "answers": [{"text": text, "answer_start": 0} for text in answers]}
        for qid, answers in questions]}]}]}


def test_cmrc_scores_by_hand():
    assert am.cmrc_f1(["北京大学"], "北京") == pytest.approx(2 / 3, abs=1e-12)  # lcs 2: P 1, R 1/2
    assert am.cmrc_f1(["北京大学", "北京"], "在北京") == pytest.approx(0.8, abs=1e-12)  # best answer: P 2/3, R 1
    assert am.cmrc_f1(["北京大"], "北大京") == pytest.approx(1 / 3, abs=1e-12)  # common substring, not subsequence
    assert am.cmrc_f1(["1000元"], "1,000元") == pytest.approx(0.5, abs=1e-12)  # '1,000' is one token
    assert am.cmrc_f1(["北京"], "") == 0.0
    assert am.cmrc_em(["《The Yes Man》"], "the yes man") == 1.0
    assert am.cmrc_em(["北京大学"], "北京大学。") == 1.0
    assert am.cmrc_em(["北京大学"], "北京 大学") == 0.0  # inner spaces stay for EM ...
    assert am.cmrc_f1(["北京大学"], "北京 大学") == 1.0  # ... but not for F1


def test_cmrc_evaluate_by_hand(tmp_path):
    dataset = squad(("Q1", ["北京大学", "北京"]), ("Q2 ", ["北京大学"]), ("Q3", ["上海"]))
    predictions = {"Q1": "在北京", "Q2": "北京大学。", "Q9": "extra"}
    want = {"exact_match": 100 * (0 + 1 + 0) / 3, "f1": 100 * (0.8 + 1 + 0) / 3, "total": 3, "skipped": 1,
            "no_reference": 0, "extra": 1}
    assert am.cmrc_evaluate(dataset, predictions) == pytest.approx(want, abs=1e-9)
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
    assert am.cmrc_evaluate(str(path), predictions) == pytest.approx(want, abs=1e-9)
    # no reference answer: in the denominator with 0, as the official script counts it (its EM is 0)
    assert am.cmrc_evaluate(squad(("Q1", []), ("Q2", ["北京"])), {"Q1": "x", "Q2": "北京"}) == pytest.approx(
        {"exact_match": 50.0, "f1": 50.0, "total": 2, "skipped": 0, "no_reference": 1, "extra": 0}, abs=1e-9)
    with pytest.raises(ValueError, match="SQuAD-format"):
        am.cmrc_evaluate({"version": 1}, {})
    with pytest.raises(ValueError, match="no questions"):
        am.cmrc_evaluate({"data": []}, {})


# A literal Python 3 transcription of the official cmrc2018_evaluate.py (ymcui/cmrc2018, squad-style-data/), except
# that nltk.word_tokenize is replaced by the tokenizer passed in (nltk and its Punkt data are not available offline).
SP_CHAR = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=', '，', '。', '：', '？', '！', '“', '”', '；', '’', '《',
           '》', '……', '·', '、', '「', '」', '（', '）', '－', '～', '『', '』']


def official_mixed_segmentation(in_str, word_tokenize, rm_punc=False):
    in_str = str(in_str).lower().strip()
    segs_out = []
    temp_str = ""
    for char in in_str:
        if rm_punc and char in SP_CHAR:
            continue
        if re.search(r'[\u4e00-\u9fa5]', char) or char in SP_CHAR:
            if temp_str != "":
                segs_out.extend(word_tokenize(temp_str))
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":
        segs_out.extend(word_tokenize(temp_str))
    return segs_out


def official_remove_punctuation(in_str):
    in_str = str(in_str).lower().strip()
    return ''.join(char for char in in_str if char not in SP_CHAR)


def official_find_lcs(s1, s2):
    m = [[0 for i in range(len(s2) + 1)] for j in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def official_calc_f1_score(answers, prediction, word_tokenize):
    f1_scores = []
    for ans in answers:
        ans_segs = official_mixed_segmentation(ans, word_tokenize, rm_punc=True)
        prediction_segs = official_mixed_segmentation(prediction, word_tokenize, rm_punc=True)
        lcs, lcs_len = official_find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0)
            continue
        precision = 1.0 * lcs_len / len(prediction_segs)
        recall = 1.0 * lcs_len / len(ans_segs)
        f1_scores.append((2 * precision * recall) / (precision + recall))
    return max(f1_scores)


def official_calc_em_score(answers, prediction):
    em = 0
    for ans in answers:
        if official_remove_punctuation(ans) == official_remove_punctuation(prediction):
            em = 1
            break
    return em


def official_evaluate(ground_truth_file, prediction_file, word_tokenize):
    f1 = em = total_count = skip_count = 0
    for instance in ground_truth_file["data"]:
        for para in instance["paragraphs"]:
            for qas in para['qas']:
                total_count += 1
                query_id = qas['id'].strip()
                answers = [x["text"] for x in qas['answers']]
                if query_id not in prediction_file:
                    skip_count += 1
                    continue
                prediction = str(prediction_file[query_id])
                f1 += official_calc_f1_score(answers, prediction, word_tokenize)
                em += official_calc_em_score(answers, prediction)
    return 100.0 * f1 / total_count, 100.0 * em / total_count, total_count, skip_count


def simple_word_tokenize(text):
    """Stand-in for nltk.word_tokenize: words, and each other non-space character alone."""
    return re.findall(r"\w+|[^\w\s]", text)


@pytest.mark.real_data
def test_cmrc_evaluate_matches_official_transcription_on_real_answers(shared_data):
    """Each dev question's 2nd and 3rd reference answers, as predictions, scored against its 1st: per question and in
    total. With our tokenizer plugged into the transcription everything must agree exactly; with the simple stand-in
    tokenizer, EM must still agree exactly and F1 wherever the texts have no characters the tokenizers treat apart."""
    path = os.path.join(shared_data, "cmrc2018", "cmrc2018_dev.json")
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent")
    with open(path, encoding="utf-8") as f:
        dev = json.load(f)
    questions = [q for article in dev["data"] for paragraph in article["paragraphs"] for q in paragraph["qas"]]
    assert len(questions) == 3219
    questions = questions[::3]  # a third of dev keeps the pure-Python LCS fast
    gold = {"data": [{"paragraphs": [{"qas": [dict(q, answers=q["answers"][:1]) for q in questions]}]}]}
    plain = re.compile(r"[\w\s\u4e00-\u9fa5]*")
    for which in (1, 2):
        predictions = {q["id"]: q["answers"][which]["text"] for q in questions}
        predictions[questions[0]["id"] + "_missing"] = "not a dev question"
        del predictions[questions[1]["id"]]  # one unanswered question
        ours = am.cmrc_evaluate(gold, predictions)
        f1, em, total, skipped = official_evaluate(gold, predictions, am._word_tokenize)
        assert (ours["total"], ours["skipped"], ours["extra"]) == (total, skipped, 1) == (len(questions), 1, 1)
        assert ours["exact_match"] == pytest.approx(em, abs=1e-9)
        assert ours["f1"] == pytest.approx(f1, abs=1e-9)
        for q in questions[2:]:
            answers, prediction = [q["answers"][0]["text"]], predictions[q["id"]]
            assert am.cmrc_em(answers, prediction) == official_calc_em_score(answers, prediction)
            if plain.fullmatch(answers[0] + prediction):
                assert am.cmrc_f1(answers, prediction) == pytest.approx(
                    official_calc_f1_score(answers, prediction, simple_word_tokenize), abs=1e-12)
        assert 0 < ours["exact_match"] < 100 and 0 < ours["f1"] < 100


# ---------------------------------------------------------------- printing

def test_format_metrics():
    metrics = {"acc_num": 3, "total_num": 4, "accuracy": 0.75, "precision": 0.5, "recall": 1.0, "f1": 2 / 3,
               "mcc": 0.25, "spearman": -0.1, "mrr": 0.875}
    assert am.format_metrics(metrics).splitlines() == [
        "acc_num 3, total_num 4, accuracy 0.750000", "Precision 0.500000", "Recall 1.000000", "F1 0.666667",
        "MRR 0.875000", "MCC 0.250000", "Spearman -0.100000"]
    mrc = {"exact_match": 62.5, "f1": 83.25, "total": 8, "skipped": 0, "extra": 0}
    assert am.format_metrics(mrc).splitlines() == ["EM 62.500000", "F1 83.250000", "total 8", "skipped 0", "extra 0"]
    ner = am.entity_prf([["B-PER", "I-PER"]], [["B-PER", "I-PER"]])
    assert am.format_metrics(ner).splitlines() == [
        "Precision 1.000000", "Recall 1.000000", "F1 1.000000", "gold 1", "pred 1", "correct 1",
        "PER: Precision 1.000000, Recall 1.000000, F1 1.000000 (gold 1, pred 1, correct 1)"]
