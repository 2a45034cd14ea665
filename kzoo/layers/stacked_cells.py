"""A stack of cells that acts as one cell."""

import keras

from kzoo.utils.serialization import register_serializable


def _normalized(size, where):
    if isinstance(size, bool) or size is None:
        raise ValueError(
            f"`state_size` must be a positive int or a list of them. Received {size!r} in {where}."
        )
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"`state_size` must hold positive ints. Received {size!r} in {where}.")
        return size
    if isinstance(size, (list, tuple)) and size:
        return [_normalized(s, where) for s in size]
    raise ValueError(
        f"`state_size` must be a positive int or a list of them. Received {size!r} in {where}."
    )


def state_structure(cell):
    """`cell.state_size` as a list (an int becomes `[int]`); nested per cell when stacked."""
    size = _normalized(getattr(cell, "state_size", None), f"cell {cell!r}")
    return size if isinstance(size, list) else [size]


def state_sizes(cell):
    """The sizes of all of `cell`'s states, as one flat list of ints."""
    return keras.tree.flatten(state_structure(cell))


def output_size(cell):
    """`cell.output_size`, or the size of the first state where there is none (as Keras)."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = state_sizes(cell)[0]
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError(f"`output_size` must be an int. Received {size!r} from cell {cell!r}.")
    return size


def initial_states(cell, batch_size, dtype):
    """The cell's initial states, structured as `state_structure(cell)`."""
    structure = state_structure(cell)
    if getattr(cell, "get_initial_state", None) is not None:
        states = cell.get_initial_state(batch_size=batch_size)
        return list(states) if keras.tree.is_nested(states) else [states]
    return keras.tree.map_structure(
        lambda n: keras.ops.zeros((batch_size, n), dtype=dtype), structure
    )


@register_serializable
class StackedRNNCells(keras.layers.Layer):
    """Runs several cells one after another within each time step.

    As `keras.layers.StackedRNNCells`: the states are one entry per cell,
    each as that cell keeps them (`[[h1, c1], [h2, c2]]` for two LSTM cells,
    `[h1, h2]` for two GRU cells), and `kzoo.layers.RNN` returns them the
    same way.

    Args:
        cells: list of cells; each cell's output feeds the next.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, features)`, one time step.
        states: one entry per cell.
        training: passed to the cells that take it.

    Example:

    >>> cells = [kzoo.layers.LSTMCell(32), kzoo.layers.LSTMCell(32)]
    >>> output, (h1, c1), (h2, c2) = kzoo.layers.RNN(cells, return_state=True)(
    ...     np.ones((2, 5, 3)))
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(
                f"`cells` must be a non-empty list of cells. Received: cells={cells!r}"
            )
        for cell in cells:
            for attribute in ("call", "state_size"):
                if not hasattr(cell, attribute):
                    raise ValueError(
                        f"Every cell must have a `{attribute}` attribute. Received: cell={cell!r}"
                    )
        self.cells = list(cells)

    @property
    def state_size(self):
        return [_normalized(cell.state_size, f"cell {cell!r}") for cell in self.cells]

    @property
    def output_size(self):
        return output_size(self.cells[-1])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, keras.layers.Layer) and not cell.built:
                cell.build(shape)
            shape = (shape[0], output_size(cell))

    def get_initial_state(self, batch_size=None):
        states = []
        for cell, size in zip(self.cells, self.state_size):
            cell_states = initial_states(cell, batch_size, self.compute_dtype)
            states.append(cell_states if isinstance(size, list) else cell_states[0])
        return states

    def prepare_dropout_masks(self, step_inputs, state, training=False):
        # A cell's masks depend only on the shapes of its inputs and state, so
        # zeros of those shapes stand in for the values of deeper layers.
        x = step_inputs
        for cell in self.cells:
            if hasattr(cell, "prepare_dropout_masks"):
                h = keras.ops.zeros((keras.ops.shape(x)[0], state_sizes(cell)[0]), dtype=x.dtype)
                cell.prepare_dropout_masks(x, h, training)
            x = keras.ops.zeros((keras.ops.shape(x)[0], output_size(cell)), dtype=x.dtype)

    def reset_dropout_masks(self):
        for cell in self.cells:
            if hasattr(cell, "reset_dropout_masks"):
                cell.reset_dropout_masks()

    def call(self, inputs, states, training=False, **constants):
        if len(states) != len(self.cells):
            raise ValueError(
                f"{self.name}: expected one state entry per cell ({len(self.cells)}), "
                f"received {len(states)}."
            )
        new_states = []
        x = inputs
        for cell, size, cell_states in zip(self.cells, self.state_size, states):
            nested = isinstance(size, list)
            cell_states = list(cell_states) if keras.tree.is_nested(cell_states) else [cell_states]
            x, out_states = cell(x, cell_states, training=training, **constants)
            out_states = list(out_states) if keras.tree.is_nested(out_states) else [out_states]
            new_states.append(out_states if nested else out_states[0])
        return x, new_states

    def get_config(self):
        cells = [keras.saving.serialize_keras_object(cell) for cell in self.cells]
        return {**super().get_config(), "cells": cells}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["cells"] = [
            keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)
            for c in config["cells"]
        ]
        return cls(**config)
