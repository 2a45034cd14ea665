"""JAX-backend recurrent loops: one `lax.scan` that stacks only the outputs."""

import jax
import jax.numpy as jnp

from kzoo.backend.reference import step_with_mask


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False):
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
