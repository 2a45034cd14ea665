"""TensorFlow-backend recurrent loops: `tf.while_loop` over TensorArrays."""

import tensorflow as tf

from kzoo.backend.reference import step_with_mask


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False):
    xs = tf.transpose(inputs, (1, 0, 2))  # (time, batch, features)
    ms = None if mask is None else tf.transpose(tf.cast(mask, tf.bool), (1, 0))
    if go_backwards:
        xs = tf.reverse(xs, [0])
        ms = None if ms is None else tf.reverse(ms, [0])
    steps = tf.shape(xs)[0]
    x_array = tf.TensorArray(xs.dtype, size=steps, element_shape=xs.shape[1:]).unstack(xs)
    m_array = None
    if ms is not None:
        m_array = tf.TensorArray(tf.bool, size=steps, element_shape=ms.shape[1:]).unstack(ms)
    out_array = tf.TensorArray(initial_output.dtype, size=steps, element_shape=initial_output.shape)

    def body(t, states, prev_output, out_array):
        m_t = None if m_array is None else m_array.read(t)
        output, new_states = step_with_mask(step_fn, x_array.read(t), m_t, states, prev_output)
        new_states = tf.nest.map_structure(
            lambda n, s: tf.ensure_shape(n, s.shape), new_states, states
        )
        return t + 1, new_states, output, out_array.write(t, output)

    _, states, last_output, out_array = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), initial_states, initial_output, out_array),
    )
    return last_output, tf.transpose(out_array.stack(), (1, 0, 2)), states
