"""Backend-independent recurrent loops written with `keras.ops` only."""

import keras
from keras import ops


def direct_step_calls():
    """Whether the generic loop should call a built cell's `call` directly.

    False: the loop calls the cell layer (`Layer.__call__` casts inputs for
    mixed precision and tracks the training flag). A backend returns True
    where that bookkeeping costs more per step than it is worth (eager torch);
    the layer then calls `cell.call` when the cell is built and its dtypes
    match the inputs'.
    """
    return False


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


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False, key=None):
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
        key: identifies the calling layer to lowering contexts; unused here.

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


def fused_rnn(
    spec, sequences, initial_states, mask=None, go_backwards=False, training=False, key=None
):
    """Runs a plain cell over a whole sequence with a fused kernel.

    Backends implement this for the cells a `CellSpec` describes (LSTM, GRU
    in both reset variants, SimpleRNN with tanh or relu); a spec they cannot
    run (recurrent dropout, a dtype without kernel) raises
    `NotImplementedError` and the caller runs `rnn` with the cell's step
    function instead. The results are those of `rnn`: masked steps keep the
    state and repeat the previous output (inputs at masked steps do not
    reach the results, also when they are NaN), `go_backwards` outputs are
    in processing order, and `spec.input_mask` (drawn once per sequence by
    the layer) multiplies the inputs of every step. Shapes are checked
    before any kernel runs (`ValueError` on a state of the wrong batch or
    size). With a GPU, LSTM and GRU specs run cuDNN as `spec.use_cudnn`
    allows (see `kzoo.backend.spec.kernel_choice`).

    Args:
        spec: a `kzoo.backend.CellSpec`.
        sequences: `(batch, time, features)`.
        initial_states: list of `(batch, units)` tensors.
        mask: optional `(batch, time)` boolean tensor.
        go_backwards: process the sequence from its end.
        training: whether gradients will be asked for (dropout is in the spec).
        key: identifies the calling layer to lowering contexts.

    Returns:
        `(last_output, outputs, final_states)` as `rnn` returns them.
    """
    raise NotImplementedError("the reference backend has no fused recurrent kernel")


def fused_bidirectional_rnn(
    forward_spec,
    backward_spec,
    sequences,
    forward_states,
    backward_states,
    mask=None,
    training=False,
):
    """Both directions of a bidirectional layer in one fused call.

    Same conditions as `fused_rnn` for both specs, which must be of the same
    kind and configuration. The forward cell reads the sequence from its
    start, the backward one from its end.

    Returns:
        `((last, outputs, states), (last, outputs, states))` for the forward
        and the backward direction. Unlike `fused_rnn` with
        `go_backwards=True`, the backward outputs are aligned with the
        inputs: step `t` is the output after reading input step `t`.
    """
    raise NotImplementedError("the reference backend has no fused bidirectional kernel")
