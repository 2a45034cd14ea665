"""Checks every kzoo layer goes through: config, save/load, training."""

import os

import keras
import numpy as np

TOL = 1e-5
# The largest difference seen by `assert_close` in this run, printed by
# tests/conftest.py at the end of the session.
LARGEST_DIFFERENCE = {"value": 0.0, "test": None}


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_close(actual, expected, tol=TOL, what="outputs"):
    actual, expected = np.asarray(to_numpy(actual), np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.max(np.abs(actual - expected) / (1.0 + np.abs(expected))) if actual.size else 0.0
    if err > LARGEST_DIFFERENCE["value"]:
        LARGEST_DIFFERENCE.update(value=float(err), test=os.environ.get("PYTEST_CURRENT_TEST"))
    assert err <= tol, f"{what}: max relative difference {err:.3g} > {tol}"


def weights_by_name(layer):
    return {w.name: to_numpy(w) for w in layer.weights}


def run_layer_test(layer, inputs, tmp_path, mask=None):
    """Config round trip, `.keras` round trip and one `fit` step.

    `layer` must map `inputs` (batch, time, features) to a single tensor.
    """
    inputs = np.asarray(inputs, np.float32)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    sequence = keras.Input(shape=inputs.shape[1:])
    outputs = layer(sequence)
    head = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(outputs))
    model = keras.Model(sequence, head)
    expected = model.predict(inputs, verbose=0)

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_close(loaded.predict(inputs, verbose=0), expected, what="reloaded outputs")

    targets = np.ones((inputs.shape[0], 1), np.float32)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    before = model.evaluate(inputs, targets, verbose=0)
    model.fit(inputs, targets, epochs=3, batch_size=inputs.shape[0], verbose=0)
    after = model.evaluate(inputs, targets, verbose=0)
    assert after < before, f"training did not lower the loss ({before} -> {after})"


# Prepended to code run by `run_without_tensorflow`: any import of TensorFlow
# (or tensorflow_text, which keras-hub's tokenizers pull) raises ImportError and
# `importlib.util.find_spec` finds nothing, as on a machine where it is not
# installed (torch._dynamo probes `find_spec("tensorflow")` when it loads).
_BLOCK_TENSORFLOW = """
import sys
for _name in ("tensorflow", "tensorflow_text", "tf_keras"):
    sys.modules[_name] = None
"""


def run_without_tensorflow(code, backend, timeout=300, cwd=None):
    """Runs `code` in a fresh Python on `backend` with TensorFlow unimportable.

    Returns the `subprocess.CompletedProcess` (text stdout/stderr). The
    code also asserts at its end that no `tensorflow` module got imported.
    """
    import subprocess
    import sys
    import textwrap

    if backend == "tensorflow":
        raise ValueError("run_without_tensorflow needs the jax or torch backend.")
    check = (
        "\nimport sys as _sys\n"
        "_loaded = sorted(m for m, v in _sys.modules.items() if v is not None and m.split('.')[0] == 'tensorflow')\n"
        "assert not _loaded, f'TensorFlow was imported: {_loaded[:5]}'\n"
    )
    script = _BLOCK_TENSORFLOW + textwrap.dedent(code) + check
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd or os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
