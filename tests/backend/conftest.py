"""Fixtures for the kzoo.backend tests.

The gradient helper asks which backend runs only to pick that backend's
autodiff API; kzoo itself never does outside kzoo/backend/.
"""

import keras
import numpy as np
import pytest

from kzoo import backend

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _seed():
    # Overrides the suite-wide fixture without keras.backend.clear_session(),
    # whose garbage collection costs 0.5-2 s per test.
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)


@pytest.fixture(autouse=True)
def _custom_gradient_for_every_size(monkeypatch):
    """The TF custom-gradient loops run only for large layers by default;
    these small test layers must exercise them (one test opts out)."""
    if BACKEND == "tensorflow":
        from kzoo.backend import tensorflow as tf_backend

        monkeypatch.setattr(tf_backend, "CUSTOM_GRADIENT_MIN_UNITS", 0)


def _to_numpy(tensors):
    return [np.asarray(keras.ops.convert_to_numpy(t), dtype="float64") for t in tensors]


def _value_and_grads(layer, x, loss_fn, initial_state=None, **call_kwargs):
    """Runs `loss_fn(layer(x, initial_state=..., **call_kwargs))`.

    Returns `(outputs, grads)` as float64 NumPy arrays: the layer outputs (a
    list), and the gradients of the scalar loss with respect to the layer's
    trainable weights, then `x`, then each initial state.
    """
    weights = layer.trainable_weights
    states = list(initial_state or [])
    if BACKEND == "jax":
        import jax

        def f(values, x, states):
            mapping = list(zip(weights, values))
            mapping += [(v, v.value) for v in layer.non_trainable_weights]
            with keras.StatelessScope(state_mapping=mapping):
                out = layer(x, initial_state=states or None, **call_kwargs)
            return loss_fn(out), out

        # One compiled function instead of op-by-op dispatch, which would
        # compile every scan body separately.
        f = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))
        (_, out), (g_w, g_x, g_s) = f(
            [w.value for w in weights],
            jax.numpy.asarray(x),
            [jax.numpy.asarray(s) for s in states],
        )
        grads = [*g_w, g_x, *g_s]
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        x_t = tf.constant(x)
        s_t = [tf.constant(s) for s in states]
        with tf.GradientTape() as tape:
            tape.watch([x_t, *s_t])
            out = layer(x_t, initial_state=s_t or None, **call_kwargs)
            loss = loss_fn(out)
        grads = tape.gradient(loss, [w.value for w in weights] + [x_t, *s_t])
    else:
        import torch

        x_t = torch.tensor(x, requires_grad=True)
        s_t = [torch.tensor(s, requires_grad=True) for s in states]
        for w in weights:
            w.value.grad = None
        out = layer(x_t, initial_state=s_t or None, **call_kwargs)
        loss_fn(out).backward()
        grads = [w.value.grad for w in weights] + [x_t.grad] + [s.grad for s in s_t]
    outs = out if isinstance(out, (list, tuple)) else [out]
    return _to_numpy(outs), _to_numpy(grads)


@pytest.fixture
def value_and_grads():
    return _value_and_grads


@pytest.fixture
def fused_calls():
    """Counts the calls that a native fused kernel completed (did not decline).

    The spies sit on the `kzoo.backend` context stack (`lowering`), so
    `reference_only()` inside a test still overrides them.
    """
    calls = {"fused_rnn": 0, "fused_bidirectional_rnn": 0}
    spies = {}
    for name in calls:
        original = getattr(backend._native, name, None)
        if original is None:
            continue

        def spy(*args, _original=original, _name=name, **kwargs):
            result = _original(*args, **kwargs)
            calls[_name] += 1
            return result

        spies[name] = spy
    with backend.lowering(**spies):
        yield calls
