"""PyTorch-backend recurrent loops and fused kernels.

Generic loop: Keras's torch loop slices the input with `x[t]`; the backward
pass of each slice materialises a full-size gradient, so training cost grows
with T^2. Unbinding the time axis once and stacking the outputs keeps the
backward pass linear in T.

Fused kernels: a plain kzoo LSTM, GRU (`reset_after=True`) or SimpleRNN cell
runs in ATen's multi-step kernels (`torch._VF.lstm/gru/rnn_tanh/rnn_relu`,
the functions behind `torch.nn.LSTM` etc.), with the Keras weights
rearranged into torch's layout on the fly so that gradients reach the Keras
variables. A right-padded batch runs unpacked over its full length (see
`_run_right_padded`); the outputs at padded steps are then filled in the
Keras way (the last valid output going forward, zeros before the first
valid step going backward). Other masks raise `NotImplementedError` and run
the generic loop. `Bidirectional` gets one kernel call for both directions
when nothing is padded.
"""

import torch

from kzoo.backend._plain import plain_cell, same_config
from kzoo.backend.reference import step_with_mask


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False):
    steps = torch.unbind(inputs, dim=1)
    masks = [None] * len(steps) if mask is None else torch.unbind(mask.bool(), dim=1)
    order = range(len(steps) - 1, -1, -1) if go_backwards else range(len(steps))
    states, output, outputs = initial_states, initial_output, []
    for t in order:
        output, states = step_with_mask(step_fn, steps[t], masks[t], states, output)
        outputs.append(output)
    return output, torch.stack(outputs, dim=1), states


_KERNELS = {
    "lstm": torch._VF.lstm,
    "gru": torch._VF.gru,
    "simple_tanh": torch._VF.rnn_tanh,
    "simple_relu": torch._VF.rnn_relu,
}


def _torch_cell(cell, sequences, training):
    spec = plain_cell(cell, training=training, dtype=sequences.dtype)
    if spec.kind == "gru_v1":
        raise NotImplementedError("ATen's GRU resets after the recurrent product only")
    return spec


def _kernel(spec):
    return _KERNELS[spec.kind if spec.kind != "simple" else f"simple_{spec.activation}"]


def _params(spec):
    """[weight_ih, weight_hh(, bias_ih, bias_hh)] in torch's layout."""
    w_ih, w_hh = spec.kernel.t(), spec.recurrent_kernel.t()  # (gates * h, d), (gates * h, h)
    bias = spec.bias
    if spec.kind == "gru":
        # Keras orders the GRU gates (z, r, h), torch (r, z, n).
        h = spec.units

        def swap(t):
            return torch.cat([t[h : 2 * h], t[:h], t[2 * h :]], dim=0)

        params = [swap(w_ih), swap(w_hh)]
        if bias is not None:
            params += [swap(bias[0]), swap(bias[1])]
        return params
    params = [w_ih, w_hh]
    if bias is not None:
        params += [bias, torch.zeros_like(bias)]
    return params


def _run(spec, params, inputs, states, bidirectional=False):
    """One batch-first kernel call. `states`: list of `(directions, batch, h)`."""
    hx = tuple(states) if spec.kind == "lstm" else states[0]
    flags = (spec.bias is not None, 1, 0.0, torch.is_grad_enabled(), bidirectional, True)
    result = _kernel(spec)(inputs, hx, params, *flags)
    return result[0], list(result[1:])


def _apply_input_dropout(specs, sequences):
    masks = [s.input_mask for s in specs]
    if all(m is None for m in masks):
        return sequences
    if len(specs) > 1:  # one input for both directions, so one mask
        raise NotImplementedError("input dropout differs between the two directions")
    return sequences * masks[0][:, None, :]


def _right_padded_lengths(mask, steps):
    """Per-row lengths of a right-padded mask; `NotImplementedError` otherwise."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        raise NotImplementedError("the padding check needs concrete values")
    mask = mask.bool()
    lengths = mask.sum(dim=1)
    positions = torch.arange(steps, device=mask.device)
    if not torch.equal(mask, positions[None, :] < lengths[:, None]):
        raise NotImplementedError("the mask is not right-padded")
    return lengths


# Pre-activation added to the LSTM input gate (minus) and forget gate (plus)
# at padded steps: sigmoid then rounds to exactly 0 and 1, so c is carried
# through the padding unchanged and no gradient leaks into it.
_HOLD = 1e6


def _hold_cell_over_padding(spec, params, inputs, valid):
    """Appends a padding indicator feature whose weights freeze the LSTM cell."""
    units = spec.units
    column = torch.zeros(4 * units, 1, dtype=inputs.dtype, device=inputs.device)
    column[:units] = -_HOLD
    column[units : 2 * units] = _HOLD
    flag = (~valid).to(inputs.dtype)[..., None]  # (batch, time, 1)
    return [torch.cat([params[0], column], dim=1), *params[1:]], torch.cat([inputs, flag], dim=-1)


def _run_right_padded(spec, params, inputs, initial_states, lengths, go_backwards):
    """Runs the unpacked kernel over a right-padded batch.

    Packed sequences are slow on CPU (their backward pass most of all), so the
    kernel runs over the whole padded batch: padded inputs are zeroed, the
    LSTM cell state is frozen over the padding (see `_HOLD`), and `h` at each
    row's last valid step is gathered from the outputs. Only the valid steps
    influence the results and the gradients.
    """
    batch, steps = inputs.shape[0], inputs.shape[1]
    positions = torch.arange(steps, device=inputs.device)[None, :]  # (1, time)
    lengths_col = lengths[:, None]
    valid = positions < lengths_col  # (batch, time)
    if go_backwards:
        # Reverse each row's valid part only (flax's flip_sequences).
        reverse = torch.where(valid, lengths_col - 1 - positions, positions)
        inputs = torch.gather(inputs, 1, reverse[..., None].expand_as(inputs))
    inputs = inputs * valid[..., None].to(inputs.dtype)
    if spec.kind == "lstm":
        params, inputs = _hold_cell_over_padding(spec, params, inputs, valid)
    outputs, final = _run(spec, params, inputs, [s[None] for s in initial_states])
    empty = (lengths == 0)[:, None]
    last_index = (lengths - 1).clamp(min=0)
    h_last = outputs[torch.arange(batch, device=inputs.device), last_index]
    h_final = torch.where(empty, initial_states[0], h_last)
    final_states = [h_final] + [s[0] for s in final[1:]]  # c was held: c_n is final
    last_output = torch.where(empty, torch.zeros_like(h_last), h_last)
    if go_backwards:
        # The padding is read first going backwards: zero outputs there, then
        # the outputs of the reversed valid part.
        shift = steps - lengths_col
        source = (positions - shift).clamp(min=0)
        shifted = torch.gather(outputs, 1, source[..., None].expand_as(outputs))
        outputs = torch.where((positions >= shift)[..., None], shifted, torch.zeros_like(shifted))
    else:
        outputs = torch.where(valid[..., None], outputs, last_output[:, None, :])
    return last_output, outputs, final_states


def fused_rnn(cell, sequences, initial_states, mask=None, go_backwards=False, training=False):
    spec = _torch_cell(cell, sequences, training)
    params = _params(spec)
    inputs = _apply_input_dropout([spec], sequences)
    steps = inputs.shape[1]
    lengths = None if mask is None else _right_padded_lengths(mask, steps)
    if lengths is None or bool((lengths == steps).all()):
        if go_backwards:
            inputs = torch.flip(inputs, dims=[1])
        outputs, final = _run(spec, params, inputs, [s[None] for s in initial_states])
        return outputs[:, -1], outputs, [s[0] for s in final]
    if spec.kind == "simple" and spec.activation == "relu":
        # Unbounded states over the padding could overflow and poison the
        # backward pass with inf * 0.
        raise NotImplementedError("masked relu SimpleRNN runs the generic loop")
    return _run_right_padded(spec, params, inputs, initial_states, lengths, go_backwards)


def fused_bidirectional_rnn(
    forward_cell,
    backward_cell,
    sequences,
    forward_states,
    backward_states,
    mask=None,
    training=False,
):
    forward_spec = _torch_cell(forward_cell, sequences, training)
    backward_spec = _torch_cell(backward_cell, sequences, training)
    if not same_config(forward_spec, backward_spec):
        raise NotImplementedError("the two directions differ in configuration")
    steps = sequences.shape[1]
    if mask is not None:
        lengths = _right_padded_lengths(mask, steps)
        if not bool((lengths == steps).all()):
            # The backward direction must start at each row's own end: two
            # `fused_rnn` calls (one per direction) handle that.
            raise NotImplementedError("padded batches run one direction at a time")
    params = _params(forward_spec) + _params(backward_spec)
    inputs = _apply_input_dropout([forward_spec, backward_spec], sequences)
    states = [torch.stack([f, b]) for f, b in zip(forward_states, backward_states)]
    outputs, final = _run(forward_spec, params, inputs, states, bidirectional=True)
    units = forward_spec.units
    forward_out, backward_out = outputs[..., :units], outputs[..., units:]
    return (
        (forward_out[:, -1], forward_out, [s[0] for s in final]),
        (backward_out[:, 0], backward_out, [s[1] for s in final]),
    )
