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
