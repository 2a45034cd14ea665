"""Word tokenizer that maps raw text to vocabulary ids with plain Python.

It reproduces `keras.layers.TextVectorization(standardize=...,
split="whitespace", output_mode="int")` exactly, without TensorFlow, so a
saved model turns raw strings into ids on every Keras backend:

- `tf.strings.lower` lower-cases ASCII letters only (bytes A-Z);
- punctuation is the ASCII set of `TextVectorization`'s strip regex;
- `tf.strings.split` splits on ASCII whitespace (space, \\t, \\n, \\v, \\f,
  \\r) only, so e.g. a no-break space stays inside a token.
"""

import collections
import re

import numpy as np

from kzoo.utils.bucketing import pad_rows
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int

STANDARDIZE_MODES = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)

# The character class of TextVectorization's default strip regex.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_ASCII_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# HTML line breaks as they appear in IMDB reviews: <br />, <br/>, <BR>.
_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"


def check_texts(texts, name="texts"):
    """Returns `texts` as a list of str, or raises a clear error.

    Accepts a str (one text), or a list, tuple or 1-D NumPy array of str or
    UTF-8 bytes.
    """
    if texts is None:
        raise TypeError(f"`{name}` must be a list of strings. Received None.")
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    elif isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(
                f"`{name}` must be a 1-D array of strings. Received shape {texts.shape}."
            )
        texts = texts.tolist()
    elif not isinstance(texts, (list, tuple)):
        raise TypeError(
            f"`{name}` must be a list of strings. Received an object of type "
            f"{type(texts).__name__}."
        )
    checked = []
    for i, text in enumerate(texts):
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"`{name}[{i}]` is bytes that are not valid UTF-8: {e}") from e
        elif not isinstance(text, str):
            raise TypeError(
                f"`{name}[{i}]` must be a str. Received {text!r} of type {type(text).__name__}."
            )
        checked.append(text)
    return checked


@register_serializable
class WordTokenizer:
    """Maps texts to integer ids: standardize, split on whitespace, look up.

    Index 0 is padding and index 1 the out-of-vocabulary token, as in
    `TextVectorization.get_vocabulary()`, so `vocabulary` can be taken from
    an adapted `TextVectorization` (see `from_text_vectorization`). The ids
    are those `TextVectorization` gives, after the optional replacement of
    `<br />` tags by a space (IMDB reviews hold that markup).

    Args:
        vocabulary: list of str; `vocabulary[0] == ""`,
            `vocabulary[1] == "[UNK]"`, no duplicates.
        sequence_length: optional positive int; longer texts are cut to it.
        standardize: `"lower_and_strip_punctuation"` (default), `"lower"`,
            `"strip_punctuation"` or `None`, as in `TextVectorization`.
        replace_br_tags: replace `<br />` (and `<br>`, `<br/>`) by a space
            before standardizing.
        truncating: `"post"` keeps the first `sequence_length` tokens,
            `"pre"` the last ones.

    Call arguments:
        texts: a str or a list/tuple/1-D array of str.
        length: optional length of the returned rows (default: the longest
            text, at least 1).

    Returns:
        `(len(texts), length)` int32 array, right-padded with 0.

    Example:

    >>> tok = WordTokenizer(["", "[UNK]", "movie", "good"])
    >>> tok(["Good movie!<br />GOOD", ""])
    array([[3, 2, 3],
           [0, 0, 0]], dtype=int32)
    """

    def __init__(
        self,
        vocabulary,
        sequence_length=None,
        standardize="lower_and_strip_punctuation",
        replace_br_tags=True,
        truncating="post",
    ):
        if not isinstance(vocabulary, (list, tuple)) or len(vocabulary) < 2:
            raise ValueError(
                "`vocabulary` must be a list of at least 2 strings, starting with "
                f'"" (padding) and "[UNK]". Received: {type(vocabulary).__name__}'
            )
        vocabulary = [str(word) for word in vocabulary]
        if vocabulary[0] != PAD_TOKEN or vocabulary[1] != OOV_TOKEN:
            raise ValueError(
                '`vocabulary` must start with "" (padding, id 0) and "[UNK]" '
                f"(out of vocabulary, id 1). Received: {vocabulary[:2]}"
            )
        index = {word: i for i, word in enumerate(vocabulary)}
        if len(index) != len(vocabulary):
            raise ValueError("`vocabulary` has duplicate entries.")
        if sequence_length is not None and (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, int)
            or sequence_length < 1
        ):
            raise ValueError(
                "`sequence_length` must be None or a positive int. "
                f"Received: sequence_length={sequence_length!r}"
            )
        if standardize not in STANDARDIZE_MODES:
            raise ValueError(
                f"`standardize` must be one of {STANDARDIZE_MODES}. "
                f"Received: standardize={standardize!r}"
            )
        if truncating not in ("pre", "post"):
            raise ValueError(f"`truncating` must be 'pre' or 'post'. Received: {truncating!r}")
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.standardize = standardize
        self.replace_br_tags = bool(replace_br_tags)
        self.truncating = truncating
        self._index = index

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    @classmethod
    def from_text_vectorization(
        cls, layer, sequence_length=None, replace_br_tags=True, truncating="post"
    ):
        """Builds the tokenizer of an adapted `keras.layers.TextVectorization`.

        Only `split="whitespace"`, `output_mode="int"`, no n-grams and a
        standardize mode of `STANDARDIZE_MODES` can be reproduced.
        `sequence_length` defaults to the layer's `output_sequence_length`.
        """
        config = layer.get_config()
        problems = []
        if config.get("split") != "whitespace":
            problems.append(f"split={config.get('split')!r}")
        if config.get("output_mode") != "int":
            problems.append(f"output_mode={config.get('output_mode')!r}")
        if config.get("ngrams") is not None:
            problems.append(f"ngrams={config.get('ngrams')!r}")
        if config.get("standardize") not in STANDARDIZE_MODES:
            problems.append(f"standardize={config.get('standardize')!r}")
        if problems:
            raise ValueError(
                "WordTokenizer reproduces TextVectorization only with split='whitespace', "
                "output_mode='int', ngrams=None and a built-in standardize mode. "
                f"Received {', '.join(problems)}."
            )
        return cls(
            [str(word) for word in layer.get_vocabulary()],
            sequence_length=sequence_length or config.get("output_sequence_length"),
            standardize=config["standardize"],
            replace_br_tags=replace_br_tags,
            truncating=truncating,
        )

    @classmethod
    def from_texts(
        cls,
        texts,
        max_tokens=None,
        min_count=1,
        sequence_length=None,
        standardize="lower_and_strip_punctuation",
        replace_br_tags=True,
        truncating="post",
        verbose=0,
    ):
        """Learns the vocabulary of `texts`, as `TextVectorization.adapt` does.

        Plain Python (no TensorFlow): every text is tokenized as `tokenize`
        does, the tokens are counted, and the vocabulary is `""`, `"[UNK]"`,
        then the words by decreasing count, ties broken by decreasing UTF-8
        bytes (Keras's `IndexLookup.finalize_state` sorts with
        `np.lexsort((tokens, counts))[::-1]`). With the same `standardize`
        and `max_tokens` (and `replace_br_tags=False`, or texts without
        `<br />`), the vocabulary equals that of
        `keras.layers.TextVectorization(max_tokens=max_tokens,
        standardize=standardize).adapt(texts)`.

        Args:
            texts: a list, tuple or 1-D array of str (or UTF-8 bytes).
            max_tokens: optional int >= 3: the size of the vocabulary,
                padding and out-of-vocabulary entries included (as in
                `TextVectorization`). `None`: every word kept.
            min_count: int >= 1: words seen fewer times are left out (an
                addition to `TextVectorization`; the default 1 keeps all).
            sequence_length: see the class arguments.
            standardize: see the class arguments.
            replace_br_tags: see the class arguments.
            truncating: see the class arguments.
            verbose: 1 shows a progress bar over the texts, 0 is silent.

        Returns:
            A `WordTokenizer`.

        Example:

        >>> tok = WordTokenizer.from_texts(["a b b", "c b a"], max_tokens=4)
        >>> tok.vocabulary
        ['', '[UNK]', 'b', 'a']
        """
        max_tokens = check_int(max_tokens, "max_tokens", minimum=3, allow_none=True)
        min_count = check_int(min_count, "min_count", minimum=1)
        texts = check_texts(texts)
        # Checks the other arguments before the (long) count.
        tokenizer = cls(
            [PAD_TOKEN, OOV_TOKEN],
            sequence_length=sequence_length,
            standardize=standardize,
            replace_br_tags=replace_br_tags,
            truncating=truncating,
        )
        if verbose:
            from kzoo.recipes.progress import progress

            texts = progress(texts, label="Counting words", unit="texts", verbose=verbose)
        counts = collections.Counter()
        for text in texts:
            counts.update(tokenizer.tokenize(text))
        # The special tokens are never learned (TextVectorization drops them too).
        counts.pop(PAD_TOKEN, None)
        counts.pop(OOV_TOKEN, None)
        words = [word for word, count in counts.items() if count >= min_count]
        words.sort(key=lambda word: (counts[word], word.encode("utf-8")), reverse=True)
        if max_tokens is not None:
            words = words[: max_tokens - 2]
        config = tokenizer.get_config()
        config["vocabulary"] = [PAD_TOKEN, OOV_TOKEN] + words
        return cls.from_config(config)

    def tokenize(self, text):
        """Splits one str into its standardized tokens (a list of str)."""
        if self.replace_br_tags:
            text = _BR_TAG.sub(" ", text)
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(_ASCII_LOWER)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = _PUNCTUATION.sub("", text)
        return [token for token in _ASCII_WHITESPACE.split(text) if token]

    def encode(self, texts):
        """Returns one int32 id array per text, truncated but not padded."""
        texts = check_texts(texts)
        index, oov = self._index, 1
        sequences = []
        for text in texts:
            ids = np.fromiter(
                (index.get(token, oov) for token in self.tokenize(text)), dtype="int32"
            )
            if self.sequence_length is not None and len(ids) > self.sequence_length:
                if self.truncating == "post":
                    ids = ids[: self.sequence_length]
                else:
                    ids = ids[-self.sequence_length :]
            sequences.append(ids)
        return sequences

    @staticmethod
    def pad(sequences, length=None):
        """Right-pads id arrays with 0 into one `(n, length)` int32 array."""
        if length is None:
            length = max([len(ids) for ids in sequences] + [1])
        return pad_rows([ids[:length] for ids in sequences], length)

    def __call__(self, texts, length=None):
        return self.pad(self.encode(texts), length)

    def get_config(self):
        return {
            "vocabulary": list(self.vocabulary),
            "sequence_length": self.sequence_length,
            "standardize": self.standardize,
            "replace_br_tags": self.replace_br_tags,
            "truncating": self.truncating,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"WordTokenizer(vocabulary_size={self.vocabulary_size}, "
            f"sequence_length={self.sequence_length}, standardize={self.standardize!r})"
        )
