"""The recurrent layer that runs any cell over time."""

import inspect

import keras
import numpy as np
from keras import ops
from keras.backend import standardize_dtype
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from kzoo import backend
from kzoo.layers.cell_base import RecurrentCell
from kzoo.layers.stacked_cells import (
    StackedRNNCells,
    initial_states,
    output_size,
    state_structure,
)
from kzoo.utils.serialization import register_serializable
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import check_choice, check_mask_dtype

USE_CUDNN = ("auto", True, False)
_STACKS = (StackedRNNCells, keras.layers.StackedRNNCells)


@register_serializable
class RNN(keras.layers.Layer):
    """Runs a recurrent cell over the time axis of a sequence.

    A drop-in for `keras.layers.RNN`. Any cell works that has `state_size`
    (an int, or a list of ints or of nested lists for stacked cells) and
    `call(inputs, states[, training])`; `output_size` and
    `get_initial_state(batch_size)` are optional (the first state size and
    zeros are used without them). The kzoo cells, the `keras.layers` cells
    and user-written ones all work, including cells that draw their dropout
    masks through Keras's `DropoutRNNCell` protocol: masks are drawn before
    the loop and cleared after it, so every call gets fresh ones. A list of
    cells is stacked with `StackedRNNCells`, whose states stay nested per
    cell as in Keras.

    Masking follows `keras.layers.RNN`: at a masked step the state is kept
    and the previous output is repeated (zeros before the first valid step),
    or zeros are output with `zero_output_for_mask=True`. Masks come from a
    masking layer such as `Embedding(mask_zero=True)` or from the `mask`
    argument.

    Mixed precision: the loop runs in the cell's compute dtype and the
    outputs and states come back in the layer's.

    Args:
        cell: a cell or a list of cells.
        return_sequences: return the output of every step instead of the last.
        return_state: also return the final states (as separate outputs).
        go_backwards: process the sequence from its end; the returned
            sequence is in processing (reversed) order, as in Keras.
        stateful: keep the final states of each batch as the initial states
            of the next; needs a fixed batch size. Reset with
            `reset_state()` (or its alias `reset_states()`).
        unroll: accepted for Keras compatibility. kzoo's loops are compiled
            (`lax.scan`, `tf.while_loop`) or run eagerly step by step, which
            gives the same numbers; as in Keras, `unroll=True` needs a known
            number of time steps.
        zero_output_for_mask: output zeros at masked steps instead of
            repeating the previous output.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        sequences: `(batch, time, features)` tensor.
        initial_state: optional list of `(batch, n)` tensors, one per state,
            nested per cell for stacked cells (a flat list is accepted too).
        mask: optional `(batch, time)` boolean tensor, True for valid steps.
        training: whether dropout is active.
        constants: optional dict of tensors passed unchanged as keyword
            arguments to every `cell.call` (for example attention memory).

    Returns:
        `(batch, output_size)` or, with `return_sequences`,
        `(batch, time, output_size)`; with `return_state`, followed by the
        final states (one entry per state, nested per cell when stacked).

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
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        for attribute in ("call", "state_size"):
            if not hasattr(cell, attribute):
                raise ValueError(
                    f"`cell` must have a `{attribute}` attribute (see the cell contract "
                    f"in kzoo.layers.RNN). Received: cell={cell!r}"
                )
        state_structure(cell)  # validates state_size
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.supports_masking = True
        self.states = None
        self._cell_takes_training = "training" in inspect.signature(cell.call).parameters

    def __call__(self, *args, **kwargs):
        check_mask_dtype(kwargs.get("mask"), self.name)
        return super().__call__(*args, **kwargs)

    @property
    def state_size(self):
        """The cell's state sizes as a list (nested per cell when stacked)."""
        return state_structure(self.cell)

    def _flat_sizes(self):
        # Fixed once the cell is built; cached because eager torch reads it
        # at every call.
        cache = untracked_cache(self, "flat_state_sizes")
        sizes = cache.get("sizes")
        if sizes is None:
            sizes = tuple(keras.tree.flatten(self.state_size))
            if getattr(self.cell, "built", False):
                cache.put("sizes", sizes)
        return sizes

    def build(self, sequences_shape, initial_state_shape=None):
        self._check_rank(sequences_shape)
        self._check_unroll(sequences_shape)
        if isinstance(self.cell, keras.layers.Layer) and not self.cell.built:
            self.cell.build((sequences_shape[0], *sequences_shape[2:]))
        if self.stateful and self.states is None:
            batch = sequences_shape[0]
            if batch is None:
                raise ValueError(
                    "A stateful RNN needs a fixed batch size: give the input layer "
                    "`batch_shape=(batch, time, features)` (or `batch_size=`). "
                    f"Received: sequences.shape={tuple(sequences_shape)}"
                )
            variables = [
                self.add_weight(
                    name=f"state_{i}",
                    shape=(batch, n),
                    initializer="zeros",
                    trainable=False,
                )
                for i, n in enumerate(self._flat_sizes())
            ]
            self.states = keras.tree.pack_sequence_as(self.state_size, variables)

    def _check_unroll(self, shape):
        if self.unroll and shape[1] is None:
            raise ValueError(
                f"{self.name}: `unroll=True` needs a known number of time steps; give the "
                "input layer a `shape` with the time dimension. Received: "
                f"sequences.shape={tuple(shape)}"
            )

    def _check_rank(self, shape):
        if len(shape) != 3:
            raise ValueError(
                f"{self.name} expects inputs of rank 3 (batch, time, features). "
                f"Received shape {tuple(shape)}."
            )

    def reset_state(self):
        """Sets the kept states of a stateful layer back to zeros."""
        for state in keras.tree.flatten(self.states or []):
            state.assign(ops.zeros(state.shape, dtype=state.dtype))

    def reset_states(self):
        """Alias of `reset_state()` (Keras keeps both names)."""
        self.reset_state()

    def get_initial_state(self, batch_size):
        return initial_states(self.cell, batch_size, self._cell_dtype())

    def _cell_dtype(self):
        return getattr(self.cell, "compute_dtype", None) or self.compute_dtype

    # -- checks that run before any backend kernel ------------------------

    def _check_mask(self, sequences, mask):
        if mask is None:
            return None
        if not hasattr(mask, "dtype") or not hasattr(mask, "shape"):
            mask = np.asarray(mask)
        check_mask_dtype(mask, self.name)
        shape = tuple(mask.shape)
        expected = tuple(sequences.shape[:2])
        if len(shape) != 2 or any(
            m is not None and s is not None and m != s for m, s in zip(shape, expected)
        ):
            raise ValueError(
                f"{self.name}: `mask` must have shape (batch, time) = {expected}, matching "
                f"the inputs of shape {tuple(sequences.shape)}. Received mask shape {shape}."
            )
        return _cast(mask, "bool")

    def _check_states(self, states, sequences, what):
        """Flat list of `states` in the cell's dtype, checked against the cell."""
        sizes = self._flat_sizes()
        if not isinstance(states, (list, tuple)):
            states = [states]
        flat = keras.tree.flatten(list(states))
        if len(flat) != len(sizes):
            raise ValueError(
                f"{self.name}: the cell has {len(sizes)} state(s) of sizes {self.state_size}, "
                f"but `{what}` has {len(flat)} tensor(s)."
            )
        batch = sequences.shape[0]
        checked = []
        for i, (state, size) in enumerate(zip(flat, sizes)):
            if state is None:
                raise ValueError(f"{self.name}: `{what}` {i} is None.")
            state = ops.convert_to_tensor(state)
            shape = tuple(state.shape)
            if (
                len(shape) != 2
                or shape[-1] not in (None, size)
                or (batch is not None and shape[0] is not None and shape[0] != batch)
            ):
                raise ValueError(
                    f"{self.name}: `{what}` {i} must have shape (batch, {size}) = "
                    f"({batch}, {size}), matching the inputs of shape "
                    f"{tuple(sequences.shape)}. Received shape {shape}."
                )
            checked.append(_cast(state, self._cell_dtype()))
        return checked

    def _check_sequences(self, sequences):
        self._check_rank(sequences.shape)
        if sequences.shape[1] == 0:
            raise ValueError(f"{self.name} received a sequence with zero time steps.")
        self._check_unroll(sequences.shape)
        built_features = getattr(self.cell, "input_dim", None)
        features = sequences.shape[-1]
        if built_features is not None and features is not None and features != built_features:
            raise ValueError(
                f"{self.name} was built for {built_features} input features but "
                f"received inputs with {features} features (shape {tuple(sequences.shape)})."
            )
        if self.stateful and self.states is not None:
            expected = keras.tree.flatten(self.states)[0].shape[0]
            batch = sequences.shape[0]
            if batch is not None and batch != expected:
                raise ValueError(
                    f"{self.name} is stateful and was built for batch size {expected}, "
                    f"but received inputs with batch size {batch} (shape "
                    f"{tuple(sequences.shape)}). Build a new layer for the other batch size, "
                    "or feed batches of the built size."
                )

    def _prepare_call(self, sequences, initial_state, mask):
        """Checks the inputs; returns the boolean mask and the flat initial states."""
        self._check_sequences(sequences)
        mask = self._check_mask(sequences, mask)
        if initial_state is not None:
            states = self._check_states(initial_state, sequences, "initial_state")
        elif self.stateful:
            # Copies: the variables are assigned after the loop, and torch
            # autograd rejects an in-place update of a tensor the loop needs.
            states = [
                ops.cast(ops.copy(s), self._cell_dtype()) for s in keras.tree.flatten(self.states)
            ]
        elif self._makes_own_initial_state():
            # Zeros of (batch, size) in the cell's dtype, made by kzoo itself.
            states = self.get_initial_state(ops.shape(sequences)[0])
            if not all(ops.is_tensor(s) for s in states):
                states = keras.tree.flatten(states)
        else:
            states = self._check_states(
                self.get_initial_state(ops.shape(sequences)[0]),
                sequences,
                "cell.get_initial_state()",
            )
        return mask, states

    def _makes_own_initial_state(self):
        """Whether the initial states come from kzoo's own code (a kzoo cell's
        `get_initial_state`, or zeros for a cell without one), which needs no
        check; a user cell's `get_initial_state` is checked."""
        method = getattr(type(self.cell), "get_initial_state", None)
        return method is None or method is RecurrentCell.get_initial_state

    def _finish_call(self, last_output, outputs, states):
        """Keeps the states of a stateful layer; packs the layer's outputs."""
        dtype = self.compute_dtype
        last_output = _cast(last_output, dtype)
        outputs = _cast(outputs, dtype)
        states = [_cast(s, dtype) for s in states]
        if self.stateful:
            for variable, state in zip(keras.tree.flatten(self.states), states):
                variable.assign(ops.cast(state, variable.dtype))
        output = outputs if self.return_sequences else last_output
        if self.return_state:
            return [output, *keras.tree.pack_sequence_as(self.state_size, states)]
        return output

    # -- the loop -------------------------------------------------------

    def call(self, sequences, initial_state=None, mask=None, training=False, constants=None):
        mask, states = self._prepare_call(sequences, initial_state, mask)
        sequences = _cast(sequences, self._cell_dtype())
        _draw_dropout_masks(self.cell, sequences[:, 0, :], states, training)
        try:
            last_output, outputs, states = self._run_loop(
                sequences, states, mask, training, constants
            )
        finally:
            _clear_dropout_masks(self.cell)
        if self.zero_output_for_mask and mask is not None:
            valid = ops.flip(mask, axis=1) if self.go_backwards else mask
            outputs = ops.where(valid[:, :, None], outputs, ops.zeros_like(outputs))
            last_output = outputs[:, -1]
        return self._finish_call(last_output, outputs, states)

    def _run_loop(self, sequences, states, mask, training, constants):
        """Runs the cell over time through `kzoo.backend`.

        Args:
            sequences: `(batch, time, features)` in the cell's compute dtype.
            states: flat list of `(batch, n)` states, in the cell's dtype.
            mask: `(batch, time)` boolean tensor or None.
            training: the training flag.
            constants: dict of keyword arguments for every cell call, or None.

        Returns:
            `(last_output, outputs, flat_final_states)`.
        """
        batch_size = ops.shape(sequences)[0]
        structure = self.state_size
        cell_kwargs = dict(constants or {})
        if self._cell_takes_training:
            cell_kwargs["training"] = training

        cell_call = self.cell
        if (
            backend.direct_step_calls()
            and isinstance(self.cell, keras.layers.Layer)
            and self.cell.built
            and self.cell.compute_dtype == self.cell.variable_dtype == sequences.dtype
        ):
            # Skips Layer.__call__'s per-step bookkeeping where the backend
            # says it costs more than the cell's arithmetic (eager torch).
            cell_call = self.cell.call

        # One state list per cell when stacked; a flat list needs no packing
        # (the common case, kept cheap: eager torch runs this at every step).
        flat = all(isinstance(size, int) for size in structure)

        def step(x_t, step_states):
            if flat:
                output, new_states = cell_call(x_t, list(step_states), **cell_kwargs)
                if isinstance(new_states, (list, tuple)):
                    return output, list(new_states)
                return output, [new_states]
            nested = keras.tree.pack_sequence_as(structure, list(step_states))
            output, new_states = cell_call(x_t, nested, **cell_kwargs)
            return output, keras.tree.flatten(new_states)

        if hasattr(self.cell, "prepare_dropout_masks"):
            self.cell.prepare_dropout_masks(sequences[:, 0, :], states[0], training)
        try:
            spec = None if constants else self._fused_spec(training)
            self._check_cudnn_possible(spec)
            if spec is not None:
                # A whole-sequence kernel where the backend has one;
                # NotImplementedError means "use the loop".
                try:
                    return backend.fused_rnn(
                        spec,
                        sequences,
                        states,
                        mask=mask,
                        go_backwards=self.go_backwards,
                        training=bool(training),
                        key=id(self),
                    )
                except NotImplementedError:
                    pass
            initial_output = ops.zeros(
                (batch_size, output_size(self.cell)), dtype=self._cell_dtype()
            )
            return backend.rnn(
                step,
                sequences,
                states,
                initial_output,
                mask=mask,
                go_backwards=self.go_backwards,
                key=id(self),
            )
        finally:
            if hasattr(self.cell, "reset_dropout_masks"):
                self.cell.reset_dropout_masks()

    def _fused_spec(self, training):
        """The cell as a `kzoo.backend.CellSpec` for a fused kernel, or None.

        Cells that a fused kernel reproduces describe themselves
        (`cell.fused_spec(training, use_cudnn)`); any other cell runs the
        generic loop.
        """
        describe = getattr(self.cell, "fused_spec", None)
        if describe is None:
            return None
        return describe(training=bool(training), use_cudnn=getattr(self, "use_cudnn", "auto"))

    def _check_cudnn_possible(self, spec):
        if spec is None and getattr(self, "use_cudnn", "auto") is True:
            # As keras.layers.LSTM/GRU: True insists on cuDNN, and no cuDNN
            # kernel computes this cell (e.g. recurrent dropout, layer norm).
            raise ValueError(
                f"{self.name}: use_cudnn=True was specified, but cuDNN cannot run this "
                "layer's configuration (recurrent dropout while training, layer norm or "
                "another activation). Pass use_cudnn='auto' to fall back to a non-cuDNN "
                "implementation."
            )

    def fused_call_inputs(self, sequences, initial_state=None, mask=None, training=False):
        """What a whole-sequence kernel needs to run a call of this layer.

        For wrappers that run several layers in one backend call
        (`Bidirectional`): the inputs are checked as `call` checks them.

        Returns:
            `(spec, sequences, mask, states)`: the cell's `CellSpec`, the
            sequences in the cell's dtype, the boolean mask (or None) and the
            flat initial states; or None when no fused kernel runs this cell.
        """
        mask, states = self._prepare_call(sequences, initial_state, mask)
        spec = self._fused_spec(training)
        if spec is None:
            return None
        return spec, _cast(sequences, self._cell_dtype()), mask, states

    def fused_call_outputs(self, last_output, outputs, states):
        """This layer's call results from a kernel's `(last_output, outputs,
        final_states)`; a stateful layer keeps the states."""
        return self._finish_call(last_output, outputs, states)

    # -- shapes, masks, config ------------------------------------------

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time = sequences_shape[0], sequences_shape[1]
        units = output_size(self.cell)
        output_shape = (batch, time, units) if self.return_sequences else (batch, units)
        if self.return_state:
            states = keras.tree.map_structure(lambda n: (batch, n), self.state_size)
            return [output_shape, *states]
        return output_shape

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(
            config["cell"], custom_objects=custom_objects
        )
        return cls(**config)


def _cast(x, dtype):
    # `ops.cast` converts even when nothing changes; eager torch pays that
    # at every call.
    if standardize_dtype(getattr(x, "dtype", None)) == dtype:
        return x
    return ops.cast(x, dtype)


def check_use_cudnn(use_cudnn):
    """`use_cudnn` as Keras takes it: "auto", True or False."""
    if not any(use_cudnn is choice or use_cudnn == choice for choice in USE_CUDNN):
        check_choice(use_cudnn, USE_CUDNN, "use_cudnn")
    return use_cudnn


def _draw_dropout_masks(cell, step_inputs, states, training):
    """Draws the masks of cells on Keras's `DropoutRNNCell` protocol.

    Drawn once before the loop so that the loop itself draws no random
    numbers (a traced loop would leak them on JAX); cleared after the call
    by `_clear_dropout_masks`, so the next call draws fresh ones.
    """
    if not training:
        return
    if isinstance(cell, _STACKS):
        x = step_inputs
        offset = 0
        for inner in cell.cells:
            n = len(keras.tree.flatten(state_structure(inner)))
            _draw_dropout_masks(inner, x, states[offset : offset + n], training)
            offset += n
            x = ops.zeros((ops.shape(x)[0], output_size(inner)), dtype=x.dtype)
        return
    if isinstance(cell, DropoutRNNCell):
        cell.get_dropout_mask(step_inputs)
        cell.get_recurrent_dropout_mask(states[0])


def _clear_dropout_masks(cell):
    if isinstance(cell, _STACKS):
        for inner in cell.cells:
            _clear_dropout_masks(inner)
    elif isinstance(cell, DropoutRNNCell):
        cell.reset_dropout_mask()
        cell.reset_recurrent_dropout_mask()
