"""Word dropout to the unknown id (Lample et al. 2016)."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int, check_rate, check_seed


@register_serializable
class UnknownWordDropout(keras.layers.Layer):
    """Replaces word ids by the unknown id with probability `rate` in training.

    The model sees the unknown id on words it knows, so it learns to tag
    unknown words (frequent in test text) from their characters and casing.
    Ids up to `unknown_id` (padding 0 and the unknown id itself) are never
    replaced; at inference the ids pass unchanged.

    Args:
        rate: float in [0, 1), the replacement probability per token.
        unknown_id: int >= 0, the id that replaces a word (default 1).
        seed: optional int seed.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        word_ids: int tensor of any shape.
        training: bool.

    Returns:
        The ids, same shape and dtype.

    Example:

    >>> drop = kzoo.layers.UnknownWordDropout(0.1)
    >>> drop(np.array([[5, 7, 0]]), training=True).shape
    (1, 3)

    Reference:
        Lample et al., "Neural Architectures for Named Entity Recognition",
        NAACL 2016 (replacing training words by the unknown token).
    """

    def __init__(self, rate, unknown_id=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "rate")
        self.unknown_id = check_int(unknown_id, "unknown_id", minimum=0)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True

    def call(self, word_ids, training=False):
        if not training or self.rate == 0.0:
            return word_ids
        coins = keras.random.uniform(ops.shape(word_ids), seed=self.seed_generator)
        replace = ops.logical_and(coins < self.rate, ops.greater(word_ids, self.unknown_id))
        return ops.where(replace, ops.cast(self.unknown_id, word_ids.dtype), word_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "unknown_id": self.unknown_id,
            "seed": self.seed,
        }
