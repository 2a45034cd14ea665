"""A stack of cells that acts as one cell."""

import keras

from kzoo.api import kzoo_export


def state_sizes(cell):
    """`cell.state_size` as a list of ints (Keras cells may give an int)."""
    size = cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]


def initial_states(cell, batch_size, dtype):
    if hasattr(cell, "get_initial_state"):
        states = cell.get_initial_state(batch_size=batch_size)
        return list(states) if isinstance(states, (list, tuple)) else [states]
    return [keras.ops.zeros((batch_size, n), dtype=dtype) for n in state_sizes(cell)]


@kzoo_export
class StackedRNNCells(keras.layers.Layer):
    """Runs several cells one after another within each time step.

    The states of all cells are concatenated into one flat list (`[h1, c1,
    h2, c2]` for two LSTM cells), so a stack follows the same contract as a
    single cell.

    Args:
        cells: list of cells; each cell's output feeds the next.

    Call arguments:
        inputs: `(batch, features)`, one time step.
        states: flat list of all cells' states.
        training: passed to every cell.

    Example:

    >>> cells = [kzoo.layers.LSTMCell(32), kzoo.layers.LSTMCell(32)]
    >>> kzoo.layers.RNN(cells)(np.ones((2, 5, 3))).shape
    (2, 32)
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        if not cells:
            raise ValueError("`cells` must be a non-empty list of cells.")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [n for cell in self.cells for n in state_sizes(cell)]

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if not cell.built:
                cell.build(shape)
            shape = (shape[0], cell.output_size)

    def get_initial_state(self, batch_size=None):
        return [
            s for cell in self.cells for s in initial_states(cell, batch_size, self.compute_dtype)
        ]

    def prepare_dropout_masks(self, step_inputs, state, training=False):
        # A cell's masks depend only on the shapes of its inputs and state, so
        # zeros of those shapes stand in for the values of deeper layers.
        x = step_inputs
        for cell in self.cells:
            if hasattr(cell, "prepare_dropout_masks"):
                h = keras.ops.zeros((keras.ops.shape(x)[0], state_sizes(cell)[0]), dtype=x.dtype)
                cell.prepare_dropout_masks(x, h, training)
            x = keras.ops.zeros((keras.ops.shape(x)[0], cell.output_size), dtype=x.dtype)

    def reset_dropout_masks(self):
        for cell in self.cells:
            if hasattr(cell, "reset_dropout_masks"):
                cell.reset_dropout_masks()

    def call(self, inputs, states, training=False, **constants):
        new_states, offset = [], 0
        x = inputs
        for cell in self.cells:
            n = len(state_sizes(cell))
            cell_states = list(states[offset : offset + n])
            offset += n
            x, out_states = cell(x, cell_states, training=training, **constants)
            new_states.extend(out_states if isinstance(out_states, (list, tuple)) else [out_states])
        return x, new_states

    def get_config(self):
        cells = [keras.saving.serialize_keras_object(cell) for cell in self.cells]
        return {**super().get_config(), "cells": cells}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cells"] = [keras.saving.deserialize_keras_object(c) for c in config["cells"]]
        return cls(**config)
