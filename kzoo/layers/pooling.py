"""Mask-aware poolings that turn a sequence of vectors into one vector.

Padded steps (mask False) never contribute, so a review gives the same pooled
vector however much padding its batch adds. A row with no valid step at all
(an empty text) pools to zeros.
"""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_units


def _as_float_mask(mask, dtype):
    return ops.expand_dims(ops.cast(mask, dtype), -1)  # (batch, time, 1)


def _check_rank(layer, shape):
    if len(shape) != 3:
        raise ValueError(
            f"{layer.name} expects inputs of rank 3 (batch, time, features). "
            f"Received shape {tuple(shape)}."
        )


@register_serializable
class GlobalMaskedMaxPooling1D(keras.layers.Layer):
    """Maximum over the valid time steps of each sequence.

        y_d = max_{t : mask_t} x_{t,d}        (y = 0 when no step is valid)

    Call arguments:
        inputs: `(batch, time, features)`.
        mask: optional `(batch, time)` boolean mask, True for valid steps
            (passed automatically after `Embedding(mask_zero=True)`).

    Returns:
        `(batch, features)`.

    Example:

    >>> x = np.array([[[1.0], [5.0], [9.0]]])
    >>> GlobalMaskedMaxPooling1D()(x, mask=np.array([[True, True, False]]))
    [[5.0]]
    """

    def build(self, input_shape):
        _check_rank(self, input_shape)

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        lowest = ops.cast(-6.0e4 if dtype == "float16" else -3.0e38, dtype)
        pooled = ops.max(ops.where(valid, inputs, lowest), axis=1)
        any_valid = ops.any(valid, axis=1)  # (batch, 1)
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def compute_mask(self, inputs, mask=None):
        return None


@register_serializable
class GlobalMaskedAveragePooling1D(keras.layers.Layer):
    """Mean over the valid time steps of each sequence.

        y = sum_t mask_t x_t / max(1, sum_t mask_t)

    Call arguments:
        inputs: `(batch, time, features)`.
        mask: optional `(batch, time)` boolean mask.

    Returns:
        `(batch, features)`.

    Example:

    >>> x = np.array([[[1.0], [5.0], [9.0]]])
    >>> GlobalMaskedAveragePooling1D()(x, mask=np.array([[True, True, False]]))
    [[3.0]]
    """

    def build(self, input_shape):
        _check_rank(self, input_shape)

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = _as_float_mask(mask, inputs.dtype)
        # Replaced, not only weighted: 0 * NaN at a padded step would be NaN.
        inputs = ops.where(ops.cast(weights, "bool"), inputs, ops.zeros_like(inputs))
        total = ops.sum(inputs * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)  # (batch, 1)
        return total / count

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def compute_mask(self, inputs, mask=None):
        return None


@register_serializable
class AttentionPooling1D(keras.layers.Layer):
    """Additive attention pooling: a learned weighted mean of the valid steps.

        s_t = v^T tanh(x_t W + b)
        a = softmax over the valid steps of s
        y = sum_t a_t x_t                     (y = 0 when no step is valid)

    Args:
        units: positive int, size of the hidden layer of the scorer.
        kernel_initializer: initializer of `W` and `v`.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, time, features)`.
        mask: optional `(batch, time)` boolean mask.
        return_attention_scores: also return the weights `a`,
            `(batch, time)`.

    Returns:
        `(batch, features)`, and `(batch, time)` weights if asked.

    Example:

    >>> AttentionPooling1D(16)(np.ones((2, 7, 8))).shape
    (2, 8)

    Reference:
        Yang et al., 2016, "Hierarchical Attention Networks for Document
        Classification", https://aclanthology.org/N16-1174
    """

    def __init__(self, units=64, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        _check_rank(self, input_shape)
        features = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(features, self.units), initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.context = self.add_weight(
            name="context", shape=(self.units,), initializer=self.kernel_initializer
        )

    def call(self, inputs, mask=None, return_attention_scores=False):
        if mask is not None:
            # Padded steps never reach the output, even NaN or Inf ones.
            valid_steps = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
            inputs = ops.where(valid_steps, inputs, ops.zeros_like(inputs))
        hidden = ops.tanh(ops.matmul(inputs, self.kernel) + self.bias)  # (batch, time, units)
        scores = ops.sum(hidden * self.context, axis=-1)  # (batch, time)
        if mask is None:
            weights = ops.softmax(scores, axis=-1)
        else:
            valid = ops.cast(mask, "bool")
            scores = ops.where(valid, scores, ops.cast(-1.0e4, scores.dtype))
            # Multiplying by the mask after the softmax zeroes the weights of a
            # row without any valid step (the softmax alone would be uniform).
            weights = ops.softmax(scores, axis=-1) * ops.cast(valid, scores.dtype)
        pooled = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)
        if return_attention_scores:
            return pooled, weights
        return pooled

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = {
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
        return {**super().get_config(), **config}
