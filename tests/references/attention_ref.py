"""Float64 NumPy references of the attention equations, written from the papers.

Nothing here imports kzoo: these are independent re-derivations used to check
the layers. Every function takes NumPy arrays and works in float64.
"""

import numpy as np


def _f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def masked_softmax_ref(scores, mask=None):
    """Softmax over the last axis restricted to `mask`; all-masked rows -> 0."""
    scores = _f64(scores)
    if mask is None:
        mask = np.ones_like(scores, dtype=bool)
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), scores.shape)
    out = np.zeros_like(scores)
    for index in np.ndindex(scores.shape[:-1]):
        valid = mask[index]
        if not valid.any():
            continue
        row = scores[index][valid]
        e = np.exp(row - row.max())
        out[index][valid] = e / e.sum()
    return out


def _attend(scores, memory, mask):
    """scores (B, Tq, T), memory (B, T, Hk) -> context (B, Tq, Hk), weights."""
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)[:, None, :]
    weights = masked_softmax_ref(scores, mask)
    context = np.zeros(weights.shape[:2] + (memory.shape[-1],))
    for b in range(memory.shape[0]):
        for i in range(weights.shape[1]):
            for t in range(memory.shape[1]):
                context[b, i] += weights[b, i, t] * memory[b, t]
    return context, weights


def _with_query_rank(fn, query, memory, mask):
    query, memory = _f64(query), _f64(memory)
    single = query.ndim == 2
    if single:
        query = query[:, None, :]
    context, weights = fn(query, memory, mask)
    if single:
        return context[:, 0], weights[:, 0]
    return context, weights


def bahdanau_ref(query, memory, mask, query_kernel, key_kernel, v, g=None, b=None):
    """e_t = v . tanh(q Wq + m_t Wk); with g, b: (g v/||v||) . tanh(... + b)."""
    wq, wk, v = _f64(query_kernel), _f64(key_kernel), _f64(v)
    if g is not None:
        v = float(g) * v / np.sqrt(np.sum(v * v))
    bias = np.zeros(v.shape) if b is None else _f64(b)

    def fn(q, m, mask):
        bsz, tq, t = q.shape[0], q.shape[1], m.shape[1]
        scores = np.zeros((bsz, tq, t))
        for i in range(bsz):
            for j in range(tq):
                for k in range(t):
                    scores[i, j, k] = v @ np.tanh(q[i, j] @ wq + m[i, k] @ wk + bias)
        return _attend(scores, m, mask)

    return _with_query_rank(fn, query, memory, mask)


def luong_ref(query, memory, mask, score, kernel=None, v=None, g=None):
    """Luong scores: dot h.m_t, general h.(m_t W), concat v.tanh([h; m_t] W)."""
    kernel, v = _f64(kernel), _f64(v)

    def fn(q, m, mask):
        bsz, tq, t = q.shape[0], q.shape[1], m.shape[1]
        scores = np.zeros((bsz, tq, t))
        for i in range(bsz):
            for j in range(tq):
                for k in range(t):
                    h, mk = q[i, j], m[i, k]
                    if score == "dot":
                        s = h @ mk
                    elif score == "general":
                        s = h @ (mk @ kernel)
                    else:
                        s = v @ np.tanh(np.concatenate([h, mk]) @ kernel)
                    scores[i, j, k] = s if g is None else float(g) * s
        return _attend(scores, m, mask)

    return _with_query_rank(fn, query, memory, mask)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step_ref(x, h, c, kernel, recurrent_kernel, bias):
    """One LSTM step, gates in Keras order (input, forget, cell, output)."""
    z = _f64(x) @ _f64(kernel) + _f64(h) @ _f64(recurrent_kernel) + _f64(bias)
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * _f64(c) + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return h, c


def attention_decoder_ref(
    inputs,
    memory,
    mask,
    lstm_weights,
    attend,
    attention_kernel=None,
    input_feeding=True,
):
    """Runs the attention decoder over `inputs (B, steps, D)` in float64.

    `attend(query (B, H), memory, mask) -> (context, weights)` is one of the
    references above with its weights bound. Returns the attentional outputs
    `(B, steps, width)`, the alignments `(B, steps, T)` and the final
    `(h, c, attentional)`.
    """
    inputs, memory = _f64(inputs), _f64(memory)
    kernel, recurrent_kernel, bias = lstm_weights
    units = recurrent_kernel.shape[0]
    bsz, steps = inputs.shape[:2]
    width = memory.shape[-1] if attention_kernel is None else attention_kernel.shape[1]
    h, c = np.zeros((bsz, units)), np.zeros((bsz, units))
    attentional = np.zeros((bsz, width))
    outputs, alignments = [], []
    for step in range(steps):
        x = inputs[:, step]
        if input_feeding:
            x = np.concatenate([x, attentional], axis=-1)
        h, c = lstm_step_ref(x, h, c, kernel, recurrent_kernel, bias)
        context, weights = attend(h, memory, mask)
        if attention_kernel is None:
            attentional = context
        else:
            attentional = np.tanh(np.concatenate([h, context], axis=-1) @ _f64(attention_kernel))
        outputs.append(attentional)
        alignments.append(weights)
    return np.stack(outputs, 1), np.stack(alignments, 1), (h, c, attentional)
