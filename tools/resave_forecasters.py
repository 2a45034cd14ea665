"""Re-saves saved_models/forecast_*.keras in the Forecaster's backbone/preprocessor layout.

The shipped forecasters were saved when `Forecaster` was one flat functional
model (`StackedRNN` then `Dense`, argument `cell`). Now its recurrent stack is
a nested `ForecasterBackbone`, the argument is `cell_type`, and models trained
with calendar covariates say so (`calendar="monthly"` or `"daily"`), so that
`forecast(series, dates=...)` makes the covariates. This script reads each
old file's config, loads its weights into the old flat layout, builds the new
`Forecaster` with the same weights, checks that both give the same outputs on
random windows, and only then replaces the file (atomic write, no optimizer
state). Then it refreshes the preset hashes (`tools/update_presets.py`).

    KERAS_BACKEND=tensorflow python tools/resave_forecasters.py

A file already in the new layout is left as it is.
"""

import json
import os
import sys
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SAVED = os.path.join(ROOT, "saved_models")
# Which shipped models were trained with calendar covariates (recipes/forecast.py).
CALENDARS = {"forecast_airline": "monthly", "forecast_sine": None, "forecast_temperatures": "daily"}


def old_layout(config):
    """The flat functional model the old files were saved from (same weight paths)."""
    import keras

    from kzoo.layers import StackedRNN

    inputs = keras.Input((config["window"], 1 + config["num_covariates"]))
    hidden = StackedRNN(
        config["units"],
        config["num_layers"],
        config["cell"],
        dropout=config["dropout"],
        seed=config["seed"],
    )(inputs)
    outputs = keras.layers.Dense(config["horizon"] if config["strategy"] == "direct" else 1)(hidden)
    return keras.Model(inputs, outputs)


def resave(name):
    import keras

    from kzoo.models import Forecaster
    from kzoo.utils import save_model

    path = os.path.join(SAVED, f"{name}.keras")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))["config"]
    if "cell_type" in config:
        print(f"{name}: already in the new layout")
        return False
    old = old_layout(config)
    old.load_weights(path)
    new_config = {k: v for k, v in config.items() if k not in ("cell", "trainable")}
    new = Forecaster(cell_type=config["cell"], calendar=CALENDARS[name], **new_config)
    new.backbone.set_weights(old.layers[1].get_weights())
    new.get_layer("forecast").set_weights(old.layers[2].get_weights())
    x = np.random.default_rng(0).normal(size=(8, *old.input_shape[1:])).astype("float32")
    expected = keras.ops.convert_to_numpy(old(x))
    got = keras.ops.convert_to_numpy(new(x))
    if not np.array_equal(expected, got):
        raise RuntimeError(f"{name}: the re-built model's outputs differ; file left as it was.")
    save_model(new, path)
    reloaded = keras.saving.load_model(path, compile=False)
    if not np.array_equal(keras.ops.convert_to_numpy(reloaded(x)), expected):
        raise RuntimeError(f"{name}: the re-saved file gives other outputs.")
    print(f"{name}: re-saved ({new.get_config()['cell_type']}, calendar={CALENDARS[name]})")
    return True


def main():
    changed = [resave(name) for name in sorted(CALENDARS)]
    if any(changed):
        from tools.update_presets import main as update_presets

        return update_presets([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
