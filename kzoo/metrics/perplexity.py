"""Perplexity of next-token predictions."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable


@register_serializable
class Perplexity(keras.metrics.SparseCategoricalCrossentropy):
    """exp of the mean token cross-entropy: $\\exp(-\\frac{1}{N}\\sum_t \\log p(y_t))$.

    The cross-entropy is averaged over every token seen since the last
    reset (weighted by `sample_weight`, e.g. a padding mask) and only then
    exponentiated, so the result is the perplexity of the whole set, not a
    mean of per-batch perplexities.

    Args:
        from_logits: whether `y_pred` are logits (True for kzoo's language
            model) or probabilities.
        name: metric name. Default `"perplexity"`.
        dtype: metric dtype.

    Example:

    >>> metric = Perplexity(from_logits=True)
    >>> metric.update_state([[1, 2]], np.zeros((1, 2, 10)))   # uniform over 10 tokens
    >>> float(metric.result())
    10.0
    """

    def __init__(self, from_logits=True, name="perplexity", dtype=None):
        super().__init__(name=name, dtype=dtype, from_logits=from_logits)

    def result(self):
        return ops.exp(super().result())

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits}
