"""Float64 NumPy implementations of the recurrent cell equations.

Written from the equations in the cell docstrings, independently of the
kzoo code, to check it.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def simple_rnn_step(x, states, w):
    (h,) = states
    h = np.tanh(x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"])
    return h, [h]


def lstm_step(x, states, w):
    h, c = states
    xw, hu = x @ w["kernel"], h @ w["recurrent_kernel"]
    if "input_norm_gamma" in w:
        xw = layer_norm(xw, w["input_norm_gamma"], 0.0)
        hu = layer_norm(hu, w["recurrent_norm_gamma"], 0.0)
    i, f, g, o = np.split(xw + hu + w["bias"], 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    c_act = c
    if "cell_norm_gamma" in w:
        c_act = layer_norm(c, w["cell_norm_gamma"], w["cell_norm_beta"])
    h = sigmoid(o) * np.tanh(c_act)
    return h, [h, c]


def gru_step(x, states, w):
    (h,) = states
    units = h.shape[-1]
    kernel, rec = w["kernel"], w["recurrent_kernel"]
    bias = w["bias"]
    g_in, g_rec = w.get("input_norm_gamma"), w.get("recurrent_norm_gamma")

    def norm(v, gamma):
        return v if gamma is None else layer_norm(v, gamma, 0.0)

    xw = norm(x @ kernel, g_in)
    if bias.ndim == 2:  # reset_after
        x_z, x_r, x_h = np.split(xw + bias[0], 3, axis=-1)
        h_z, h_r, h_h = np.split(norm(h @ rec, g_rec) + bias[1], 3, axis=-1)
        z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
        g = np.tanh(x_h + r * h_h)
    else:
        x_z, x_r, x_h = np.split(xw + bias, 3, axis=-1)
        zr = norm(h @ rec[:, : 2 * units], None if g_rec is None else g_rec[: 2 * units])
        z = sigmoid(x_z + zr[:, :units])
        r = sigmoid(x_r + zr[:, units:])
        cand = norm((r * h) @ rec[:, 2 * units :], None if g_rec is None else g_rec[2 * units :])
        g = np.tanh(x_h + cand)
    h = z * h + (1.0 - z) * g
    return h, [h]


STEPS = {"SimpleRNNCell": simple_rnn_step, "LSTMCell": lstm_step, "GRUCell": gru_step}


def run(step, x, weights, initial_states, mask=None, go_backwards=False):
    """Runs `step` over (batch, time, features) `x` the way Keras does.

    Masked steps keep the state and repeat the previous output (zeros
    before the first valid step); `go_backwards` returns outputs in
    processing order.
    """
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    weights = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    states = [np.asarray(s, np.float64) for s in initial_states]
    mask = np.ones((batch, time), bool) if mask is None else np.asarray(mask, bool)
    order = range(time - 1, -1, -1) if go_backwards else range(time)
    output = np.zeros((batch, states[0].shape[-1]))
    outputs = []
    for t in order:
        new_output, new_states = step(x[:, t], states, weights)
        keep = mask[:, t : t + 1]
        output = np.where(keep, new_output, output)
        states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
        outputs.append(output)
    return np.stack(outputs, axis=1), states
