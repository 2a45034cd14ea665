"""PyTorch-backend recurrent loops and fused kernels.

Generic loop: the time axis is unbound once and the outputs stacked, so the
backward pass stays linear in T (indexing `x[t]` at every step would make
each step's backward materialise a full-size input gradient). Eager torch
runs Python at every step, so the loop calls a built cell's `call` directly:
`Layer.__call__` (input conversion, autocast and name scopes, training-flag
lookup) costs more than a small cell's own arithmetic, and the enclosing RNN
layer's `__call__` has done that work for the whole sequence already.

Fused kernels: a plain kzoo LSTM, GRU (`reset_after=True`) or SimpleRNN cell
runs in ATen's multi-step kernels (`torch._VF.lstm/gru/rnn_tanh/rnn_relu`,
the functions behind `torch.nn.LSTM` etc.), with the Keras weights
rearranged into torch's layout on the fly so that gradients reach the Keras
variables. A right-padded batch runs unpacked over its full length (see
`_run_right_padded`), except a GRU in inference, which runs packed; the
outputs at padded steps are then filled in the Keras way (the last valid
output going forward, zeros before the first valid step going backward).
Other masks raise `NotImplementedError` and run the generic loop.
`Bidirectional` gets one kernel call for both directions when nothing is
padded, for a right-padded LSTM batch that starts from zero states, and for
a right-padded GRU batch in inference.

cuDNN: on CUDA tensors these ATen kernels are cuDNN's RNNs (packed batches
included). `use_cudnn=False` runs them with cuDNN disabled (ATen's own CUDA
implementation), `use_cudnn=True` refuses what cuDNN cannot compute (see
`spec.kernel_choice`).

Inputs at padded steps are replaced by zeros (not multiplied: NaN * 0 is
NaN), so NaN or Inf there reaches neither the outputs nor the gradients.
"""

import contextlib

import torch

from kzoo.backend.reference import step_with_mask
from kzoo.backend.spec import (
    check_call,
    check_dtype,
    cudnn_compatible,
    kernel_choice,
    same_config,
)


def direct_step_calls():
    return True


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False, key=None):
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


def device_type(tensor):
    return "gpu" if tensor.is_cuda else "cpu"


def _choose(spec, sequences, mask_fits):
    """`"cudnn"` or `"fused"` for one spec; `NotImplementedError` where ATen
    has no kernel for it."""
    if spec.state_mask is not None:
        raise NotImplementedError("recurrent dropout has no fused kernel")
    aten = spec.kind != "gru_v1" and mask_fits
    compatible = aten and cudnn_compatible(spec, allow_no_bias=True, allow_simple=True)
    choice = kernel_choice(spec.use_cudnn, device_type(sequences), compatible)
    if not aten:
        raise NotImplementedError("ATen has no kernel for this cell or mask")
    check_dtype(spec, sequences, choice)
    return choice


def _cudnn_context(choice, sequences):
    """cuDNN disabled around the kernel call where the layer said `use_cudnn=False`."""
    if choice == "cudnn" or not sequences.is_cuda:
        return contextlib.nullcontext()
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=False,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=cudnn.allow_tf32,
    )


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


def _zero_padding(inputs, valid):
    """Inputs with zeros at padded steps; `where`, so NaN there does not survive."""
    return torch.where(valid[..., None], inputs, torch.zeros((), dtype=inputs.dtype))


def _apply_input_dropout(specs, sequences):
    masks = [s.input_mask for s in specs]
    if all(m is None for m in masks):
        return sequences
    if len(specs) > 1:  # one input for both directions, so one mask
        raise NotImplementedError("input dropout differs between the two directions")
    return sequences * masks[0][:, None, :]


def _right_padded_lengths(mask, steps):
    """Per-row lengths of a right-padded mask, or None for another mask form."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        raise NotImplementedError("the padding check needs concrete values")
    mask = mask.bool()
    lengths = mask.sum(dim=1)
    positions = torch.arange(steps, device=mask.device)
    if not torch.equal(mask, positions[None, :] < lengths[:, None]):
        return None
    return lengths


# Pre-activation added to the LSTM input gate (minus) and forget gate (plus)
# at padded steps: sigmoid then rounds to exactly 0 and 1, so c is carried
# through the padding unchanged and no gradient leaks into it.
_HOLD = 1e6


def _hold_cell_over_padding(spec, params, inputs, valid, directions=1):
    """Appends a padding indicator feature whose weights freeze the LSTM cell."""
    units = spec.units
    hold = min(_HOLD, torch.finfo(inputs.dtype).max / 4)  # finite in half precision
    column = torch.zeros(4 * units, 1, dtype=inputs.dtype, device=inputs.device)
    column[:units] = -hold
    column[units : 2 * units] = hold
    flag = (~valid).to(inputs.dtype)[..., None]  # (batch, time, 1)
    params = list(params)
    per_direction = len(params) // directions
    for first in range(0, len(params), per_direction):  # weight_ih of each direction
        params[first] = torch.cat([params[first], column], dim=1)
    return params, torch.cat([inputs, flag], dim=-1)


# Kernels that run packed (padding skipped) in inference. Measured with
# benchmarks/rnn_speed.py (B=64, T=200, lengths 100-200, 2 CPU cores): packed
# GRU inference takes 0.87-0.98x the unmasked time, but packed LSTM 2.2-2.6x
# (torch.nn.LSTM with packing as well), so LSTMs stay unpacked.
PACKED_INFERENCE_KINDS = ("gru",)


def _run_packed(spec, params, inputs, states, lengths, bidirectional=False):
    """One kernel call over a packed right-padded batch (inference only).

    Packing skips the padded steps, which saves their time without autograd;
    its backward pass is slow on CPU, so training uses the unpacked kernel.
    Rows of length 0 run one step here; callers replace their results.
    `states`: list of `(directions, batch, h)`. Returns zero-padded outputs
    and the final states (at each row's last valid step).
    """
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        inputs, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
    )
    hx = [s[:, packed.sorted_indices] for s in states]
    hx = tuple(hx) if spec.kind == "lstm" else hx[0]
    flags = (spec.bias is not None, 1, 0.0, False, bidirectional)
    result = _kernel(spec)(packed.data, packed.batch_sizes, hx, params, *flags)
    outputs, _ = torch.nn.utils.rnn.pad_packed_sequence(
        packed._replace(data=result[0]), batch_first=True, total_length=inputs.shape[1]
    )
    return outputs, [s[:, packed.unsorted_indices] for s in result[1:]]


def _run_right_padded(spec, params, inputs, initial_states, lengths, go_backwards):
    """Runs the kernel over a right-padded batch.

    With autograd, the kernel runs unpacked over the whole padded batch
    (packed sequences are slow to differentiate on CPU): padded inputs are
    zeroed, the LSTM cell state is frozen over the padding (see `_HOLD`), and
    `h` at each row's last valid step is gathered from the outputs. Only the
    valid steps influence the results and the gradients. Without autograd
    (inference) a GRU batch is packed and the padding skipped.
    """
    batch, steps = inputs.shape[0], inputs.shape[1]
    positions = torch.arange(steps, device=inputs.device)[None, :]  # (1, time)
    lengths_col = lengths[:, None]
    valid = positions < lengths_col  # (batch, time)
    if go_backwards:
        # Reverse each row's valid part only (flax's flip_sequences).
        reverse = torch.where(valid, lengths_col - 1 - positions, positions)
        inputs = torch.gather(inputs, 1, reverse[..., None].expand_as(inputs))
    stacked_states = [s[None] for s in initial_states]
    if torch.is_grad_enabled() or spec.kind not in PACKED_INFERENCE_KINDS:
        inputs = _zero_padding(inputs, valid)
        if spec.kind == "lstm":
            params, inputs = _hold_cell_over_padding(spec, params, inputs, valid)
        outputs, final = _run(spec, params, inputs, stacked_states)
    else:
        outputs, final = _run_packed(spec, params, inputs, stacked_states, lengths)
    final = [s[0] for s in final]
    empty = (lengths == 0)[:, None]
    last_index = (lengths - 1).clamp(min=0)
    h_last = outputs[torch.arange(batch, device=inputs.device), last_index]
    h_final = torch.where(empty, initial_states[0], h_last)
    # The LSTM cell state was held over the padding (or packed): c_n is final.
    final_states = [h_final] + [
        torch.where(empty, initial, state) for initial, state in zip(initial_states[1:], final[1:])
    ]
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


def _run_bidirectional_padded(spec, params, inputs, states, lengths):
    """Both directions of a right-padded batch in one kernel call.

    Without autograd a GRU batch runs packed. Otherwise (an LSTM from zero
    initial states) the cell is frozen over the padding (see `_HOLD`): the
    backward direction reads the padding first, its cell state stays 0
    there, so `h = o * tanh(0) = 0` and it reaches each row's last valid step
    with the zero initial state, as if it had started there; no gradient
    flows through the padding. Returns each direction's `(last_output,
    outputs, final_states)` with the outputs aligned with the inputs
    (`Bidirectional` zeroes them at padded steps).
    """
    batch, steps, units = inputs.shape[0], inputs.shape[1], spec.units
    valid = torch.arange(steps, device=inputs.device)[None, :] < lengths[:, None]
    if not torch.is_grad_enabled() and spec.kind in PACKED_INFERENCE_KINDS:
        outputs, final = _run_packed(spec, params, inputs, states, lengths, bidirectional=True)
    else:
        inputs = _zero_padding(inputs, valid)
        params, inputs = _hold_cell_over_padding(spec, params, inputs, valid, directions=2)
        outputs, final = _run(spec, params, inputs, states, bidirectional=True)
    empty = (lengths == 0)[:, None]
    forward_out, backward_out = outputs[..., :units], outputs[..., units:]
    rows = torch.arange(batch, device=inputs.device)
    forward_last = forward_out[rows, (lengths - 1).clamp(min=0)]  # replaced for empty rows
    # h at each row's last valid step: gathered (the held kernel's h_n is
    # after the padding); the cell state was held or packed, so c_n is final.
    forward_final = [forward_last] + [f[0] for f in final[1:]]
    backward_final = [f[1] for f in final]
    results = []
    for direction, (out, last, finals) in enumerate(
        (
            (forward_out, forward_last, forward_final),
            (backward_out, backward_out[:, 0], backward_final),
        )
    ):
        finals = [torch.where(empty, s[direction], f) for s, f in zip(states, finals)]
        results.append((torch.where(empty, torch.zeros_like(last), last), out, finals))
    return tuple(results)


def fused_rnn(
    spec, sequences, initial_states, mask=None, go_backwards=False, training=False, key=None
):
    check_call(spec, sequences, initial_states, mask)
    steps = sequences.shape[1]
    lengths = None if mask is None else _right_padded_lengths(mask, steps)
    choice = _choose(spec, sequences, mask_fits=mask is None or lengths is not None)
    params = _params(spec)
    inputs = _apply_input_dropout([spec], sequences)
    with _cudnn_context(choice, sequences):
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
    forward_spec,
    backward_spec,
    sequences,
    forward_states,
    backward_states,
    mask=None,
    training=False,
):
    check_call(forward_spec, sequences, forward_states, mask, "forward initial state")
    check_call(backward_spec, sequences, backward_states, mask, "backward initial state")
    if not same_config(forward_spec, backward_spec) or (
        forward_spec.use_cudnn != backward_spec.use_cudnn
    ):
        raise NotImplementedError("the two directions differ in configuration")
    steps = sequences.shape[1]
    lengths = None
    if mask is not None:
        lengths = _right_padded_lengths(mask, steps)
        if lengths is None:
            raise NotImplementedError("masks other than right padding run the generic loop")
        if bool((lengths == steps).all()):
            lengths = None
    choice = _choose(forward_spec, sequences, mask_fits=True)
    _choose(backward_spec, sequences, mask_fits=True)
    if lengths is not None:
        packed = not torch.is_grad_enabled() and forward_spec.kind in PACKED_INFERENCE_KINDS
        held = forward_spec.kind == "lstm" and not any(
            bool(s.any()) for s in (*forward_states, *backward_states)
        )
        if not (packed or held):
            # The backward direction must start at each row's own end: two
            # `fused_rnn` calls (one per direction) handle that.
            raise NotImplementedError("padded batches run one direction at a time")
    params = _params(forward_spec) + _params(backward_spec)
    inputs = _apply_input_dropout([forward_spec, backward_spec], sequences)
    states = [torch.stack([f, b]) for f, b in zip(forward_states, backward_states)]
    with _cudnn_context(choice, sequences):
        if lengths is not None:
            return _run_bidirectional_padded(forward_spec, params, inputs, states, lengths)
        outputs, final = _run(forward_spec, params, inputs, states, bidirectional=True)
    units = forward_spec.units
    forward_out, backward_out = outputs[..., :units], outputs[..., units:]
    return (
        (forward_out[:, -1], forward_out, [s[0] for s in final]),
        (backward_out[:, 0], backward_out, [s[1] for s in final]),
    )
