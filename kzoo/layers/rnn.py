"""The recurrent layer that runs any cell over time."""

import inspect

import keras
from keras import ops

from kzoo import backend
from kzoo.api import kzoo_export
from kzoo.layers.stacked_cells import StackedRNNCells, initial_states, state_sizes


@kzoo_export
class RNN(keras.layers.Layer):
    """Runs a recurrent cell over the time axis of a sequence.

    Any cell works that has `state_size` (int or list of ints),
    `output_size`, `get_initial_state(batch_size)` and
    `call(inputs, states, training=False)`: the kzoo cells, the
    `keras.layers` cells and user-written ones. A list of cells is stacked
    with `StackedRNNCells`.

    Masking follows `keras.layers.RNN`: at a masked step the state is kept
    and the previous output is repeated (zeros before the first valid
    step). Masks come from a masking layer such as
    `Embedding(mask_zero=True)` or from the `mask` argument.

    Args:
        cell: a cell or a list of cells.
        return_sequences: return the output of every step instead of the last.
        return_state: also return the final states (as separate outputs).
        go_backwards: process the sequence from its end; the returned
            sequence is in processing (reversed) order, as in Keras.
        stateful: keep the final states of each batch as the initial states
            of the next; needs a fixed batch size. Reset with
            `reset_states()`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        sequences: `(batch, time, features)` tensor.
        initial_state: optional list of `(batch, n)` tensors, one per state.
        mask: optional `(batch, time)` boolean tensor, True for valid steps.
        training: whether dropout is active.
        constants: optional dict of tensors passed unchanged as keyword
            arguments to every `cell.call` (for example attention memory).

    Returns:
        `(batch, output_size)` or, with `return_sequences`,
        `(batch, time, output_size)`; with `return_state`, followed by the
        final states.

    Example:

    >>> layer = kzoo.layers.RNN(kzoo.layers.LSTMCell(32), return_state=True)
    >>> output, h, c = layer(np.ones((8, 10, 4)))
    """

    def __init__(
        self,
        cell,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        **kwargs,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        for attribute in ("call", "state_size", "output_size"):
            if not hasattr(cell, attribute):
                raise ValueError(
                    f"`cell` must have a `{attribute}` attribute (see the kzoo cell "
                    f"contract in kzoo.layers.RNN). Received: cell={cell!r}"
                )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.supports_masking = True
        self.states = None
        self._cell_takes_training = "training" in inspect.signature(cell.call).parameters

    def build(self, sequences_shape, initial_state_shape=None):
        self._check_rank(sequences_shape)
        if not self.cell.built:
            self.cell.build((sequences_shape[0], sequences_shape[-1]))
        if self.stateful:
            batch = sequences_shape[0]
            if batch is None:
                raise ValueError(
                    "A stateful RNN needs a fixed batch size: give the input layer "
                    "`batch_shape=(batch, time, features)`."
                )
            self.states = [
                self.add_weight(
                    name=f"state_{i}",
                    shape=(batch, n),
                    initializer="zeros",
                    trainable=False,
                )
                for i, n in enumerate(state_sizes(self.cell))
            ]

    def _check_rank(self, shape):
        if len(shape) != 3:
            raise ValueError(
                f"{self.name} expects inputs of rank 3 (batch, time, features). "
                f"Received shape {tuple(shape)}."
            )

    def reset_states(self):
        """Sets the kept states of a stateful layer back to zeros."""
        for state in self.states or []:
            state.assign(ops.zeros(state.shape, dtype=state.dtype))

    def get_initial_state(self, batch_size):
        return initial_states(self.cell, batch_size, self.compute_dtype)

    def _check_mask(self, sequences, mask):
        if mask is None:
            return None
        if len(mask.shape) != 2 or any(
            m is not None and s is not None and m != s
            for m, s in zip(mask.shape, sequences.shape[:2])
        ):
            raise ValueError(
                f"{self.name}: `mask` must have shape (batch, time) = {tuple(sequences.shape[:2])}, "
                f"matching the inputs. Received mask shape {tuple(mask.shape)}."
            )
        return ops.cast(mask, "bool")

    def _check_initial_state(self, initial_state, batch_size):
        sizes = state_sizes(self.cell)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != len(sizes):
            raise ValueError(
                f"{self.name}: the cell has {len(sizes)} states of sizes {sizes} but "
                f"`initial_state` has {len(initial_state)} tensors."
            )
        checked = []
        for i, (state, size) in enumerate(zip(initial_state, sizes)):
            state = ops.convert_to_tensor(state, dtype=self.compute_dtype)
            if len(state.shape) != 2 or state.shape[-1] not in (None, size):
                raise ValueError(
                    f"{self.name}: initial state {i} must have shape (batch, {size}). "
                    f"Received {tuple(state.shape)}."
                )
            checked.append(state)
        return checked

    def _prepare_call(self, sequences, initial_state, mask):
        """Checks the inputs; returns the boolean mask and the initial states."""
        self._check_rank(sequences.shape)
        if sequences.shape[1] == 0:
            raise ValueError(f"{self.name} received a sequence with zero time steps.")
        built_features = getattr(self.cell, "input_dim", None)
        features = sequences.shape[-1]
        if built_features is not None and features is not None and features != built_features:
            raise ValueError(
                f"{self.name} was built for {built_features} input features but "
                f"received inputs with {features} features (shape {tuple(sequences.shape)})."
            )
        mask = self._check_mask(sequences, mask)
        batch_size = ops.shape(sequences)[0]
        if initial_state is not None:
            states = self._check_initial_state(initial_state, batch_size)
        elif self.stateful:
            # Copies: the variables are assigned below, and torch autograd rejects
            # an in-place update of a tensor the loop still needs.
            states = [ops.copy(s) for s in self.states]
        else:
            states = self.get_initial_state(batch_size)
        return mask, states

    def _finish_call(self, last_output, outputs, states):
        """Keeps the states of a stateful layer; packs the layer's outputs."""
        if self.stateful:
            for variable, state in zip(self.states, states):
                variable.assign(ops.cast(state, variable.dtype))
        output = outputs if self.return_sequences else last_output
        if self.return_state:
            return [output, *states]
        return output

    def call(self, sequences, initial_state=None, mask=None, training=False, constants=None):
        mask, states = self._prepare_call(sequences, initial_state, mask)
        batch_size = ops.shape(sequences)[0]

        cell_kwargs = dict(constants or {})
        if self._cell_takes_training:
            cell_kwargs["training"] = training

        cell_call = backend.cell_call_function(self.cell, sequences.dtype)

        def step(x_t, step_states):
            output, new_states = cell_call(x_t, list(step_states), **cell_kwargs)
            if not isinstance(new_states, (list, tuple)):
                new_states = [new_states]
            return output, list(new_states)

        if hasattr(self.cell, "prepare_dropout_masks"):
            self.cell.prepare_dropout_masks(sequences[:, 0, :], states[0], training)
        initial_output = ops.zeros((batch_size, self.cell.output_size), dtype=self.compute_dtype)
        try:
            result = None
            if not constants:
                # A whole-sequence kernel for plain kzoo cells where the
                # backend has one; NotImplementedError means "use the loop".
                try:
                    result = backend.fused_rnn(
                        self.cell,
                        sequences,
                        states,
                        mask=mask,
                        go_backwards=self.go_backwards,
                        training=bool(training),
                    )
                except NotImplementedError:
                    pass
            if result is None:
                result = backend.rnn(
                    step,
                    sequences,
                    states,
                    initial_output,
                    mask=mask,
                    go_backwards=self.go_backwards,
                )
        finally:
            if hasattr(self.cell, "reset_dropout_masks"):
                self.cell.reset_dropout_masks()
        last_output, outputs, states = result
        return self._finish_call(last_output, outputs, states)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time = sequences_shape[0], sequences_shape[1]
        units = self.cell.output_size
        output_shape = (batch, time, units) if self.return_sequences else (batch, units)
        if self.return_state:
            return [output_shape] + [(batch, n) for n in state_sizes(self.cell)]
        return output_shape

    def compute_mask(self, sequences, mask=None):
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(state_sizes(self.cell))
        return output_mask

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)
