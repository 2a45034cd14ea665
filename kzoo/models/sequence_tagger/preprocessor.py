"""Raw sentences <-> the integer inputs of a `SequenceTagger`, in plain Python.

Nothing here imports TensorFlow (or any backend): a tagger loaded from a
`.keras` file tokenizes and encodes raw text on every Keras backend.
"""

import re
from collections import Counter

import numpy as np

from kzoo.utils.bucketing import bucket_length, pad_rows
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_int

PAD, UNK = 0, 1  # reserved ids of the word and character vocabularies

# Casing classes of a token; id 0 is padding.
CASINGS = ("pad", "lower", "title", "upper", "mixed", "numeric", "mostly_numeric",
           "has_digit", "other")  # fmt: skip
_DIGIT = re.compile(r"\d")
# Endings that CoNLL-2003 (Penn Treebank tokenization) writes as tokens of
# their own: "Germany's" is "Germany 's", "don't" is "do n't".
_CLITICS = ("'s", "’s", "n't", "n’t", "'re", "'ve", "'ll", "'d", "'m")


def casing_of(token):
    """The casing class id of a token (index into `CASINGS`).

    Example:

    >>> [CASINGS[casing_of(t)] for t in ["EU", "rejects", "German", "1996-08-22", "."]]
    ['upper', 'lower', 'title', 'mostly_numeric', 'other']
    """
    digits = sum(c.isdigit() for c in token)
    if token.isdigit():
        return CASINGS.index("numeric")
    if digits / len(token) > 0.5:
        return CASINGS.index("mostly_numeric")
    if digits:
        return CASINGS.index("has_digit")
    if token.islower():
        return CASINGS.index("lower")
    if token.isupper():
        return CASINGS.index("upper")
    if token[0].isupper() and (len(token) == 1 or token[1:].islower()):
        return CASINGS.index("title")
    if any(c.isalpha() for c in token):
        return CASINGS.index("mixed")
    return CASINGS.index("other")


def normalize_word(token, lowercase=True, normalize_digits=True):
    """The form of a token that is looked up in the word vocabulary."""
    if lowercase:
        token = token.lower()
    if normalize_digits:
        token = _DIGIT.sub("0", token)
    return token


def _check_vocabulary(vocabulary, name):
    if isinstance(vocabulary, str) or not all(isinstance(v, str) for v in vocabulary):
        raise ValueError(f"`{name}` must be a list of strings. Received: {name}={vocabulary!r:.80}")
    vocabulary = list(vocabulary)
    if len(set(vocabulary)) != len(vocabulary):
        duplicates = sorted(k for k, n in Counter(vocabulary).items() if n > 1)
        raise ValueError(f"`{name}` has duplicate entries: {duplicates[:5]}")
    return vocabulary


@register_serializable
class SequenceTaggerPreprocessor:
    """Tokenizes raw sentences and maps tokens and tags to integer ids.

    Per token it makes three ids, the inputs of `SequenceTaggerBackbone`:
    the word id (the token normalized, by default lower-cased and with
    digits mapped to 0, then looked up: `word_vocabulary[i]` has id `i + 2`,
    0 is padding and 1 the unknown word), the ids of its first `max_word_length` characters (case
    kept, same numbering) and its casing class (`CASINGS`). Tags map to
    their index in `tags`.

    Raw sentences are split on whitespace, and punctuation at either end of
    a piece is split off (`"call."` -> `"call" "."`, `"(Reuters)"` ->
    `"(" "Reuters" ")"`), as are the endings CoNLL-2003 writes as tokens of
    their own (`"Germany's"` -> `"Germany" "'s"`) when the vocabulary
    knows them; a piece the vocabulary knows whole (`"U.S."`) is kept.
    A sentence that is already a list of tokens is used as it is.

    Sentences are padded to a bucket length (the first of `buckets` that
    fits, or a multiple of the largest), so only a few tensor shapes occur.

    Args:
        word_vocabulary: list of normalized words (see `build_vocabularies`).
        tags: list of tag strings; a tag's id is its index.
        char_vocabulary: list of characters; `None` or empty for a tagger
            without character features.
        max_word_length: int >= 1, characters kept per token.
        lowercase: lower-case words before the vocabulary lookup.
        normalize_digits: map every digit to "0" before the word lookup.
        buckets: padded sentence lengths, ints >= 1.

    Example:

    >>> pre = SequenceTaggerPreprocessor(["eu", "rejects"], ["O", "B-ORG"], list("EUrejcts"))
    >>> pre.tokenize("EU rejects it.")
    ['EU', 'rejects', 'it', '.']
    >>> pre.encode(["EU rejects it."])["words"]
    array([[2, 3, 1, 1, 0, 0, 0, 0]], dtype=int32)
    """

    def __init__(
        self,
        word_vocabulary,
        tags,
        char_vocabulary=None,
        max_word_length=20,
        lowercase=True,
        normalize_digits=True,
        buckets=(8, 16, 32, 64, 128),
    ):
        self.word_vocabulary = _check_vocabulary(word_vocabulary, "word_vocabulary")
        self.tags = _check_vocabulary(tags, "tags")
        if not self.tags:
            raise ValueError("`tags` must hold at least one tag. Received: tags=[]")
        self.char_vocabulary = _check_vocabulary(char_vocabulary or [], "char_vocabulary")
        self.max_word_length = check_int(max_word_length, "max_word_length", minimum=1)
        self.lowercase = check_bool(lowercase, "lowercase")
        self.normalize_digits = check_bool(normalize_digits, "normalize_digits")
        if isinstance(buckets, (str, int)) or not buckets:
            raise ValueError(
                f"`buckets` must be a non-empty list of ints >= 1. Received: buckets={buckets!r}"
            )
        self.buckets = sorted({check_int(b, "buckets", minimum=1) for b in buckets})
        self._word_index = {w: i + 2 for i, w in enumerate(self.word_vocabulary)}
        self._char_index = {c: i + 2 for i, c in enumerate(self.char_vocabulary)}
        self._tag_index = {t: i for i, t in enumerate(self.tags)}

    # ---------------------------------------------------------------- sizes
    @property
    def word_vocabulary_size(self):
        """Rows of the word embedding: the words plus padding and unknown."""
        return len(self.word_vocabulary) + 2

    @property
    def char_vocabulary_size(self):
        """Rows of the character embedding: the characters plus padding and unknown."""
        return len(self.char_vocabulary) + 2

    @property
    def num_tags(self):
        return len(self.tags)

    # ----------------------------------------------------------- vocabulary
    @staticmethod
    def build_vocabularies(
        sentences, min_count=1, lowercase=True, normalize_digits=True, min_char_count=1
    ):
        """Word and character vocabularies of training sentences.

        Args:
            sentences: list of token lists.
            min_count: int >= 1; words seen fewer times are left out (they
                become the unknown word).
            lowercase, normalize_digits: as in the constructor; must match it.
            min_char_count: int >= 1, the same for characters.

        Returns:
            `(word_vocabulary, char_vocabulary)`, most frequent first.
        """
        min_count = check_int(min_count, "min_count", minimum=1)
        min_char_count = check_int(min_char_count, "min_char_count", minimum=1)
        words, chars = Counter(), Counter()
        for tokens in sentences:
            for token in tokens:
                words[normalize_word(token, lowercase, normalize_digits)] += 1
                chars.update(token)

        def frequent(counts, minimum):
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return [item for item, n in ranked if n >= minimum]

        return frequent(words, min_count), frequent(chars, min_char_count)

    def _knows(self, token):
        return normalize_word(token, self.lowercase, self.normalize_digits) in self._word_index

    # ----------------------------------------------------------- tokenizing
    def tokenize(self, sentence):
        """Splits one raw sentence (a str) into tokens, as described above."""
        tokens = []
        for piece in sentence.split():
            tokens.extend(self._split_piece(piece))
        return tokens

    def _split_piece(self, piece):
        if piece.isalnum() or self._knows(piece):
            return [piece]
        head, tail = [], []
        while len(piece) > 1 and not piece[0].isalnum() and not self._knows(piece):
            head.append(piece[0])
            piece = piece[1:]
        while len(piece) > 1 and not piece[-1].isalnum() and not self._knows(piece):
            tail.append(piece[-1])
            piece = piece[:-1]
        if not self._knows(piece):
            for clitic in _CLITICS:
                stem = piece[: -len(clitic)]
                if stem and piece.lower().endswith(clitic) and self._knows(clitic):
                    tail.append(piece[len(stem) :])
                    piece = stem
                    break
        return head + [piece] + tail[::-1]

    def token_lists(self, sentences, name="sentences"):
        """The tokens of each sentence: raw strings tokenized, token lists kept.

        Args:
            sentences: a str (one sentence), or a list/tuple of sentences,
                each a str or a list/tuple of token strings.
            name: the argument's name in error messages.

        Returns:
            A list with one list of str per sentence.
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        if not isinstance(sentences, (list, tuple)):
            raise ValueError(
                f"`{name}` must be a list of sentences (strings or token lists). "
                f"Received an object of type {type(sentences).__name__}."
            )
        token_lists = []
        for i, sentence in enumerate(sentences):
            if isinstance(sentence, str):
                tokens = self.tokenize(sentence)
            elif isinstance(sentence, (list, tuple)) and all(isinstance(t, str) for t in sentence):
                tokens = list(sentence)
            else:
                raise ValueError(
                    f"`{name}[{i}]` must be a string or a list of token strings. "
                    f"Received {type(sentence).__name__}: {sentence!r:.80}"
                )
            if not tokens or any(not t or t != t.strip() for t in tokens):
                raise ValueError(
                    f"`{name}[{i}]` has no tokens, or an empty or space-padded token: "
                    f"{sentence!r:.80}"
                )
            token_lists.append(tokens)
        return token_lists

    # ------------------------------------------------------------- encoding
    def bucket_length(self, length):
        """The padded length of a sentence of `length` tokens: the first of
        `buckets` that fits, or a multiple of the largest."""
        return bucket_length(length, bucket_boundaries=self.buckets)

    def encode_tokens(self, tokens):
        """The unpadded ids of one token list: a dict of int32 arrays `words
        (n,)`, `chars (n, max_word_length)` and `casing (n,)`."""
        n, width = len(tokens), self.max_word_length
        words = np.zeros((n,), "int32")
        chars = np.zeros((n, width), "int32")
        casing = np.zeros((n,), "int32")
        for t, token in enumerate(tokens):
            word = normalize_word(token, self.lowercase, self.normalize_digits)
            words[t] = self._word_index.get(word, UNK)
            casing[t] = casing_of(token)
            chars[t, : min(len(token), width)] = [
                self._char_index.get(c, UNK) for c in token[:width]
            ]
        return {"words": words, "chars": chars, "casing": casing}

    def encode(self, sentences, length=None, rows=None):
        """Model inputs for sentences (raw strings or token lists).

        Args:
            sentences: as in `token_lists`.
            length: padded length (default: the bucket of the longest).
            rows: pad the batch with empty rows up to this many (default: one
                row per sentence).

        Returns:
            dict of int32 arrays `words (n, length)`, `chars (n, length,
            max_word_length)`, `casing (n, length)`.
        """
        token_lists = self.token_lists(sentences)
        longest = max((len(t) for t in token_lists), default=1)
        length = self.bucket_length(longest) if length is None else length
        if longest > length:
            raise ValueError(f"A sentence has {longest} tokens, more than length={length}.")
        encoded = [self.encode_tokens(tokens) for tokens in token_lists]
        num_rows = max(len(token_lists), rows or 0)
        if not encoded:  # no sentence: empty rows of the right shapes
            encoded = [self.encode_tokens([])]
        return {
            key: pad_rows([e[key] for e in encoded], length, num_rows=num_rows)
            for key in ("words", "chars", "casing")
        }

    def tag_ids(self, tags, position=0):
        """The int32 ids `(n,)` of one sentence's tag strings."""
        try:
            return np.array([self._tag_index[t] for t in tags], "int32")
        except (KeyError, TypeError):
            bad = next(t for t in tags if not isinstance(t, str) or t not in self._tag_index)
            raise ValueError(
                f"Sentence {position} has tag {bad!r}, not one of this tagger's tags {self.tags}."
            ) from None

    def encode_tags(self, tag_lists, length, rows=None):
        """Tag ids `(rows or n, length)`, 0 at padding (masked in the loss)."""
        rows = max(len(tag_lists), rows or 0)
        for i, tags in enumerate(tag_lists):
            if len(tags) > length:
                raise ValueError(f"Sentence {i} has {len(tags)} tags, more than length={length}.")
        ids = [self.tag_ids(tags, i) for i, tags in enumerate(tag_lists)]
        return pad_rows(ids, length, num_rows=rows)

    def decode_tags(self, tag_ids, lengths):
        """Tag strings of the first `lengths[i]` ids of each row of `tag_ids`."""
        return [[self.tags[k] for k in row[:n]] for row, n in zip(tag_ids, lengths)]

    # --------------------------------------------------------------- config
    def get_config(self):
        return {
            "word_vocabulary": list(self.word_vocabulary),
            "tags": list(self.tags),
            "char_vocabulary": list(self.char_vocabulary),
            "max_word_length": self.max_word_length,
            "lowercase": self.lowercase,
            "normalize_digits": self.normalize_digits,
            "buckets": list(self.buckets),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
