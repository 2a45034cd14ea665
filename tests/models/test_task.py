"""`kzoo.models.task.Task` (task name, compile defaults, from_preset) and `kzoo.utils.optional`."""

import sys

import keras
import numpy as np
import pytest

from kzoo.models.task import Task
from kzoo.utils.optional import require


@keras.saving.register_keras_serializable(package="kzoo_tests")
class TinyRegressor(Task, keras.Model):
    task = "forecast"

    def __init__(self, units=2, **kwargs):
        inputs = keras.Input((3,))
        outputs = keras.layers.Dense(units)(inputs)
        super().__init__(inputs, outputs, **kwargs)
        self.units = units

    def compile_defaults(self):
        return {
            "optimizer": keras.optimizers.SGD(0.01),
            "loss": keras.losses.MeanSquaredError(),
            "metrics": [keras.metrics.MeanAbsoluteError(name="mae")],
        }

    def get_config(self):
        return {"name": self.name, "units": self.units}


def test_compile_uses_the_defaults_left_at_auto():
    model = TinyRegressor()
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert isinstance(model.loss, keras.losses.MeanSquaredError)
    model.compile(optimizer="adam")
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert isinstance(model.loss, keras.losses.MeanSquaredError)
    model.compile(loss="mae", metrics=[])
    assert model.loss == "mae"
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(logs) == {"loss"}


def test_saved_compile_settings_are_restored_on_load(tmp_path):
    model = TinyRegressor()
    model.compile(optimizer=keras.optimizers.Adam(0.125), loss="mae")
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    # Keras skips a custom `compile` on load unless `compile_from_config` is overridden.
    loaded = keras.saving.load_model(path)
    assert loaded.compiled
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)) == 0.125
    assert loaded.loss == "mae"


def test_task_names_are_checked():
    with pytest.raises(ValueError, match=r"`Bad.task` must be one of .*'forecast'.*task='regress'"):

        class Bad(Task, keras.Model):  # noqa: F841
            task = "regress"


def test_from_preset_refuses_another_class(tmp_path):
    path = str(tmp_path / "tiny.keras")
    TinyRegressor().save(path)
    assert isinstance(TinyRegressor.from_preset(path), TinyRegressor)

    class OtherTask(Task, keras.Model):
        task = "classify"

    with pytest.raises(TypeError, match=r"holds a TinyRegressor, not a OtherTask"):
        OtherTask.from_preset(path)


def test_require_names_the_extra(monkeypatch):
    import numpy

    monkeypatch.setitem(sys.modules, "onnx", numpy)  # an installed stand-in
    assert require("onnx", extra="export") is numpy
    # `None` in sys.modules: importing the module raises ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    monkeypatch.setitem(sys.modules, "keras_hub.samplers", None)  # even when imported before
    with pytest.raises(ImportError, match=r"beam search needs the package 'keras_hub'") as error:
        require("keras_hub", extra="hub", feature="beam search")
    assert str(error.value).endswith('Install it with: pip install "kzoo[hub]"')
    assert error.value.name == "keras_hub"
    with pytest.raises(ImportError, match=r"to import 'keras_hub.samplers'.*kzoo\[hub\]"):
        require("keras_hub.samplers", extra="hub")
    with pytest.raises(ValueError, match=r"`extra` must be one of .*Received: extra='hubb'"):
        require("keras_hub", extra="hubb")
    with pytest.raises(ValueError, match=r"installs \['keras_hub'\], not 'numpy'"):
        require("numpy", extra="hub")
