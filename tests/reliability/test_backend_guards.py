"""The backend's own guards: state shapes before any kernel, nothing from padding.

- Every fused function checks each state (count, batch, size) before a kernel
  runs and raises `ValueError`. ATen's kernels, which kzoo's torch fast paths
  call without `torch.nn`'s checks, corrupted the heap on a state of the wrong
  batch (segfault), or silently used the first rows of a larger state. The
  crash-prone calls run in a subprocess, so a crash fails the test instead of
  killing pytest; the layers add their own checks (these tests accept a
  `ValueError` from either).
- NaN or Inf at padded (masked) steps reaches neither the outputs nor, on
  the fused paths, the gradients: masked steps do not contribute, as in Keras.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kzoo
from kzoo import backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
BACKEND = keras.backend.backend()


def _run_script(body):
    """Runs `body` in a fresh Python on this backend; returns the completed process."""
    script = "import numpy as np, keras, kzoo\nfrom kzoo import backend\n" + textwrap.dedent(body)
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
        env=env,
    )


# Each case prints "<name> REFUSED <message>" when the call raises ValueError.
_EXPECT_VALUE_ERROR = """
try:
    {setup}
    {call}
except ValueError as error:
    print({name!r}, "REFUSED", str(error).replace("\\n", " "), flush=True)
except Exception as error:
    print({name!r}, "OTHER", type(error).__name__, flush=True)
else:
    print({name!r}, "ACCEPTED", flush=True)
"""

# name -> (setup, call, text the message must contain)
CASES = {
    # fused_rnn on a spec, state batch 1 for an input batch of 4.
    "state_batch_smaller": (
        "layer = kzoo.layers.LSTM(4); layer.build((4, 6, 3)); x = keras.ops.ones((4, 6, 3)); "
        "h = keras.ops.ones((1, 4))",
        "backend.fused_rnn(layer.cell.fused_spec(), x, [h, h])",
        "batch",
    ),
    # A state batch of 3 for 2 rows used to run on the first two rows.
    "state_batch_larger": (
        "layer = kzoo.layers.GRU(4); layer.build((2, 6, 3)); x = keras.ops.ones((2, 6, 3)); "
        "h = keras.ops.ones((3, 4))",
        "backend.fused_rnn(layer.cell.fused_spec(), x, [h])",
        "batch",
    ),
    "state_size": (
        "layer = kzoo.layers.LSTM(4); layer.build((2, 6, 3)); x = keras.ops.ones((2, 6, 3)); "
        "h = keras.ops.ones((2, 5))",
        "backend.fused_rnn(layer.cell.fused_spec(), x, [h, h], go_backwards=True)",
        "(2, 4)",
    ),
    "state_count": (
        "layer = kzoo.layers.LSTM(4); layer.build((2, 6, 3)); x = keras.ops.ones((2, 6, 3)); "
        "h = keras.ops.ones((2, 4))",
        "backend.fused_rnn(layer.cell.fused_spec(), x, [h])",
        "2 state",
    ),
    "padded_state_batch": (
        "layer = kzoo.layers.LSTM(4); layer.build((4, 6, 3)); x = keras.ops.ones((4, 6, 3)); "
        "h = keras.ops.ones((1, 4)); "
        "m = keras.ops.convert_to_tensor(np.arange(6)[None] < np.array([[6], [3], [2], [1]]))",
        "backend.fused_rnn(layer.cell.fused_spec(), x, [h, h], mask=m)",
        "batch",
    ),
    "bidirectional_state_batch": (
        "layer = kzoo.layers.LSTM(4); layer.build((4, 6, 3)); x = keras.ops.ones((4, 6, 3)); "
        "h = keras.ops.ones((1, 4)); z = keras.ops.zeros((4, 4)); s = layer.cell.fused_spec()",
        "backend.fused_bidirectional_rnn(s, s, x, [z, z], [h, h])",
        "batch",
    ),
    # The calls of the crash reports, through the layers (whose own checks
    # may answer first).
    "layer_lstm_initial_state_batch": (
        "x = np.ones((4, 6, 3), 'float32'); h = np.ones((1, 4), 'float32')",
        "kzoo.layers.LSTM(4)(x, initial_state=[h, h])",
        "",
    ),
    "layer_stateful_batch": (
        "layer = kzoo.layers.LSTM(4, stateful=True); "
        "inputs = keras.Input(batch_shape=(2, 6, 3)); model = keras.Model(inputs, layer(inputs)); "
        "model(np.ones((2, 6, 3), 'float32'))",
        "model(np.ones((3, 6, 3), 'float32'))",
        "",
    ),
    "layer_bidirectional_initial_state_batch": (
        "x = np.ones((4, 6, 3), 'float32'); h = np.ones((1, 4), 'float32')",
        "kzoo.layers.Bidirectional(kzoo.layers.LSTM(4))(x, initial_state=[h] * 4)",
        "",
    ),
    "layer_gru_initial_state_larger_batch": (
        "x = np.ones((2, 6, 3), 'float32'); h = np.ones((3, 4), 'float32')",
        "kzoo.layers.GRU(4)(x, initial_state=[h])",
        "",
    ),
}


@pytest.fixture(scope="module")
def guarded_runs():
    """Runs every case in one subprocess (one interpreter start); a crash
    leaves the cases after it without a line."""
    body = "".join(
        _EXPECT_VALUE_ERROR.format(name=name, setup=setup, call=call)
        for name, (setup, call, _) in CASES.items()
    )
    result = _run_script(body)
    lines = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(" ")
        lines[name] = rest
    return result, lines


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_states_are_refused_in_a_subprocess(guarded_runs, case):
    if case == "bidirectional_state_batch" and (
        getattr(backend._native, "fused_bidirectional_rnn", None) is None
    ):
        pytest.skip(f"the {BACKEND} backend has no two-direction kernel")
    result, lines = guarded_runs
    assert case in lines, (
        f"the subprocess ended (exit code {result.returncode}) before this case: "
        f"{result.stderr[-3000:]}"
    )
    assert lines[case].startswith("REFUSED"), lines[case]
    assert CASES[case][2] in lines[case], lines[case]
    assert result.returncode == 0, result.stderr[-3000:]


def test_right_states_still_run_in_process():
    x = np.ones((4, 6, 3), "float32")
    h = np.full((4, 4), 0.5, "float32")
    out = kzoo.layers.LSTM(4)(x, initial_state=[h, h])
    assert tuple(out.shape) == (4, 4)


# -- padding ------------------------------------------------------------------

STEPS = 6
LENGTHS = np.array([6, 4, 1, 3])
RIGHT = np.arange(STEPS)[None, :] < LENGTHS[:, None]
SCATTERED = np.array(
    [[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1], [0, 0, 1, 0, 0, 0]], bool
)


def _poisoned(mask, seed=0):
    """Clean inputs, and the same inputs with NaN and Inf at masked steps."""
    x = np.random.default_rng(seed).standard_normal((4, STEPS, 3)).astype("float32")
    bad = x.copy()
    bad[~mask] = np.nan
    bad[~mask & (np.arange(STEPS)[None, :] % 2 == 0)] = np.inf
    return x, bad


LAYERS = {
    "lstm": lambda: kzoo.layers.LSTM(5, return_sequences=True, return_state=True),
    "lstm_backward": lambda: kzoo.layers.LSTM(
        5, return_sequences=True, return_state=True, go_backwards=True
    ),
    "gru": lambda: kzoo.layers.GRU(5, return_sequences=True, return_state=True),
    "gru_reset_before": lambda: kzoo.layers.GRU(
        5, return_sequences=True, return_state=True, reset_after=False
    ),
    "simple": lambda: kzoo.layers.SimpleRNN(5, return_sequences=True, return_state=True),
    "bidirectional_lstm": lambda: kzoo.layers.Bidirectional(
        kzoo.layers.LSTM(5, return_sequences=True, return_state=True)
    ),
    "bidirectional_gru": lambda: kzoo.layers.Bidirectional(
        kzoo.layers.GRU(5, return_sequences=True, return_state=True)
    ),
    "bidirectional_lstm_last": lambda: kzoo.layers.Bidirectional(kzoo.layers.LSTM(5)),
}


def _numpy(outputs):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(o) for o in outputs]


@pytest.mark.parametrize(
    "mask_name,training", [("right", False), ("scattered", True)], ids=["right", "scattered"]
)
@pytest.mark.parametrize("name", list(LAYERS))
def test_nan_at_masked_steps_does_not_reach_the_outputs(name, training, mask_name):
    mask = RIGHT if mask_name == "right" else SCATTERED
    clean, bad = _poisoned(mask)
    layer = LAYERS[name]()
    expected = _numpy(layer(clean, mask=mask, training=training))
    got = _numpy(layer(bad, mask=mask, training=training))
    for e, g in zip(expected, got):
        assert np.all(np.isfinite(g)), (name, g)
        np.testing.assert_allclose(g, e, atol=1e-6)


def _weight_grads(layer, x, mask):
    weights = layer.trainable_weights
    if BACKEND == "jax":
        import jax

        def loss(values):
            with keras.StatelessScope(state_mapping=list(zip(weights, values))):
                out = layer(x, mask=mask, training=True)
            return sum(keras.ops.sum(o) for o in keras.tree.flatten(out))

        return [np.asarray(g) for g in jax.grad(loss)([w.value for w in weights])]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = layer(x, mask=mask, training=True)
            loss = sum(tf.reduce_sum(o) for o in keras.tree.flatten(out))
        return [g.numpy() for g in tape.gradient(loss, [w.value for w in weights])]
    for w in weights:
        w.value.grad = None
    out = layer(x, mask=mask, training=True)
    sum(o.sum() for o in keras.tree.flatten(out)).backward()
    return [w.value.grad.numpy() for w in weights]


@pytest.mark.parametrize("name", ["lstm", "gru", "bidirectional_lstm", "bidirectional_gru"])
def test_nan_at_padded_steps_does_not_reach_fused_gradients(name):
    """Right padding runs the fused kernels on every backend; their gradients
    stay those of the clean inputs."""
    clean, bad = _poisoned(RIGHT, seed=1)
    layer = LAYERS[name]()
    layer.build(clean.shape)
    expected = _weight_grads(layer, clean, RIGHT)
    got = _weight_grads(layer, bad, RIGHT)
    for e, g in zip(expected, got):
        assert np.all(np.isfinite(g)), name
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
