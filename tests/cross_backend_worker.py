"""Runs one backend's half of tests/test_cross_backend.py in its own process.

Usage: KERAS_BACKEND=<name> python -m tests.cross_backend_worker WORKDIR [OTHER_BACKEND ...]

Builds the reference model with the weights in WORKDIR/weights.npz, saves
its outputs and a `.keras` file under the backend's name, and loads the
`.keras` files saved by the other backends named on the command line.
"""

import os
import sys

import keras
import numpy as np

import kzoo


def build_model():
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(30, 6, mask_zero=True)(ids)
    x = kzoo.layers.Bidirectional(kzoo.layers.LSTM(5, return_sequences=True))(x)
    x = kzoo.layers.GRU(4, return_sequences=True, reset_after=False)(x)
    x = kzoo.layers.RNN([kzoo.layers.SimpleRNNCell(3), kzoo.layers.LSTMCell(3, layer_norm=True)])(x)
    return keras.Model(ids, keras.layers.Dense(2)(x))


def main(workdir, others):
    backend = keras.backend.backend()
    data = np.load(os.path.join(workdir, "weights.npz"))
    model = build_model()
    weights = [data[f"w{i}"] for i in range(len(model.weights))]
    model.set_weights(weights)
    ids = data["ids"]
    results = {backend: model.predict(ids, verbose=0)}
    model.save(os.path.join(workdir, f"{backend}.keras"))
    for other in others:
        loaded = keras.models.load_model(os.path.join(workdir, f"{other}.keras"))
        results[f"{other}_loaded"] = loaded.predict(ids, verbose=0)
    np.savez(os.path.join(workdir, f"out_{backend}_{len(others)}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
