"""Backend-independent recurrent loops written with `keras.ops` only."""

import keras
from keras import ops


def cell_call_function(cell, dtype):
    """The callable that runs one step of `cell`: the layer itself."""
    return cell


def step_with_mask(step_fn, x_t, mask_t, states, prev_output):
    """Runs one step; where `mask_t` is False the state and output carry over."""
    output, new_states = step_fn(x_t, states)
    if mask_t is None:
        return output, new_states
    keep = ops.expand_dims(mask_t, -1)  # (batch, 1)
    new_states = keras.tree.map_structure(
        lambda new, old: ops.where(keep, new, old), new_states, states
    )
    return ops.where(keep, output, prev_output), new_states


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False):
    """Runs `step_fn` over the time axis of `inputs`.

    Args:
        step_fn: `(x_t, states) -> (output_t, new_states)`; `states` is the
            (possibly nested) structure of `initial_states`.
        inputs: `(batch, time, features)` tensor.
        initial_states: nested structure of `(batch, n)` tensors.
        initial_output: `(batch, output_size)` tensor returned for masked
            steps before the first valid one (zeros, as Keras does).
        mask: optional `(batch, time)` boolean tensor. At a masked step the
            state is kept and the previous output repeated.
        go_backwards: process the sequence from the last step to the first;
            the returned outputs are in processing order, as in Keras.

    Returns:
        `(last_output, outputs, final_states)` with outputs
        `(batch, time, output_size)`.
    """
    xs = ops.transpose(inputs, (1, 0, 2))  # (time, batch, features)
    ms = None if mask is None else ops.transpose(ops.cast(mask, "bool"), (1, 0))
    if go_backwards:
        xs = ops.flip(xs, axis=0)
        ms = None if ms is None else ops.flip(ms, axis=0)

    def body(carry, step_in):
        states, prev_output = carry
        x_t, m_t = step_in if ms is not None else (step_in, None)
        output, new_states = step_with_mask(step_fn, x_t, m_t, states, prev_output)
        carry = (new_states, output)
        # Keras's TensorFlow `scan` needs the per-step outputs to have the
        # structure of the carry, so the whole carry is stacked here; the
        # backend modules stack only the outputs.
        return carry, carry

    scan_in = (xs, ms) if ms is not None else xs
    (final_states, last_output), (_, outputs) = ops.scan(
        body, (initial_states, initial_output), scan_in
    )
    return last_output, ops.transpose(outputs, (1, 0, 2)), final_states


def fused_rnn(cell, sequences, initial_states, mask=None, go_backwards=False, training=False):
    """Runs a plain kzoo cell over a whole sequence with a fused kernel.

    Backends implement this for `kzoo.layers.LSTMCell`, `GRUCell` and
    `SimpleRNNCell` without layer norm, recurrent dropout (while training)
    or subclassing; anything else raises `NotImplementedError` and the
    caller runs `rnn` with the cell's step function instead. The results are
    those of `rnn`: masked steps keep the state and repeat the previous
    output, `go_backwards` outputs are in processing order, and the cell's
    input dropout mask (drawn once per sequence before the call, see
    `RecurrentDropoutMixin`) is applied to every step.

    Args:
        cell: the cell whose weights are used.
        sequences: `(batch, time, features)`.
        initial_states: list of `(batch, units)` tensors.
        mask: optional `(batch, time)` boolean tensor.
        go_backwards: process the sequence from its end.
        training: whether dropout is active.

    Returns:
        `(last_output, outputs, final_states)` as `rnn` returns them.
    """
    raise NotImplementedError("the reference backend has no fused recurrent kernel")


def fused_bidirectional_rnn(
    forward_cell,
    backward_cell,
    sequences,
    forward_states,
    backward_states,
    mask=None,
    training=False,
):
    """Both directions of a bidirectional layer in one fused call.

    Same conditions as `fused_rnn` for both cells, which must be of the same
    kind and configuration. The forward cell reads the sequence from its
    start, the backward one from its end.

    Returns:
        `((last, outputs, states), (last, outputs, states))` for the forward
        and the backward direction. Unlike `fused_rnn` with
        `go_backwards=True`, the backward outputs are aligned with the
        inputs: step `t` is the output after reading input step `t`.
    """
    raise NotImplementedError("the reference backend has no fused bidirectional kernel")
