"""ERNIE 1.0 / BERT tokenizer that keeps character offsets into the original text, and a vocabulary builder.

Tokenization follows ERNIE's `tokenization.py` (a copy of google-research/bert's FullTokenizer):

1. clean: drop NUL, U+FFFD and every character of Unicode category C* except \\t \\n \\r;
2. every CJK ideograph (BERT's code-point blocks) is a word of its own;
3. split on whitespace: \\t \\n \\r, category Zs, and U+2028/U+2029 (ERNIE splits with Python's `str.split()`,
   whose other separators are control characters that step 1 already removed);
4. with `do_lower_case`: lower-case the word, NFD-decompose it and drop nonspacing marks (Mn);
5. split off every punctuation character (ASCII non-alphanumeric symbols and Unicode category P*);
6. greedy longest-match-first WordPiece with `##` continuations; a word that cannot be covered, or is longer
   than `max_input_chars_per_word`, becomes one [UNK].

Offsets are (start, end) indices into the text as given, so `text[start:end]` is exactly what a token came from.
Step 4 can change lengths ("é" -> "e", "İ" -> "i", U+0301 -> nothing), so each word is cut into units of one
character plus the combining marks (and removed characters) that follow it; a token's offsets run from the
start of its first unit to the end of its last. NFD only reorders marks inside such a unit, so normalising
unit by unit gives exactly the word-level result.

CLI: `python -m src.tokenizer build-vocab --input F [F ...] --output vocab.txt --vocab_size N [--min_frequency K]`
and `python -m src.tokenizer tokenize --vocab_file V --text "..."`.
"""
import argparse
import collections
import os
import re
import sys
import unicodedata

from .fileio import write_text

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")

# BERT's "Chinese character" blocks (google-research/bert, tokenization.py `_is_chinese_char`).
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)

# Word separators as ERNIE sees them: Python whitespace that survives cleaning (see step 3 above).
WHITESPACE = "".join(
    c for c in map(chr, range(sys.maxunicode + 1))
    if c.isspace() and (c in "\t\n\r" or not unicodedata.category(c).startswith("C")))

_CJK_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in CJK_RANGES)
_WS_CLASS = re.escape(WHITESPACE)
# A match is one CJK ideograph or one run of other non-whitespace characters: ERNIE's words before step 4.
_WORD_RE = re.compile(f"[{_CJK_CLASS}]|[^{_WS_CLASS}{_CJK_CLASS}]+")

_CACHE_LIMIT = 100_000  # words remembered per tokenizer; the cache is emptied when it grows past this


def is_removed(char):
    """True for characters that cleaning deletes: NUL, U+FFFD and category C* other than \\t \\n \\r."""
    if char in "\t\n\r":
        return False
    return char == "\ufffd" or unicodedata.category(char).startswith("C")


def is_punctuation(char):
    """BERT punctuation: every non-alphanumeric printable ASCII character, and Unicode category P*."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _normalized_units(word, do_lower_case):
    """Steps 1 and 4 on one word: a list of (normalized text, start, end), one per unit of `word`."""
    kept = [(i, c) for i, c in enumerate(word) if not is_removed(c)]
    if not do_lower_case:
        return [(c, i, i + 1) for i, c in kept]
    # Lower-case the whole word: str.lower() picks final sigma from context. Per-character lower() has the
    # same lengths, which lets us cut the result back into characters.
    lowered = "".join(c for _, c in kept).lower()
    units = []  # [lowered text, start, end]
    pos = 0
    for i, c in kept:
        low = lowered[pos:pos + len(c.lower())]
        pos += len(low)
        decomposed = unicodedata.normalize("NFD", low)
        # A combining mark, or a character that normalises to nothing, belongs to the character before it.
        if units and (unicodedata.combining(decomposed[0]) or not _strip_accents(decomposed)):
            units[-1][0] += low
            units[-1][2] = i + 1
        else:
            units.append([low, i, i + 1])
    return [(_strip_accents(low), start, end) for low, start, end in units]


def _split_word(word, do_lower_case):
    """Steps 1, 4 and 5 on one word: a list of (piece, spans), spans[k] = (start, end) in `word` of piece[k]."""
    pieces = []
    chars, spans = [], []
    for text, start, end in _normalized_units(word, do_lower_case):
        for c in text:
            if is_punctuation(c):
                if chars:
                    pieces.append(("".join(chars), spans))
                    chars, spans = [], []
                pieces.append((c, [(start, end)]))
            else:
                chars.append(c)
                spans.append((start, end))
    if chars:
        pieces.append(("".join(chars), spans))
    return pieces


def basic_tokenize(text, do_lower_case=True):
    """ERNIE's BasicTokenizer (steps 1-5): the normalized words of `text`, without WordPiece."""
    return [piece for word in _WORD_RE.findall(text) for piece, _ in _split_word(word, do_lower_case)]


def load_vocab(vocab_file):
    """Read a vocabulary: `token<TAB>id` lines (ERNIE), or one token per line (id = line number, from 0).

    Blank lines at the end of the file are ignored (editors add them); one before another token is an error.
    Raises FileNotFoundError for a missing file and ValueError naming file and line for a malformed line,
    a token or id that occurs twice, or a file mixing the two forms.
    """
    vocab_file = os.fspath(vocab_file)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"{vocab_file}: vocabulary file not found")
    vocab = {}
    line_of_token, line_of_id = {}, {}
    with_ids = None
    first_blank = None  # line number of the first of the blank lines read since the last token
    with open(vocab_file, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{vocab_file}:{lineno}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")
                with_ids = "\t" in line
            if not line.strip():
                first_blank = first_blank or lineno
                continue
            if first_blank:
                raise ValueError(f"{vocab_file}:{first_blank}: token '' is empty: blank lines are allowed only at "
                                 "the end of the file")
            if with_ids:
                fields = line.split("\t")
                if len(fields) != 2:
                    raise ValueError(f"{where}: expected 'token<TAB>id' (as on line 1), got {line!r}")
                token, id_text = fields
                if not re.fullmatch(r"[0-9]+", id_text):
                    raise ValueError(f"{where}: bad id {id_text!r} for token {token!r}: expected an integer >= 0")
                token_id = int(id_text)
            else:
                if "\t" in line:
                    raise ValueError(f"{where}: has a TAB but line 1 has none (one token per line): {line!r}")
                token, token_id = line, lineno - 1
            if not token or token != token.strip():
                raise ValueError(f"{where}: token {token!r} is empty or has surrounding whitespace")
            if token in line_of_token:
                raise ValueError(f"{where}: duplicate token {token!r} (first on line {line_of_token[token]})")
            if token_id in line_of_id:
                raise ValueError(f"{where}: duplicate id {token_id} (first on line {line_of_id[token_id]})")
            line_of_token[token] = line_of_id[token_id] = lineno
            vocab[token] = token_id
    if not vocab:
        raise ValueError(f"{vocab_file}: empty vocabulary file")
    return vocab


def write_vocab(tokens, path):
    """Write `token<TAB>id` lines (id = position in `tokens`) atomically: a temporary file renamed when complete."""
    path = os.fspath(path)
    tokens = list(tokens)
    for token_id, token in enumerate(tokens):
        if not token or any(c.isspace() for c in token):
            raise ValueError(f"{path}: token {token_id} {token!r} is empty or has whitespace: it would not read back")
    write_text(path, "".join(f"{token}\t{token_id}\n" for token_id, token in enumerate(tokens)))


class ErnieTokenizer:
    """ERNIE/BERT FullTokenizer (basic tokenization + WordPiece) that also returns offsets into the input."""

    def __init__(self, vocab_file, do_lower_case=True, max_input_chars_per_word=100):
        if max_input_chars_per_word < 1:
            raise ValueError(f"max_input_chars_per_word must be >= 1, got {max_input_chars_per_word}")
        self.vocab_file = os.fspath(vocab_file)
        self.vocab = load_vocab(self.vocab_file)
        missing = [t for t in SPECIAL_TOKENS if t not in self.vocab]
        if missing:
            raise ValueError(f"{self.vocab_file}: missing special tokens {' '.join(missing)}")
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self.max_input_chars_per_word = max_input_chars_per_word
        self.pad_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id, self.unk_token_id = (
            self.vocab[t] for t in SPECIAL_TOKENS)
        self._cache = {}  # word -> (tokens, spans relative to the word)

    def __len__(self):
        return len(self.vocab)

    def _wordpiece(self, piece):
        """Greedy longest-match-first: [(token, start, end)] over `piece`, or None if a part is not covered."""
        if len(piece) > self.max_input_chars_per_word:
            return None
        out = []
        start = 0
        while start < len(piece):
            for end in range(len(piece), start, -1):
                token = piece[start:end] if start == 0 else "##" + piece[start:end]
                if token in self.vocab:
                    break
            else:
                return None
            out.append((token, start, end))
            start = end
        return out

    def _tokenize_word(self, word):
        tokens, spans = [], []
        for piece, char_spans in _split_word(word, self.do_lower_case):
            matched = self._wordpiece(piece)
            if matched is None:
                tokens.append("[UNK]")
                spans.append((char_spans[0][0], char_spans[-1][1]))
                continue
            for token, start, end in matched:
                tokens.append(token)
                spans.append((char_spans[start][0], char_spans[end - 1][1]))
        entry = (tuple(tokens), tuple(spans))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = entry
        return entry

    def tokenize(self, text):
        """Word-piece tokens of `text` (a str)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        cache = self._cache
        tokens = []
        for word in _WORD_RE.findall(text):
            entry = cache.get(word) or self._tokenize_word(word)
            tokens += entry[0]
        return tokens

    def tokenize_with_offsets(self, text):
        """(tokens, offsets): offsets[i] = (start, end) such that text[start:end] is what tokens[i] came from.

        For a `##` piece that is its own part of the word; for [UNK] the whole (punctuation-split) word.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        cache = self._cache
        tokens, offsets = [], []
        for match in _WORD_RE.finditer(text):
            word = match.group()
            word_tokens, spans = cache.get(word) or self._tokenize_word(word)
            tokens += word_tokens
            start = match.start()
            if len(spans) == 1:
                offsets.append((start + spans[0][0], start + spans[0][1]))
            else:
                offsets += [(start + a, start + b) for a, b in spans]
        return tokens, offsets

    def convert_tokens_to_ids(self, tokens):
        try:
            return [self.vocab[t] for t in tokens]
        except KeyError as e:
            raise ValueError(f"token {e.args[0]!r} is not in the vocabulary {self.vocab_file}") from None

    def convert_ids_to_tokens(self, ids):
        try:
            return [self.ids_to_tokens[int(i)] for i in ids]
        except KeyError as e:
            raise ValueError(f"id {e.args[0]} is not in the vocabulary {self.vocab_file}") from None

    def encode(self, text_a, text_b=None, max_seq_len=None):
        """`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, truncated to `max_seq_len` tokens, not padded.

        Returns a dict: tokens, input_ids, segment_ids (0 up to and including the first [SEP], then 1),
        offsets (into text_a or text_b, (0, 0) for specials), sequence_ids (0 / 1, None for specials),
        truncated (bool). Pairs drop tokens from the end of the longer side (of b on a tie) until
        len(a) + len(b) <= max_seq_len - 3; a single text is cut to max_seq_len - 2 tokens.
        """
        tokens_a, offsets_a = self.tokenize_with_offsets(text_a)
        tokens_b, offsets_b = self.tokenize_with_offsets(text_b) if text_b is not None else ([], [])
        truncated = False
        if max_seq_len is not None:
            room = max_seq_len - (3 if text_b is not None else 2)
            if room < 0:
                raise ValueError(f"max_seq_len={max_seq_len} leaves no room for the special tokens")
            n_a, n_b = len(tokens_a), len(tokens_b)
            truncated = n_a + n_b > room
            while n_a + n_b > room:
                if n_a > n_b:
                    n_a -= 1
                else:
                    n_b -= 1
            tokens_a, offsets_a, tokens_b, offsets_b = tokens_a[:n_a], offsets_a[:n_a], tokens_b[:n_b], offsets_b[:n_b]
        tokens = ["[CLS]", *tokens_a, "[SEP]"]
        segment_ids = [0] * len(tokens)
        offsets = [(0, 0), *offsets_a, (0, 0)]
        sequence_ids = [None, *[0] * len(tokens_a), None]
        if text_b is not None:
            tokens += [*tokens_b, "[SEP]"]
            segment_ids += [1] * (len(tokens_b) + 1)
            offsets += [*offsets_b, (0, 0)]
            sequence_ids += [*[1] * len(tokens_b), None]
        return {
            "tokens": tokens,
            "input_ids": self.convert_tokens_to_ids(tokens),
            "segment_ids": segment_ids,
            "offsets": offsets,
            "sequence_ids": sequence_ids,
            "truncated": truncated,
        }


FullTokenizer = ErnieTokenizer  # google-research/bert's name


def check_vocab_fits(tokenizer, vocab_size, source):
    """Raise ValueError if a token id of `tokenizer` is >= `vocab_size` (the model config's, read from `source`).

    The config may be larger than the vocabulary (ERNIE 1.0: 18000 rows for 17,964 tokens); unused rows are fine.
    """
    max_id = max(tokenizer.ids_to_tokens)
    if max_id >= vocab_size:
        raise ValueError(
            f"{tokenizer.vocab_file}: token {tokenizer.ids_to_tokens[max_id]!r} has id {max_id}, which does not fit "
            f"vocab_size={vocab_size} of {source}")


def _read_lines(path):
    """Yield the lines of a UTF-8 text file; a line that is not valid UTF-8 raises ValueError naming it."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


def build_vocab(corpus_files, vocab_size, min_frequency=2, do_lower_case=True, max_word_chars=100):
    """Build a WordPiece vocabulary from raw UTF-8 text files; returns the tokens, index = id.

    The scheme, for pre-training from scratch when no ERNIE vocabulary is at hand:
    1. basic-tokenize every line as ErnieTokenizer does (every CJK character is a word of its own);
    2. the five special tokens get ids 0-4: [PAD] [CLS] [SEP] [MASK] [UNK];
    3. then every character seen at least `min_frequency` times as the first character of a word (`c`) or
       inside one (`##c`), most frequent first; with these, any word made of such characters tokenizes
       without [UNK]. If they do not all fit, the most frequent are kept;
    4. the remaining room goes to the most frequent words of two or more characters (up to `max_word_chars`)
       seen at least `min_frequency` times.
    Ties are broken by the token's text, so the result is deterministic.
    """
    if vocab_size < len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(SPECIAL_TOKENS)} special tokens")
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
    raw_counts = collections.Counter()  # words before normalisation: each distinct one is normalised once
    for path in corpus_files:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: corpus file not found")
        for line in _read_lines(path):
            raw_counts.update(_WORD_RE.findall(line))
    word_counts = collections.Counter()
    for raw, count in raw_counts.items():
        for word, _ in _split_word(raw, do_lower_case):
            word_counts[word] += count
    char_counts = collections.Counter()
    for word, count in word_counts.items():
        char_counts[word[0]] += count
        for c in word[1:]:
            char_counts["##" + c] += count

    def most_frequent(counts):
        kept = [(token, n) for token, n in counts.items() if n >= min_frequency]
        return [token for token, _ in sorted(kept, key=lambda item: (-item[1], item[0]))]

    tokens = list(SPECIAL_TOKENS)
    tokens += most_frequent(char_counts)[:vocab_size - len(tokens)]
    words = most_frequent({w: n for w, n in word_counts.items() if 1 < len(w) <= max_word_chars})
    tokens += words[:vocab_size - len(tokens)]
    return tokens


def _main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m src.tokenizer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-vocab", help="build a token<TAB>id vocabulary from raw UTF-8 text")
    build.add_argument("--input", nargs="+", required=True, help="text files, one or more")
    build.add_argument("--output", required=True, help="vocabulary file to write")
    build.add_argument("--vocab_size", type=int, required=True, help="number of tokens, specials included")
    build.add_argument("--min_frequency", type=int, default=2, help="keep tokens seen at least this often")
    build.add_argument("--no_lower_case", action="store_true", help="keep case and accents")
    show = commands.add_parser("tokenize", help="print the tokens, ids and offsets of a text")
    show.add_argument("--vocab_file", required=True)
    show.add_argument("--text", required=True)
    show.add_argument("--no_lower_case", action="store_true", help="keep case and accents")
    for command in (build, show):
        command.add_argument("--debug", type=lambda v: v.lower() in ("true", "1", "yes", "y"), nargs="?",
                             const=True, default=False, metavar="true|false",
                             help="show the traceback of an input error")
    args = parser.parse_args(argv)
    try:
        if args.command == "build-vocab":
            tokens = build_vocab(args.input, args.vocab_size, args.min_frequency, not args.no_lower_case)
            write_vocab(tokens, args.output)
            print(f"wrote {len(tokens)} tokens to {args.output}")
        else:
            tokenizer = ErnieTokenizer(args.vocab_file, do_lower_case=not args.no_lower_case)
            tokens, offsets = tokenizer.tokenize_with_offsets(args.text)
            print("token\tid\tstart\tend\ttext")
            for token, token_id, (start, end) in zip(tokens, tokenizer.convert_tokens_to_ids(tokens), offsets):
                print(f"{token}\t{token_id}\t{start}\t{end}\t{args.text[start:end]!r}")
    except (OSError, ValueError) as e:  # bad input: one line naming the file, not a traceback
        if args.debug:
            raise
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    _main()
