"""Collects Keras's recurrent-layer test cases with kzoo's layers swapped in.

Each Keras test module is imported and its module-level `layers` name is
replaced (in this process only) by a namespace that answers kzoo's class for
the recurrent layers and cells and Keras's for everything else. The test methods look `layers` up when they
run, so they build kzoo layers; classes the file defines at import time
(its helper cells) keep Keras's base classes. See conftest.py for the
version pin and the exclusions.
"""

import importlib
import types

import keras
import keras.src.layers as keras_layers
import keras.src.testing
import pytest

import kzoo.layers

# The release whose test files (and expected numbers) are the spec; keep in
# step with the `keras==` pin in pyproject.toml.
KERAS_VERSION = "3.15.1"

if keras.__version__ != KERAS_VERSION:
    raise pytest.UsageError(
        f"tests/keras_spec runs the recurrent-layer tests shipped with "
        f"keras=={KERAS_VERSION} (pinned in pyproject.toml), but keras=="
        f"{keras.__version__} is installed. Install the pinned version "
        f"(pip install keras=={KERAS_VERSION}), or move the pin and "
        f"KERAS_VERSION together after reviewing the new test files and "
        f"the EXCLUDED list in tests/keras_spec/conftest.py."
    )

SWAPPED = (
    "RNN",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "StackedRNNCells",
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
)

MODULES = (
    "simple_rnn_test",
    "lstm_test",
    "gru_test",
    "rnn_test",
    "bidirectional_test",
    "stacked_rnn_cells_test",
    "dropout_rnn_cell_test",
)


class _KzooLayers(types.ModuleType):
    """`keras.src.layers` with the recurrent classes replaced by kzoo's."""

    def __getattr__(self, name):
        if name in SWAPPED:
            return getattr(kzoo.layers, name)
        return getattr(keras_layers, name)


LAYERS = _KzooLayers("kzoo_keras_spec_layers")


def _load(stem):
    # The installed module itself, not a copy: configs of the helper cells
    # name it as their module, and Keras deserializes only classes from
    # modules under `keras.`. Only this process's module object changes.
    module = importlib.import_module(f"keras.src.layers.rnn.{stem}")
    module.layers = LAYERS
    return module


for _stem in MODULES:
    _module = _load(_stem)
    for _name, _value in vars(_module).items():
        if (
            isinstance(_value, type)
            and issubclass(_value, keras.src.testing.TestCase)
            and _value.__module__ == _module.__name__
        ):
            globals()[f"{_stem}__{_name}"] = _value
del _module, _name, _value
