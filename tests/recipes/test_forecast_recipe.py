"""Smoke tests: `recipes/ner.py --quick` and `recipes/forecast.py --quick` run end to end."""

import importlib.util
import json
import math
import os

import keras
import numpy as np
import pytest

RECIPES = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")
BACKEND = keras.backend.backend()


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(
        f"recipe_{name}", os.path.join(RECIPES, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline_data(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def test_ner_quick(offline_data, tmp_path):
    out = tmp_path / "out"
    metrics = load_recipe("ner").main(["--quick", "--output-dir", str(out)])
    assert metrics["quick"] and metrics["sentences"] == {"train": 256, "valid": 64, "test": 64}
    assert metrics["epochs_run"] == 2
    for split in ("valid", "test"):
        scores = metrics[split]
        assert 0 <= scores["f1"] <= 1 and scores["support"] > 0
        assert set(scores["per_type"]) <= {"PER", "ORG", "LOC", "MISC"}
    assert len(metrics["sample"]["tags"]) == 9
    for name in ("ner_crf.keras", f"ner_crf_{BACKEND}.json", "ner_crf.md"):
        assert (out / name).is_file(), name
    assert json.loads((out / f"ner_crf_{BACKEND}.json").read_text())["test"] == metrics["test"]

    import kzoo.models.sequence_tagger  # noqa: F401  (registers the classes)

    tagger = keras.saving.load_model(out / "ner_crf.keras")
    assert tagger.predict([metrics["sample"]["sentence"]]) == [metrics["sample"]["tags"]]


def test_forecast_quick(offline_data, tmp_path):
    out = tmp_path / "out"
    results = load_recipe("forecast").main(["--quick", "--output-dir", str(out)])
    assert set(results) == {"sine", "airline", "temperatures"}
    for name, metrics in results.items():
        train_end, val_end = metrics["validation_steps"]
        test_start, test_end = metrics["test_steps"]
        assert metrics["train_steps"] == [0, train_end] and val_end == test_start < test_end
        for forecast in ("model", "seasonal_naive"):
            scores = metrics["test"][forecast]
            assert all(math.isfinite(scores[k]) and scores[k] >= 0 for k in ("mae", "rmse", "mase"))
            assert scores["rmse"] >= scores["mae"]
        for file_name in (f"forecast_{name}.keras", f"forecast_{name}_{BACKEND}.json",
                          f"forecast_{name}_{BACKEND}.png", f"forecast_{name}.md"):  # fmt: skip
            assert (out / file_name).stat().st_size > 0, file_name
        assert (out / f"forecast_{name}_{BACKEND}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import kzoo.models.forecaster  # noqa: F401

    model = keras.saving.load_model(out / "forecast_airline.keras")
    assert model.scaler == results["airline"]["model"]["scaler"]
    from kzoo.datasets import timeseries
    from kzoo.models.forecaster import calendar_features

    dates, values = timeseries.load_series("airline-passengers")
    forecast = model.forecast(values[:120], calendar_features(dates[:120]))
    np.testing.assert_allclose(model.forecast(values[:120], dates=dates[:120]), forecast, rtol=1e-6)
    assert forecast.shape == (12,) and np.all(np.isfinite(forecast)) and np.all(forecast > 0)
