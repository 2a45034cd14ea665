"""The recurrent layers check what they are given before any backend runs.

Every initial state and kept (stateful) state is checked in the layer
(`kzoo.layers.RNN`, `Bidirectional`): the count of states, each state's rank,
batch and size, the batch of a stateful layer, and the mask's dtype and
shape. A bad one raises a `ValueError` that names it, before a kernel runs
(the torch fast paths call ATen's kernels without `torch.nn`'s checks; a
state of the wrong batch corrupted the heap there). The calls that crashed
the process run in a subprocess, so a crash fails the test instead of killing
pytest; the others also run here, with a lowering context that fails the
test if any backend loop or kernel is reached.
"""

import contextlib
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import kzoo
from kzoo import backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
BACKEND = keras.backend.backend()


def _ones(*shape):
    return np.ones(shape, "float32")


@contextlib.contextmanager
def _no_backend_call():
    """Fails the test if a recurrent loop or kernel of kzoo.backend is reached."""
    reached = []

    def refuse(*args, **kwargs):
        reached.append(True)
        raise AssertionError("a backend loop ran before the layer refused its inputs")

    with backend.lowering(rnn=refuse, fused_rnn=refuse, fused_bidirectional_rnn=refuse):
        yield
    assert not reached


# name -> (statement that sets up, call expected to raise ValueError, words of the message)
CASES = {
    # ATen read out of bounds: heap corruption on torch.
    "lstm_state_batch_1_for_batch_4": (
        "layer = kzoo.layers.LSTM(4); x = ones(4, 6, 3); h = ones(1, 4)",
        "layer(x, initial_state=[h, h])",
        ["initial_state` 0", "(4, 4)", "(1, 4)"],
    ),
    # Used to run silently on the first two rows.
    "lstm_state_batch_3_for_batch_2": (
        "layer = kzoo.layers.LSTM(4); x = ones(2, 6, 3); h = ones(3, 4)",
        "layer(x, initial_state=[h, h])",
        ["initial_state` 0", "(2, 4)", "(3, 4)"],
    ),
    "gru_state_batch": (
        "layer = kzoo.layers.GRU(4); x = ones(2, 6, 3)",
        "layer(x, initial_state=[ones(3, 4)])",
        ["initial_state` 0", "(2, 4)", "(3, 4)"],
    ),
    "simple_rnn_state_size": (
        "layer = kzoo.layers.SimpleRNN(4); x = ones(2, 6, 3)",
        "layer(x, initial_state=[ones(2, 5)])",
        ["initial_state` 0", "(2, 4)", "(2, 5)"],
    ),
    "lstm_state_count": (
        "layer = kzoo.layers.LSTM(4); x = ones(2, 6, 3)",
        "layer(x, initial_state=[ones(2, 4)])",
        ["2 state", "1 tensor"],
    ),
    "lstm_state_rank": (
        "layer = kzoo.layers.LSTM(4); x = ones(2, 6, 3); h = ones(2, 1, 4)",
        "layer(x, initial_state=[h, h])",
        ["initial_state` 0", "(2, 1, 4)"],
    ),
    "stacked_state_count": (
        "layer = kzoo.layers.RNN([kzoo.layers.LSTMCell(4), kzoo.layers.GRUCell(4)]);"
        " x = ones(2, 6, 3); h = ones(2, 4)",
        "layer(x, initial_state=[[h, h], h, h])",
        ["3 state", "4 tensor"],
    ),
    # munmap_chunk(): invalid pointer on torch.
    "stateful_lstm_other_batch": (
        "layer = kzoo.layers.LSTM(4, stateful=True); layer(ones(2, 6, 3))",
        "layer(ones(3, 6, 3))",
        ["batch size 2", "batch size 3"],
    ),
    "stateful_gru_other_batch": (
        "layer = kzoo.layers.GRU(4, stateful=True); layer(ones(2, 6, 3))",
        "layer(ones(1, 6, 3))",
        ["batch size 2", "batch size 1"],
    ),
    # Segfault on torch.
    "bidirectional_state_batch": (
        "layer = kzoo.layers.Bidirectional(kzoo.layers.LSTM(4)); x = ones(4, 6, 3)",
        "layer(x, initial_state=[ones(1, 4)] * 4)",
        ["initial_state` 0", "(4, 4)", "(1, 4)"],
    ),
    "bidirectional_backward_state_batch": (
        "layer = kzoo.layers.Bidirectional(kzoo.layers.GRU(4)); x = ones(2, 6, 3)",
        "layer(x, initial_state=[ones(2, 4), ones(3, 4)])",
        ["initial_state` 0", "(2, 4)", "(3, 4)"],
    ),
    "bidirectional_odd_state_count": (
        "layer = kzoo.layers.Bidirectional(kzoo.layers.LSTM(4)); x = ones(2, 6, 3)",
        "layer(x, initial_state=[ones(2, 4)] * 3)",
        ["even count", "3"],
    ),
    "bidirectional_state_count": (
        "layer = kzoo.layers.Bidirectional(kzoo.layers.LSTM(4)); x = ones(2, 6, 3)",
        "layer(x, initial_state=[ones(2, 4)] * 2)",
        ["2 state", "1 tensor"],
    ),
    "string_mask": (
        "layer = kzoo.layers.LSTM(4); x = ones(2, 3, 3)",
        "layer(x, mask=np.array([['a', 'b', 'c'], ['a', 'b', 'c']]))",
        ["`mask`", "dtype"],
    ),
    "mask_wrong_time": (
        "layer = kzoo.layers.GRU(4); x = ones(2, 6, 3)",
        "layer(x, mask=np.ones((2, 5), bool))",
        ["`mask`", "(2, 6)", "(2, 5)"],
    ),
    "mask_wrong_batch": (
        "layer = kzoo.layers.Bidirectional(kzoo.layers.LSTM(4)); x = ones(2, 6, 3)",
        "layer(x, mask=np.ones((3, 6), bool))",
        ["`mask`", "(2, 6)", "(3, 6)"],
    ),
    "mask_rank_3": (
        "layer = kzoo.layers.LSTM(4); x = ones(2, 6, 3)",
        "layer(x, mask=np.ones((2, 6, 3), bool))",
        ["`mask`", "(2, 6, 3)"],
    ),
}

# The cases that crashed the torch process before the layer checked them.
CRASHED = (
    "lstm_state_batch_1_for_batch_4",
    "stateful_lstm_other_batch",
    "bidirectional_state_batch",
)


def _message(case):
    setup, call, _ = CASES[case]
    scope = {"np": np, "kzoo": kzoo, "ones": _ones}
    exec(setup, scope)
    with _no_backend_call(), pytest.raises(ValueError) as info:
        exec(call, scope)
    return str(info.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_refuses_before_any_backend_call(case):
    message = _message(case)
    for words in CASES[case][2]:
        assert words in message, f"{words!r} not in: {message}"


_SCRIPT = """
import numpy as np, kzoo

def ones(*shape):
    return np.ones(shape, "float32")

for name, (setup, call) in CASES.items():
    scope = {"np": np, "kzoo": kzoo, "ones": ones}
    exec(setup, scope)
    try:
        exec(call, scope)
    except ValueError:
        print("REFUSED", name, flush=True)
    else:
        print("ACCEPTED", name, flush=True)
"""


@pytest.fixture(scope="module")
def subprocess_results():
    """Runs the crash-prone cases in one fresh Python on this backend."""
    cases = {name: CASES[name][:2] for name in CRASHED}
    script = f"CASES = {cases!r}\n{_SCRIPT}"
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
        env=env,
    )
    return done


@pytest.mark.parametrize("case", CRASHED)
def test_crash_prone_calls_raise_in_a_fresh_process(case, subprocess_results):
    done = subprocess_results
    assert done.returncode == 0, (
        f"the process ended with {done.returncode} (a crash?):\n{done.stdout}\n{done.stderr[-3000:]}"
    )
    assert f"REFUSED {case}" in done.stdout.splitlines(), done.stdout + done.stderr[-3000:]


def test_valid_states_and_numeric_masks_still_run():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    layer = kzoo.layers.LSTM(4, return_state=True)
    h = np.full((2, 4), 0.5, "float32")
    _, h1, c1 = layer(x, initial_state=[h, h])
    assert tuple(h1.shape) == (2, 4) and tuple(c1.shape) == (2, 4)
    bool_mask = np.array([[True] * 5, [True, True, True, False, False]])
    a = keras.ops.convert_to_numpy(layer(x, mask=bool_mask)[0])
    b = keras.ops.convert_to_numpy(layer(x, mask=bool_mask.astype("int32"))[0])
    np.testing.assert_allclose(a, b)


def test_stateful_layer_keeps_working_after_a_refused_batch():
    layer = kzoo.layers.GRU(4, stateful=True)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype("float32")
    first = keras.ops.convert_to_numpy(layer(x))
    with pytest.raises(ValueError, match="batch size"):
        layer(np.ones((3, 5, 3), "float32"))
    layer.reset_state()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), first, rtol=1e-6)
