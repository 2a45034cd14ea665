"""Reversal of each sequence's valid steps, padding left in place."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable


@register_serializable
class ReverseSequence(keras.layers.Layer):
    """Reverses the order of each row's valid steps; padded steps stay where they are.

    A backward model reads a text from its last word to its first. Reversing
    a padded batch with `ops.flip` would move the padding to the front; this
    layer reverses only the valid steps (as `tf.reverse_sequence` does with
    lengths), so a row `[a, b, c, 0, 0]` becomes `[c, b, a, 0, 0]` and a
    pre-padded `[0, 0, a, b, c]` becomes `[0, 0, c, b, a]`; valid steps that
    are not contiguous are reversed among themselves. Applying it twice
    gives the input back.

    The valid steps are those of the incoming Keras mask; without one, a
    2-D integer input is read as token ids with `padding_id` as padding and
    every step of any other input is valid. The mask passes through
    unchanged (the valid positions do not move).

    Args:
        padding_id: int, the padding id of integer inputs without a mask
            (0, as `Embedding(mask_zero=True)`).

    Call arguments:
        inputs: tensor of shape `(batch, time, ...)`.
        mask: optional bool tensor of shape `(batch, time)`.

    Example:

    >>> kzoo.layers.ReverseSequence()(np.array([[4, 5, 6, 0]]))
    array([[6, 5, 4, 0]], dtype=int32)
    """

    def __init__(self, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding_id, bool) or not isinstance(padding_id, int):
            raise ValueError(f"`padding_id` must be an int. Received: padding_id={padding_id!r}")
        self.padding_id = padding_id
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if len(inputs.shape) < 2:
            raise ValueError(
                "ReverseSequence expects inputs of shape (batch, time, ...). "
                f"Received: shape={tuple(inputs.shape)}"
            )
        valid = self._valid_steps(inputs, mask)
        steps = ops.shape(inputs)[1]
        positions = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)
        positions = ops.broadcast_to(positions, ops.shape(valid))
        # The valid positions of each row in order, then the padded ones.
        order = ops.argsort(ops.where(valid, positions, positions + steps), axis=1)
        count = ops.sum(ops.cast(valid, "int32"), axis=1, keepdims=True)
        rank = ops.cumsum(ops.cast(valid, "int32"), axis=1) - 1
        mirrored = ops.clip(count - 1 - rank, 0, steps - 1)
        source = ops.where(valid, ops.take_along_axis(order, mirrored, axis=1), positions)
        source = ops.cast(source, "int32")
        for _ in range(len(inputs.shape) - 2):
            source = ops.expand_dims(source, -1)
        if len(inputs.shape) > 2:
            source = ops.broadcast_to(source, ops.shape(inputs))
        return ops.take_along_axis(inputs, source, axis=1)

    def _valid_steps(self, inputs, mask):
        if mask is not None:
            if tuple(mask.shape[:2]) != tuple(inputs.shape[:2]) and None not in mask.shape[:2]:
                raise ValueError(
                    f"The mask's shape {tuple(mask.shape)} does not match the inputs' "
                    f"(batch, time) = {tuple(inputs.shape[:2])}."
                )
            return ops.cast(mask, "bool")
        if len(inputs.shape) == 2 and "int" in str(inputs.dtype):
            return ops.not_equal(inputs, self.padding_id)
        return ops.ones(ops.shape(inputs)[:2], dtype="bool")

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "padding_id": self.padding_id}
