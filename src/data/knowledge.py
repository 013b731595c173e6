"""Knowledge units for ERNIE's masking: words, base noun phrases and entities, from segmented and tagged text.

Raw text is tokenized word by word; a CJK character keeps its plain id even inside a word (ERNIE's data never uses
``##`` ids for Chinese), so units live in seg_labels, one set per level:
  word    a segmenter word;
  entity  a run of consecutive words tagged with the same entity type (``nr*`` person, ``ns`` place, ``nt``
          organisation), so 江/nr 泽民/nr is one person; other words stay word units;
  phrase  a base noun phrase: 2 to 4 consecutive words tagged noun-like (``n*``, ``vn``, ``an``, ``j``) or as
          modifiers (``a``, ``b``), ending in a noun-like word (国际/n 广播/vn 电台/n, 特别/a 行政区/n); other words
          stay word units.
"""
import logging
from dataclasses import dataclass

from .common import InputError


SEG_START, SEG_INSIDE, SEG_SPECIAL = 0, 1, -1
KNOWLEDGE_LEVELS = ("word", "phrase", "entity")
ENTITY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}  # by the tag's first two letters (jieba: nrt, nrfg)
PHRASE_MODIFIER_TAGS = ("a", "b")
MAX_PHRASE_WORDS = 4


@dataclass
class Segment:
    """Tokens of one sentence (or a run of them) with their unit boundaries at each knowledge level."""
    token_ids: list
    seg_labels: dict  # level -> [SEG_START | SEG_INSIDE] per token


def tagged_words(line, where):
    """``[(word, tag)]`` of a People's Daily style line (``word/tag`` items separated by whitespace)."""
    words = []
    for item in line.split():
        word, slash, tag = item.rpartition("/")
        if not slash or not word or not tag:
            raise InputError(f"{where}: {item!r} is not word/tag")
        words.append((word, tag))
    return words


def jieba_words(line):
    """``[(word, tag)]`` of a raw text line, segmented and tagged by jieba (ICTCLAS-style tags)."""
    import jieba
    import jieba.posseg
    jieba.setLogLevel(logging.WARNING)
    return [(pair.word, pair.flag) for pair in jieba.posseg.lcut(line) if pair.word.strip()]


def entity_type(tag):
    return ENTITY_TYPES.get(tag[:2])


def is_noun_like(tag):
    tag = tag.lower()
    return tag.startswith("n") or tag in ("vn", "an", "j")


def entity_starts(tags):
    """Per word: True when it starts a unit at the entity level (consecutive words of one entity type merge)."""
    types = [entity_type(tag) for tag in tags]
    return [i == 0 or types[i] is None or types[i] != types[i - 1] for i in range(len(tags))]


def phrase_starts(tags):
    """Per word: True when it starts a unit at the phrase level (base noun phrases of 2 to 4 words merge)."""
    starts = [True] * len(tags)
    i = 0
    while i < len(tags):
        end = i
        while end < len(tags) and (is_noun_like(tags[end]) or tags[end].lower() in PHRASE_MODIFIER_TAGS):
            end += 1
        next_start = max(end, i + 1)
        while end > i and not is_noun_like(tags[end - 1]):  # a phrase ends in its head noun
            end -= 1
        if 2 <= end - i <= MAX_PHRASE_WORDS:
            starts[i + 1:end] = [False] * (end - i - 1)
        i = next_start
    return starts


def sentence_segment(words, tokenizer):
    """A ``Segment`` from ``[(word, tag)]``, or None when no word gives a token."""
    pieces = [(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word)), tag) for word, tag in words]
    pieces = [(ids, tag) for ids, tag in pieces if ids]
    if not pieces:
        return None
    tags = [tag for _, tag in pieces]
    word_starts = {"word": [True] * len(pieces), "phrase": phrase_starts(tags), "entity": entity_starts(tags)}
    seg_labels = {level: [SEG_START if k == 0 and start else SEG_INSIDE
                          for (ids, _), start in zip(pieces, starts) for k in range(len(ids))]
                  for level, starts in word_starts.items()}
    return Segment([i for ids, _ in pieces for i in ids], seg_labels)
