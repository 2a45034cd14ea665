"""Times kzoo LSTM/GRU layers (predict and train steps) with the process CPU clock.

Run with PYTHONPATH=<a kzoo checkout> to time that checkout's kzoo (see
compare_commits.sh). Settings: batch 32, 50 steps, 64 features, [Masking] ->
layer -> Dense(1); "masked" = right-padded rows of lengths in [25, 50]; median of
REPS calls after two warm-up calls. Env: KINDS ("LSTM GRU"), UNITS ("128 256"),
REPS (5). Prints one line: RESULT <json {case: milliseconds}>.
"""

import functools
import json
import os
import statistics
import time

import keras
import numpy as np

import kzoo

B, T, D = 32, 50, 64
rng = np.random.default_rng(0)
x = rng.standard_normal((B, T, D)).astype("float32")
lengths = rng.integers(T // 2, T + 1, B)
xp = x * (np.arange(T)[None, :, None] < lengths[:, None, None])
y = rng.standard_normal((B, 1)).astype("float32")
reps = int(os.environ.get("REPS", "5"))
out = {}
for kind in os.environ.get("KINDS", "LSTM GRU").split():
    for units in [int(u) for u in os.environ.get("UNITS", "128 256").split()]:
        for masked in (False, True):
            inputs = keras.Input((T, D))
            h = keras.layers.Masking(0.0)(inputs) if masked else inputs
            h = getattr(kzoo.layers, kind)(units)(h)
            model = keras.Model(inputs, keras.layers.Dense(1)(h))
            model.compile(optimizer="adam", loss="mse")
            data = xp if masked else x
            for mode in ("inference", "train"):
                if mode == "inference":
                    f = functools.partial(model.predict_on_batch, data)
                else:
                    f = functools.partial(model.train_on_batch, data, y)
                f()
                f()
                times = []
                for _ in range(reps):
                    t0 = time.process_time()
                    f()
                    times.append(time.process_time() - t0)
                out[f"{kind} {units} {mode} {'masked' if masked else 'unmasked'}"] = (
                    statistics.median(times) * 1e3
                )
print("RESULT", json.dumps(out))
