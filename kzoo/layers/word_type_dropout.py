"""Dropout of whole word types (every occurrence of a word in a batch)."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_rate


@register_serializable
class WordTypeDropout(keras.layers.Layer):
    """Replaces every occurrence of randomly drawn word types by the unknown id.

    In training, each id of the vocabulary is dropped with probability
    `rate`, once per batch: all its occurrences in the batch become
    `unknown_id`. This is the embedding dropout of AWD-LSTM (a dropped word
    loses its whole embedding row for the batch), expressed on ids: the
    model cannot lean on one rare word it has memorized and learns a use for
    the unknown id. Padding (0) and ids up to `unknown_id` pass unchanged, so
    `Embedding(mask_zero=True)` masks the same steps; at inference the ids
    pass unchanged.

    Args:
        rate: float in [0, 1), the probability of dropping a word type.
        vocabulary_size: int, number of ids (padding and unknown included).
        unknown_id: int, the id that replaces a dropped word (1 in
            `TextVectorization` vocabularies).
        seed: optional int seed.

    Call arguments:
        token_ids: int tensor of any shape with values in
            `[0, vocabulary_size)`.
        training: bool.

    Example:

    >>> drop = WordTypeDropout(0.5, vocabulary_size=10, seed=1)
    >>> ids = drop(np.array([[5, 7, 5, 0]]), training=True)
    >>> # Both 5s are kept, or both become 1 (one draw per word type and
    >>> # batch); the padding 0 stays. The draws differ between backends.

    Reference:
        Merity et al., 2018, "Regularizing and Optimizing LSTM Language
        Models", section 4.3 (embedding dropout).
    """

    def __init__(self, rate, vocabulary_size, unknown_id=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "rate")
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int):
            raise ValueError(f"`vocabulary_size` must be an int. Received {vocabulary_size!r}.")
        if not 0 <= unknown_id < vocabulary_size:
            raise ValueError(
                f"`unknown_id` must be in [0, vocabulary_size={vocabulary_size}). "
                f"Received {unknown_id!r}."
            )
        self.vocabulary_size = vocabulary_size
        self.unknown_id = int(unknown_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, token_ids, training=False):
        if not training or self.rate == 0.0:
            return token_ids
        coins = keras.random.uniform((self.vocabulary_size,), seed=self.seed_generator)
        dropped = ops.take(coins < self.rate, token_ids, axis=0)
        dropped = ops.logical_and(dropped, ops.greater(token_ids, self.unknown_id))
        return ops.where(dropped, ops.cast(self.unknown_id, token_ids.dtype), token_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "vocabulary_size": self.vocabulary_size,
            "unknown_id": self.unknown_id,
            "seed": self.seed,
        }
