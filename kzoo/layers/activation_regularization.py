"""Activation and temporal activation regularisation (AR/TAR) of AWD-LSTM."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_number


@register_serializable
class ActivationRegularization(keras.layers.Layer):
    """Adds AR and TAR penalties on a recurrent layer's output sequence.

    For outputs `h` of shape `(batch, time, units)` and the valid steps `V`
    (all steps, or those the mask keeps):

        AR  = alpha * mean_{(b, t) in V, u} h[b, t, u]^2
        TAR = beta  * mean_{(b, t-1), (b, t) in V, u} (h[b, t, u] - h[b, t-1, u])^2

    AR keeps activations small, TAR keeps them from jumping between steps
    (Merity et al., 2018: alpha=2, beta=1 on the last LSTM layer, AR on its
    dropped outputs, TAR on the undropped ones; put one layer before and one
    after the dropout for that split). Masked steps count in neither mean,
    and TAR takes only pairs of consecutive valid steps. Both terms are added
    with `add_loss` in training only; the layer returns its input unchanged
    and passes the mask on.

    Args:
        alpha: float >= 0, weight of AR (0 turns it off). Default 2.0.
        beta: float >= 0, weight of TAR (0 turns it off). Default 1.0.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, time, units)` float tensor.
        mask: optional `(batch, time)` boolean tensor, True for valid steps
            (taken from the previous layer when it propagates one).
        training: whether the penalties are added.

    Returns:
        `inputs`, unchanged.

    Example:

    >>> x = keras.Input((None,), dtype="int32")
    >>> h = kzoo.layers.LSTM(32, return_sequences=True)(
    ...     keras.layers.Embedding(100, 16, mask_zero=True)(x))
    >>> h = kzoo.layers.ActivationRegularization(alpha=2.0, beta=1.0)(h)

    Reference:
        Merity, Keskar & Socher, "Regularizing and Optimizing LSTM Language
        Models", ICLR 2018, https://arxiv.org/abs/1708.02182
    """

    def __init__(self, alpha=2.0, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = check_number(alpha, "alpha", 0.0, float("inf"))
        self.beta = check_number(beta, "beta", 0.0, float("inf"))
        self.supports_masking = True

    def call(self, inputs, mask=None, training=False):
        if len(inputs.shape) != 3:
            raise ValueError(
                f"{self.name} expects inputs of rank 3 (batch, time, units). "
                f"Received shape {tuple(inputs.shape)}."
            )
        if training and (self.alpha > 0 or self.beta > 0):
            ar, tar = activation_penalties(inputs, mask)
            if self.alpha > 0:
                self.add_loss(self.alpha * ar)
            if self.beta > 0:
                self.add_loss(self.beta * tar)
        return inputs

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


def activation_penalties(outputs, mask=None):
    """The unweighted AR and TAR terms of `outputs` `(batch, time, units)`.

    Args:
        outputs: float tensor `(batch, time, units)`.
        mask: optional `(batch, time)` tensor, True (or 1) for valid steps.

    Returns:
        `(ar, tar)`: float32 scalars, the masked means of `h^2` and of
        `(h_t - h_{t-1})^2` (0 where no step or no pair is valid).
    """
    h = ops.cast(outputs, "float32")
    units = ops.cast(ops.shape(h)[-1], "float32")
    if mask is None:
        valid = ops.ones(ops.shape(h)[:2], dtype="float32")
    else:
        valid = ops.cast(mask, "float32")  # (batch, time)
    # A valid pair needs both of its steps: (batch, time - 1).
    pairs = valid[:, 1:] * valid[:, :-1]
    squares = ops.sum(ops.square(h), axis=-1)  # (batch, time)
    steps = ops.sum(ops.square(h[:, 1:] - h[:, :-1]), axis=-1)  # (batch, time - 1)
    ar = ops.sum(squares * valid) / ops.maximum(ops.sum(valid) * units, 1.0)
    tar = ops.sum(steps * pairs) / ops.maximum(ops.sum(pairs) * units, 1.0)
    return ar, tar
