"""JAX-backend recurrent loops.

Generic loop: one `lax.scan` that stacks only the outputs.

Fused kernels: a plain kzoo cell runs in a `lax.scan` over its own
equations (`_fused_math`) under a `jax.custom_vjp` whose backward pass is a
second scan plus a few large matrix products for the weight gradients.
Masks of any pattern are handled inside the scan with `where` on the states,
so padded batches give exactly the reference results.

On XLA CPU, hoisting the input projection `x W` out of the loop was slower
in our measurements (as was `unroll=2`, and running both directions of a
bidirectional layer as one `vmap`-ed scan), so the loop multiplies `x_t W`
at every step and `Bidirectional` makes two fused calls.

cuDNN: on a GPU, an unmasked LSTM with bias runs `jax.experimental.rnn.lstm`
(cuDNN's LSTM, where the installed JAX has it), as Keras's JAX backend does;
GRUs, SimpleRNNs and masked batches run the scan (JAX has no other cuDNN RNN,
and a mask's form is not known while tracing).
"""

import functools

import jax
import jax.numpy as jnp

from kzoo.backend import _fused_math
from kzoo.backend.reference import step_with_mask
from kzoo.backend.spec import check_call, check_dtype, cudnn_compatible, kernel_choice

try:
    from jax.experimental import rnn as _jax_rnn
except ImportError:  # an older or trimmed JAX: the scan runs everywhere
    _jax_rnn = None


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False, key=None):
    xs = jnp.swapaxes(inputs, 0, 1)  # (time, batch, features)
    ms = None if mask is None else jnp.swapaxes(mask.astype(bool), 0, 1)

    def body(carry, step_in):
        states, prev_output = carry
        x_t, m_t = step_in
        output, new_states = step_with_mask(step_fn, x_t, m_t, states, prev_output)
        return (new_states, output), output

    (states, last_output), outputs = jax.lax.scan(
        body,
        (initial_states, initial_output),
        (xs, ms),
        reverse=False if not go_backwards else True,
    )
    if go_backwards:
        outputs = jnp.flip(outputs, axis=0)  # processing order, as Keras returns it
    return last_output, jnp.swapaxes(outputs, 0, 1), states


def _forward_scan(math, p, xs, ms, init, keep=False):
    """Outputs `(time, batch, h)` and final states; with `keep`, also every
    step's states and saved activations for the backward pass."""

    def body(states, step_in):
        x_t, m_t = step_in
        new_states, saved = math.forward(p, x_t, states)
        if m_t is not None:
            new_states = tuple(jnp.where(m_t, n, s) for n, s in zip(new_states, states))
        return new_states, ((new_states, saved) if keep else new_states[0])

    finals, stacked = jax.lax.scan(body, tuple(init), (xs, ms))
    if keep:
        stacks, saved = stacked
        return (stacks[0], finals), (stacks, saved)
    return stacked, finals


@functools.cache
def _fused_core(math):
    """`core(w, xs, ms, init) -> (outputs, final_states)` with a hand-written VJP."""

    @jax.custom_vjp
    def core(w, xs, ms, init):
        return _forward_scan(math, math.prepare(w), xs, ms, init)

    def core_fwd(w, xs, ms, init):
        outputs, (stacks, saved) = _forward_scan(math, math.prepare(w), xs, ms, init, keep=True)
        return outputs, (w, xs, ms, init, stacks, saved)

    def core_bwd(residuals, cotangents):
        w, xs, ms, init, stacks, saved = residuals
        d_outputs, d_finals = cotangents
        p = math.prepare(w)
        prev = tuple(
            jnp.concatenate([s0[None], s[:-1]], axis=0) for s0, s in zip(init, stacks)
        )  # the states each step started from

        def body(carry, step_in):
            d_out, saved_t, states_t, prev_t, m_t = step_in
            d = (carry[0] + d_out,) + tuple(carry[1:])
            if m_t is not None:
                keep = m_t.astype(xs.dtype)
                d_new = tuple(g * keep for g in d)
            else:
                d_new = d
            d_prev, grads_t = math.backward(p, d_new, saved_t, states_t, prev_t)
            if m_t is not None:  # a skipped step passes its gradient through
                d_prev = tuple(q + g * (1.0 - keep) for q, g in zip(d_prev, d))
            return d_prev, grads_t

        d_init, grads = jax.lax.scan(
            body, tuple(d_finals), (d_outputs, saved, stacks, prev, ms), reverse=True
        )
        d_kernel, d_recurrent, d_bias, dxs = math.weight_grads(w, xs, prev[0], saved, grads)
        d_ms = None if ms is None else jnp.zeros_like(ms)
        return (d_kernel, d_recurrent, d_bias), dxs, d_ms, d_init

    core.defvjp(core_fwd, core_bwd)
    return core


def _time_major_mask(mask, go_backwards):
    ms = jnp.swapaxes(mask.astype(bool), 0, 1)[..., None]  # (time, batch, 1)
    return jnp.flip(ms, axis=0) if go_backwards else ms


def _run_plain(spec, sequences, initial_states, mask, go_backwards):
    math = _fused_math.cell_math(spec)
    w = _fused_math.weights_with_bias(spec)
    xs = jnp.swapaxes(sequences, 0, 1)  # (time, batch, features)
    if spec.input_mask is not None:
        xs = xs * spec.input_mask[None]
    if go_backwards:
        xs = jnp.flip(xs, axis=0)
    ms = None if mask is None else _time_major_mask(mask, go_backwards)
    if ms is not None:
        # Inputs at masked steps do not reach the results, not even NaN/Inf
        # through the gradient (0 * NaN).
        xs = jnp.where(ms, xs, jnp.zeros_like(xs))
    outputs, final_states = _fused_core(math)(w, xs, ms, tuple(initial_states))
    if ms is not None:
        # Before a row's first valid step the output is zeros, not the state.
        seen = jnp.cumsum(ms.astype(jnp.int32), axis=0) > 0
        outputs = jnp.where(seen, outputs, jnp.zeros_like(outputs))
    return outputs[-1], jnp.swapaxes(outputs, 0, 1), list(final_states)


def device_type():
    """`"gpu"` or `"cpu"` (JAX places arrays on its default backend)."""
    return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"


def cudnn_weights(spec):
    """The flat weight vector of `jax.experimental.rnn.lstm` for an LSTM spec:
    `W_ih (4h, d)`, `W_hh (4h, h)`, `b_ih`, `b_hh` (zeros), gates i, f, g, o as
    Keras's i, f, c, o."""
    bias = spec.bias if spec.bias is not None else jnp.zeros((4 * spec.units,), spec.kernel.dtype)
    parts = [spec.kernel.T, spec.recurrent_kernel.T, bias, jnp.zeros_like(bias)]
    return jnp.concatenate([jnp.ravel(p) for p in parts])


def run_cudnn_lstm(spec, sequences, initial_states, go_backwards, lstm=None):
    """An unmasked LSTM on cuDNN; `lstm` defaults to `jax.experimental.rnn.lstm`
    (tests pass a CPU implementation with its signature)."""
    lstm = lstm if lstm is not None else _jax_rnn.lstm
    xs = sequences
    if spec.input_mask is not None:
        xs = xs * spec.input_mask[:, None, :]
    if go_backwards:
        xs = jnp.flip(xs, axis=1)
    batch = xs.shape[0]
    h0, c0 = (s[None] for s in initial_states)
    outputs, h, c = lstm(
        xs,
        h0,
        c0,
        cudnn_weights(spec),
        jnp.full((batch,), xs.shape[1], dtype=jnp.int32),
        input_size=spec.kernel.shape[0],
        hidden_size=spec.units,
        num_layers=1,
        dropout=0.0,
        bidirectional=False,
    )
    return outputs[:, -1], outputs, [h[0], c[0]]


def fused_rnn(
    spec, sequences, initial_states, mask=None, go_backwards=False, training=False, key=None
):
    check_call(spec, sequences, initial_states, mask)
    if spec.state_mask is not None:
        raise NotImplementedError("recurrent dropout has no fused kernel")
    compatible = (
        _jax_rnn is not None and spec.kind == "lstm" and mask is None and cudnn_compatible(spec)
    )
    choice = kernel_choice(spec.use_cudnn, device_type(), compatible)
    check_dtype(spec, sequences, choice)
    if choice == "cudnn":
        return run_cudnn_lstm(spec, sequences, initial_states, go_backwards)
    return _run_plain(spec, sequences, initial_states, mask, go_backwards)
