"""Text <-> token ids for the language model, and streams cut for truncated BPTT.

Plain Python and NumPy: no TensorFlow, so a loaded model reads and writes
text on every Keras backend. The vocabulary is part of the model's config,
so it travels inside the `.keras` file.
"""

import numpy as np

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_token_ids, check_units

TOKEN_LEVELS = ("character", "word")
UNKNOWN_WORD = "<unk>"


def check_vocabulary(vocabulary, token_level):
    """A list of distinct str tokens (one character each at the character level)."""
    if isinstance(vocabulary, str) or not all(isinstance(t, str) for t in vocabulary):
        raise ValueError(
            "`vocabulary` must be a list of str (the token of each id). "
            f"Received: vocabulary={vocabulary!r:.80}"
        )
    vocabulary = list(vocabulary)
    if not vocabulary:
        raise ValueError("`vocabulary` must not be empty.")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("`vocabulary` has repeated tokens; each id needs its own token.")
    if token_level == "character":
        long_tokens = [t for t in vocabulary if len(t) != 1]
        if long_tokens:
            raise ValueError(
                "With token_level='character' every vocabulary entry must be one "
                f"character. Received entries {long_tokens[:5]!r}."
            )
    return vocabulary


@register_serializable
class LanguageModelPreprocessor:
    """Maps text to token ids and back, at the character or word level.

    Characters: every character is a token and must be in the vocabulary.
    Words: the text is split on whitespace; a word outside the vocabulary
    becomes `<unk>` when the vocabulary has it (Mikolov's PTB convention),
    and is an error otherwise. Decoding joins characters directly and words
    with single spaces.

    Args:
        vocabulary: list of distinct str, the token of each id.
        token_level: `"character"` (default) or `"word"`.

    Example:

    >>> preprocessor = LanguageModelPreprocessor(list("ab \\n"))
    >>> preprocessor.encode("ab a")
    [0, 1, 2, 0]
    >>> preprocessor.decode([1, 0])
    'ba'
    """

    def __init__(self, vocabulary, token_level="character"):
        self.token_level = check_choice(token_level, TOKEN_LEVELS, "token_level")
        self.vocabulary = check_vocabulary(vocabulary, self.token_level)
        self._index = {token: i for i, token in enumerate(self.vocabulary)}

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def tokenize(self, text):
        """Splits `text` into tokens (characters or whitespace-separated words)."""
        return list(text) if self.token_level == "character" else text.split()

    def encode(self, text):
        """Maps a string to a list of token ids.

        Raises:
            ValueError: `text` is not a str, or has characters (or, without
                `<unk>` in the vocabulary, words) outside the vocabulary; the
                message lists them.
        """
        if not isinstance(text, str):
            raise ValueError(f"`text` must be a str. Received: {type(text).__name__}")
        tokens = self.tokenize(text)
        index = self._index
        unknown = sorted({t for t in tokens if t not in index})
        if unknown and self.token_level == "word" and UNKNOWN_WORD in index:
            return [index.get(t, index[UNKNOWN_WORD]) for t in tokens]
        if unknown:
            raise ValueError(
                f"The text has {len(unknown)} {self.token_level}(s) outside the model's "
                f"vocabulary: {unknown[:10]!r}"
            )
        return [index[t] for t in tokens]

    def decode(self, token_ids):
        """Maps a sequence of token ids back to a string."""
        ids = np.asarray(token_ids).reshape(-1)
        check_token_ids(ids, self.vocabulary_size, "token_ids")
        tokens = [self.vocabulary[int(i)] for i in ids]
        return "".join(tokens) if self.token_level == "character" else " ".join(tokens)

    def get_config(self):
        return {"vocabulary": list(self.vocabulary), "token_level": self.token_level}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def bptt_batches(token_ids, batch_size, sequence_length):
    """Cuts a token stream into inputs/targets for truncated BPTT.

    The stream is split into `batch_size` contiguous rows; batch b holds
    window b of every row, so with `fit(x, y, batch_size=batch_size,
    shuffle=False)` on a stateful model row j of each batch continues row j
    of the previous batch (Zaremba et al.'s PTB reader).

    Args:
        token_ids: 1-D int array.
        batch_size: positive int, the number of parallel rows.
        sequence_length: positive int, the BPTT window.

    Returns:
        `(x, y)` int32 arrays of shape `(num_batches * batch_size,
        sequence_length)`, `y` being `x` shifted by one token.
    """
    ids = np.asarray(token_ids).reshape(-1)
    check_units(batch_size, "batch_size")
    check_units(sequence_length, "sequence_length")
    row_length = len(ids) // batch_size
    num_batches = (row_length - 1) // sequence_length
    if num_batches < 1:
        raise ValueError(
            f"A stream of {len(ids)} tokens is too short for batch_size={batch_size} "
            f"and sequence_length={sequence_length}."
        )
    rows = ids[: batch_size * row_length].reshape(batch_size, row_length)
    span = num_batches * sequence_length

    def windows(block):  # (batch, span) -> (num_batches * batch, sequence_length)
        block = block.reshape(batch_size, num_batches, sequence_length)
        return block.transpose(1, 0, 2).reshape(-1, sequence_length).astype("int32")

    return windows(rows[:, :span]), windows(rows[:, 1 : span + 1])
