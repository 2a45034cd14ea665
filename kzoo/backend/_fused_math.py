"""Step equations and hand-written gradients of the plain cells, in `keras.ops`.

The JAX and TensorFlow backends run these inside their own loops
(`lax.scan`, `tf.while_loop`) under a custom gradient. The forward loop keeps
only what the backward loop needs (the states and the gate activations); the
backward loop computes, per step, the gradient with respect to the
pre-activations `dz_t` and the previous states. The weight gradients are then
a few large matrix products over all steps at once (`X^T dZ`, `H_prev^T dZ`)
instead of one small product per step, which is where the speed-up over
automatic differentiation of the loop comes from.

Conventions: time-major tensors; `w = (kernel, recurrent_kernel, bias)` in
the Keras layout (the bias is zeros when the cell has none); `p =
prepare(w)` holds the loop invariants the steps use (weight slices and the
transposed recurrent kernels, made once outside the loops); `states` is
`(h,)` or `(h, c)`; the first state is the step's output.
"""

from keras import ops


def _sigmoid_grad(s):
    return s * (1.0 - s)


def _tanh_grad(t):
    return 1.0 - t * t


class LSTM:
    num_states = 2

    @staticmethod
    def prepare(w):
        kernel, recurrent_kernel, bias = w
        return kernel, recurrent_kernel, bias, ops.transpose(recurrent_kernel)

    @staticmethod
    def forward(p, x_t, states):
        kernel, recurrent_kernel, bias = p[:3]
        h, c = states
        z = ops.matmul(x_t, kernel) + ops.matmul(h, recurrent_kernel) + bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i, f, o = ops.sigmoid(z_i), ops.sigmoid(z_f), ops.sigmoid(z_o)
        g = ops.tanh(z_c)
        c = f * c + i * g
        h = o * ops.tanh(c)
        return (h, c), (i, f, g, o)

    @staticmethod
    def backward(p, d_states, saved, states, prev_states):
        """`states` are this step's outputs (only used where the step was valid)."""
        recurrent_t = p[3]
        dh, dc = d_states
        c = states[1]
        c_prev = prev_states[1]
        i, f, g, o = saved
        tanh_c = ops.tanh(c)
        dc = dc + dh * o * _tanh_grad(tanh_c)
        dz = ops.concatenate(
            [
                dc * g * _sigmoid_grad(i),
                dc * c_prev * _sigmoid_grad(f),
                dc * i * _tanh_grad(g),
                dh * tanh_c * _sigmoid_grad(o),
            ],
            axis=-1,
        )
        return (ops.matmul(dz, recurrent_t), dc * f), dz

    @staticmethod
    def weight_grads(w, xs, h_prev, saved, dz):
        return _dense_grads(w, xs, h_prev, dz, dz)


class GRU:
    """Reset gate after the recurrent product; bias `(2, 3h)`."""

    num_states = 1

    @staticmethod
    def prepare(w):
        kernel, recurrent_kernel, bias = w
        return kernel, recurrent_kernel, bias[0], bias[1], ops.transpose(recurrent_kernel)

    @staticmethod
    def forward(p, x_t, states):
        kernel, recurrent_kernel, input_bias, recurrent_bias = p[:4]
        (h,) = states
        x_z, x_r, x_h = ops.split(ops.matmul(x_t, kernel) + input_bias, 3, axis=-1)
        h_z, h_r, h_h = ops.split(ops.matmul(h, recurrent_kernel) + recurrent_bias, 3, axis=-1)
        z = ops.sigmoid(x_z + h_z)
        r = ops.sigmoid(x_r + h_r)
        g = ops.tanh(x_h + r * h_h)
        h = z * h + (1.0 - z) * g
        return (h,), (z, r, g, h_h)

    @staticmethod
    def backward(p, d_states, saved, states, prev_states):
        recurrent_t = p[4]
        (dh,) = d_states
        (h_prev,) = prev_states
        z, r, g, h_h = saved
        dz = dh * (h_prev - g) * _sigmoid_grad(z)
        dg = dh * (1.0 - z) * _tanh_grad(g)
        dr = dg * h_h * _sigmoid_grad(r)
        # Input-side and recurrent-side pre-activation gradients differ only
        # in the candidate block (the reset gate scales the recurrent one);
        # they are kept as separate pieces so that no large slice is copied.
        dzr = ops.concatenate([dz, dr], axis=-1)
        dgr = dg * r
        dh_prev = ops.matmul(ops.concatenate([dzr, dgr], axis=-1), recurrent_t) + dh * z
        return (dh_prev,), (dzr, dg, dgr)

    @staticmethod
    def weight_grads(w, xs, h_prev, saved, grads):
        kernel = w[0]
        units = kernel.shape[-1] // 3
        dzr, dg, dgr = grads
        d_kernel = ops.concatenate([_matmul_t(xs, dzr), _matmul_t(xs, dg)], axis=-1)
        d_recurrent = ops.concatenate([_matmul_t(h_prev, dzr), _matmul_t(h_prev, dgr)], axis=-1)
        sum_zr = _sum_rows(dzr)
        d_bias = ops.stack(
            [
                ops.concatenate([sum_zr, _sum_rows(dg)], axis=0),
                ops.concatenate([sum_zr, _sum_rows(dgr)], axis=0),
            ]
        )
        dxs = ops.matmul(dzr, ops.transpose(kernel[:, : 2 * units])) + ops.matmul(
            dg, ops.transpose(kernel[:, 2 * units :])
        )
        return d_kernel, d_recurrent, d_bias, dxs


class GRUResetBefore:
    """Reset gate before the recurrent product (`reset_after=False`); bias `(3h,)`."""

    num_states = 1

    @staticmethod
    def prepare(w):
        kernel, recurrent_kernel, bias = w
        units = recurrent_kernel.shape[0]
        gates, candidate = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units :]
        return kernel, gates, candidate, bias, ops.transpose(gates), ops.transpose(candidate)

    @staticmethod
    def forward(p, x_t, states):
        kernel, recurrent_gates, recurrent_candidate, bias = p[:4]
        (h,) = states
        x_z, x_r, x_h = ops.split(ops.matmul(x_t, kernel) + bias, 3, axis=-1)
        h_z, h_r = ops.split(ops.matmul(h, recurrent_gates), 2, axis=-1)
        z = ops.sigmoid(x_z + h_z)
        r = ops.sigmoid(x_r + h_r)
        g = ops.tanh(x_h + ops.matmul(r * h, recurrent_candidate))
        h = z * h + (1.0 - z) * g
        return (h,), (z, r, g)

    @staticmethod
    def backward(p, d_states, saved, states, prev_states):
        gates_t, candidate_t = p[4], p[5]
        (dh,) = d_states
        (h_prev,) = prev_states
        z, r, g = saved
        dz = dh * (h_prev - g) * _sigmoid_grad(z)
        dg = dh * (1.0 - z) * _tanh_grad(g)
        d_reset_h = ops.matmul(dg, candidate_t)
        dr = d_reset_h * h_prev * _sigmoid_grad(r)
        dzr = ops.concatenate([dz, dr], axis=-1)
        dh_prev = ops.matmul(dzr, gates_t) + d_reset_h * r + dh * z
        return (dh_prev,), (dzr, dg)

    @staticmethod
    def weight_grads(w, xs, h_prev, saved, grads):
        kernel = w[0]
        units = kernel.shape[-1] // 3
        dzr, dg = grads
        r = saved[1]
        d_kernel = ops.concatenate([_matmul_t(xs, dzr), _matmul_t(xs, dg)], axis=-1)
        d_recurrent = ops.concatenate([_matmul_t(h_prev, dzr), _matmul_t(r * h_prev, dg)], axis=-1)
        d_bias = ops.concatenate([_sum_rows(dzr), _sum_rows(dg)], axis=0)
        dxs = ops.matmul(dzr, ops.transpose(kernel[:, : 2 * units])) + ops.matmul(
            dg, ops.transpose(kernel[:, 2 * units :])
        )
        return d_kernel, d_recurrent, d_bias, dxs


class Simple:
    num_states = 1
    activation = "tanh"
    prepare = staticmethod(LSTM.prepare)

    @classmethod
    def forward(cls, p, x_t, states):
        kernel, recurrent_kernel, bias = p[:3]
        z = ops.matmul(x_t, kernel) + ops.matmul(states[0], recurrent_kernel) + bias
        h = ops.tanh(z) if cls.activation == "tanh" else ops.relu(z)
        return (h,), ()

    @classmethod
    def backward(cls, p, d_states, saved, states, prev_states):
        (dh,) = d_states
        h = states[0]
        if cls.activation == "tanh":
            dz = dh * _tanh_grad(h)
        else:
            dz = dh * ops.cast(h > 0, h.dtype)
        return (ops.matmul(dz, p[3]),), dz

    @staticmethod
    def weight_grads(w, xs, h_prev, saved, dz):
        return _dense_grads(w, xs, h_prev, dz, dz)


class SimpleRelu(Simple):
    activation = "relu"


def cell_math(spec):
    """The equations class for a `PlainCell`."""
    if spec.kind == "simple":
        return Simple if spec.activation == "tanh" else SimpleRelu
    return {"lstm": LSTM, "gru": GRU, "gru_v1": GRUResetBefore}[spec.kind]


def _flat(t):
    width = t.shape[-1] if t.shape[-1] is not None else ops.shape(t)[-1]
    return ops.reshape(t, (-1, width))


def _matmul_t(a, b):
    """`a^T b` over all leading (time, batch) positions."""
    return ops.matmul(ops.transpose(_flat(a)), _flat(b))


def _sum_rows(t):
    return ops.sum(_flat(t), axis=0)


def _dense_grads(w, xs, h_prev, dx_side, dh_side):
    kernel = w[0]
    d_kernel = _matmul_t(xs, dx_side)
    d_recurrent = _matmul_t(h_prev, dh_side)
    d_bias = _sum_rows(dx_side)
    dxs = ops.matmul(dx_side, ops.transpose(kernel))
    return d_kernel, d_recurrent, d_bias, dxs


def weights_with_bias(spec):
    """`(kernel, recurrent_kernel, bias)` with a zero bias for bias-free cells."""
    bias = spec.bias
    if bias is None:
        units = spec.units
        shape = (2, 3 * units) if spec.kind == "gru" else (spec.recurrent_kernel.shape[-1],)
        bias = ops.zeros(shape, dtype=spec.kernel.dtype)
    return spec.kernel, spec.recurrent_kernel, bias
