"""Raw text <-> token ids for text classifiers, in plain Python (no TensorFlow)."""

import numpy as np

from kzoo.preprocessing import WordTokenizer, check_texts
from kzoo.utils.bucketing import BucketedBatches
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int


def is_text_input(x):
    """Whether `predict` should read `x` as raw text rather than token ids.

    A str or bytes, a 1-D array of str/bytes/objects, or a list/tuple that is
    empty or holds a str or bytes (`check_texts` then names any item that is
    not one). Numeric arrays, nested lists of ids, tensors and datasets are
    ids, and so are arrays of more dimensions (whose id check then names
    their dtype).
    """
    if isinstance(x, (str, bytes)):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO" and x.ndim <= 1
    if isinstance(x, (list, tuple)):
        # Any str decides: `check_texts` then names an item that is not one.
        return len(x) == 0 or any(isinstance(t, (str, bytes)) for t in x)
    return False


@register_serializable
class TextClassifierPreprocessor:
    """Turns raw texts into batches of token ids for a text classifier.

    Holds a `kzoo.preprocessing.WordTokenizer` (its vocabulary is part of
    this object's config, so the `.keras` file of a classifier that holds
    this preprocessor holds the vocabulary too) and the batching of texts
    for prediction: texts are sorted by length and each batch is padded only
    to its longest text, rounded up to a multiple of `bucket_width` (fewer
    distinct shapes to compile); padding does not change predictions.

    Plain Python and NumPy: it runs on every backend without TensorFlow.

    Args:
        tokenizer: a `WordTokenizer` (or its config dict).
        bucket_width: positive int, padded lengths are multiples of it.

    Call arguments:
        texts: a str, or a list/tuple/1-D array of str or UTF-8 bytes.

    Returns:
        A list with one int32 id array per text (not padded).

    Example:

    >>> pre = TextClassifierPreprocessor(WordTokenizer(["", "[UNK]", "good", "film"]))
    >>> pre(["Good film!", "a film"])
    [array([2, 3], dtype=int32), array([1, 3], dtype=int32)]
    """

    def __init__(self, tokenizer, bucket_width=32):
        if isinstance(tokenizer, dict):
            tokenizer = WordTokenizer.from_config(tokenizer)
        if not isinstance(tokenizer, WordTokenizer):
            raise TypeError(
                "`tokenizer` must be a kzoo.preprocessing.WordTokenizer. "
                f"Received: tokenizer of type {type(tokenizer).__name__}"
            )
        self.tokenizer = tokenizer
        self.bucket_width = check_int(bucket_width, "bucket_width", minimum=1)

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size

    def __call__(self, texts):
        return self.tokenizer.encode(check_texts(texts))

    def batches(self, texts, batch_size=32, sequence_length=None):
        """`BucketedBatches` of the texts' ids, sorted by length, for prediction.

        Args:
            texts: raw texts (see the call arguments).
            batch_size: positive int, texts per batch.
            sequence_length: pad every batch to this fixed length instead
                (for a model built with a fixed `sequence_length`); longer
                texts are cut to it.

        Returns:
            A `kzoo.utils.bucketing.BucketedBatches` whose `map_batches`
            returns outputs in the order of `texts`.
        """
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        sequences = self(texts)
        if sequence_length is None:
            bucketing = {"bucket_width": self.bucket_width}
        else:
            sequences = [ids[:sequence_length] for ids in sequences]
            bucketing = {"bucket_boundaries": (sequence_length,), "max_length": sequence_length}
        return BucketedBatches(
            sequences,
            batch_size=batch_size,
            sort_window=max(len(sequences), 1),
            **bucketing,
        )

    def get_config(self):
        return {"tokenizer": self.tokenizer.get_config(), "bucket_width": self.bucket_width}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"TextClassifierPreprocessor({self.tokenizer!r}, bucket_width={self.bucket_width})"
