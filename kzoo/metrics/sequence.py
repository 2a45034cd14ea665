"""Token-level metrics of sequence outputs that skip padding."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int


@register_serializable
class MaskedTokenAccuracy(keras.metrics.Mean):
    """The share of non-padding target tokens whose highest logit is the target.

    $$\\mathrm{acc} = \\frac{\\sum_{b,t} m_{bt} [\\arg\\max_v z_{btv} = y_{bt}]}
      {\\sum_{b,t} m_{bt}}, \\qquad m_{bt} = [y_{bt} \\neq \\text{pad}]$$

    `keras.metrics.SparseCategoricalAccuracy` counts the padding positions
    too, which a model predicts trivially; this metric leaves them out.

    Args:
        pad_token_id: int >= 0, the target id that is not scored.
        name: metric name.
        dtype: dtype of the metric's variables.

    Call arguments:
        y_true: `(batch, time)` int target ids.
        y_pred: `(batch, time, vocab)` logits or probabilities.
        sample_weight: optional `(batch,)` or `(batch, time)` weights.

    Example:

    >>> model.compile(loss=MaskedSequenceLoss(0), metrics=[MaskedTokenAccuracy(0)])
    """

    def __init__(self, pad_token_id=0, name="token_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_token_id = check_int(pad_token_id, "pad_token_id", minimum=0)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        correct = ops.cast(ops.equal(predicted, y_true), self.dtype)
        weights = ops.cast(ops.not_equal(y_true, self.pad_token_id), self.dtype)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, self.dtype)
            if len(sample_weight.shape) == 1:
                sample_weight = sample_weight[:, None]  # one weight per sequence
            weights = weights * sample_weight
        return super().update_state(correct, sample_weight=weights)

    def get_config(self):
        return {"pad_token_id": self.pad_token_id, "name": self.name, "dtype": self.dtype}
