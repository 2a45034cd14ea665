"""Token cross-entropy over the non-padding positions of a target sequence."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int


@register_serializable
class MaskedSequenceLoss(keras.losses.Loss):
    """Token cross-entropy from logits, averaged over the non-padding targets.

    $$L = \\frac{\\sum_{b,t} m_{bt} \\, (-\\log \\mathrm{softmax}(z_{bt})_{y_{bt}})}
      {\\max(1, \\sum_{b,t} m_{bt})}, \\qquad m_{bt} = [y_{bt} \\neq \\text{pad}]$$

    Unlike `keras.losses.SparseCategoricalCrossentropy(from_logits=True,
    ignore_class=pad)`, whose mean runs over every position of the batch, the
    denominator counts only the real target tokens, so the loss of a batch
    does not depend on how much padding it holds.

    Args:
        pad_token_id: int >= 0, the target id that carries no loss.
        name: loss name.

    Call arguments:
        y_true: `(batch, time)` int target ids.
        y_pred: `(batch, time, vocab)` logits (not probabilities).

    Returns:
        A scalar.

    Example:

    >>> loss = MaskedSequenceLoss(pad_token_id=0)
    >>> loss([[3, 2, 0]], logits)  # logits: (1, 3, vocab); the last step is padding
    """

    def __init__(self, pad_token_id=0, name="masked_sequence_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_token_id = check_int(pad_token_id, "pad_token_id", minimum=0)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        mask = ops.cast(ops.not_equal(y_true, self.pad_token_id), "float32")
        return -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {"pad_token_id": self.pad_token_id, "name": self.name}
