"""Per-sequence dropout masks for recurrent cells."""

import keras
from keras import ops


class RecurrentDropoutMixin:
    """Draws input and recurrent dropout masks once per sequence.

    The recurrent layer calls `prepare_dropout_masks` before its time loop and
    `reset_dropout_masks` after it, so every time step of a sequence reuses the
    same masks (Gal & Ghahramani, 2016) and no random numbers are drawn inside
    the loop, which keeps compiled loops (XLA, `lax.scan`) free of RNG state.

    Cells using it set `dropout`, `recurrent_dropout` and `seed_generator`.
    """

    _input_mask = None
    _state_mask = None

    def prepare_dropout_masks(self, step_inputs, state, training=False):
        if not training:
            return
        if self.dropout > 0:
            self._input_mask = keras.random.dropout(
                ops.ones_like(step_inputs), rate=self.dropout, seed=self.seed_generator
            )
        if self.recurrent_dropout > 0:
            self._state_mask = keras.random.dropout(
                ops.ones_like(state),
                rate=self.recurrent_dropout,
                seed=self.seed_generator,
            )

    def reset_dropout_masks(self):
        # Only masks that were set: an assignment goes through Keras's
        # attribute tracking, which eager torch would pay at every call.
        if self._input_mask is not None:
            self._input_mask = None
        if self._state_mask is not None:
            self._state_mask = None

    def _dropout_inputs(self, inputs, training):
        if not training or self.dropout == 0:
            return inputs
        mask = self._input_mask
        if mask is None:  # a cell called by hand, outside kzoo.layers.RNN
            mask = keras.random.dropout(
                ops.ones_like(inputs), rate=self.dropout, seed=self.seed_generator
            )
        return inputs * mask

    def _dropout_state(self, state, training):
        if not training or self.recurrent_dropout == 0:
            return state
        mask = self._state_mask
        if mask is None:
            mask = keras.random.dropout(
                ops.ones_like(state),
                rate=self.recurrent_dropout,
                seed=self.seed_generator,
            )
        return state * mask
