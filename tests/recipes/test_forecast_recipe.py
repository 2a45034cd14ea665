"""`recipes/forecast.py`: killed mid-epoch and resumed, it ends as an uninterrupted run."""

import json
import math
import os

import keras
import numpy as np
import pytest

import kzoo.models
from kzoo.datasets import timeseries
from tests.recipes.kill_resume import assert_same_metrics, check_kill_and_resume
from tests.recipes.recipe_module import assert_model_card, load_recipe, set_flags

BACKEND = keras.backend.backend()


# Two of the three stages, tiny: sine (90 training windows, 12 batches of 8)
# and airline (61 windows, 8 batches), 3 epochs each; the kill falls in the
# 2nd epoch of airline, so the resumed run skips the finished sine stage.
ARGV = ["--quick", *set_flags(
    datasets="sine,airline", sine_length=200, sine_epochs=3, airline_epochs=3,
    sine_batch_size=8, airline_batch_size=8, units=8, learning_rate=0.01,
)]  # fmt: skip
SINE_BATCHES, AIRLINE_BATCHES = 3 * 12, 8


def test_forecast_kill_resume_and_publish(offline_data, tmp_path, monkeypatch, capsys):
    metrics, output = check_kill_and_resume(
        "forecast.py", ARGV, tmp_path, kill_after_batches=SINE_BATCHES + AIRLINE_BATCHES + 4
    )
    assert list(metrics) == ["sine", "airline"]
    for name, scores in metrics.items():
        assert scores["epochs_run"] == 3 and 1 <= scores["best_epoch"] <= 3
        validation = scores["validation"]
        # Three epochs of an 8-unit model learn something: clearly better than at the start.
        assert validation["mae"] < 0.9 * validation["untrained_mae"], (name, validation)
        for forecast in ("model", "seasonal_naive"):
            errors = scores["test"][forecast]
            assert all(math.isfinite(errors[k]) and errors[k] >= 0 for k in errors)
            assert errors["rmse"] >= errors["mae"]
    assert metrics["airline"]["splits"] == {
        "train": [0, 96], "validation": [96, 120], "test": [120, 144]
    }  # fmt: skip
    resumed_part = output.split("=== resumed run", 1)[1]
    assert resumed_part.count("Resuming from epoch") == 2  # sine finished, airline at 1

    # Run again with --publish: nothing left to train; the files go to saved_models/
    # (relative to the working folder), under the shipped names.
    monkeypatch.chdir(tmp_path)
    resumed = tmp_path / "resumed"
    again = load_recipe("forecast.py").main([*ARGV, "--output-dir", str(resumed), "--publish"])
    assert_same_metrics(metrics, again)  # evaluated again in this process: float noise
    printed = capsys.readouterr().out
    assert printed.count("Resuming from epoch 3") == 2
    assert json.loads((resumed / "metrics.json").read_text()) == again
    published = tmp_path / "saved_models"
    for name in metrics:
        for file_name in (f"forecast_{name}.keras", f"forecast_{name}.md",
                          f"forecast_{name}_{BACKEND}.json", f"forecast_{name}_{BACKEND}.png"):  # fmt: skip
            assert (published / file_name).stat().st_size > 0, file_name
            assert os.path.join("saved_models", file_name) in printed  # in the summary
        assert "--publish" in assert_model_card(published / f"forecast_{name}.md")
    assert (published / f"forecast_sine_{BACKEND}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    model = kzoo.models.load(published / "forecast_airline.keras")
    dates, values = timeseries.load_series("airline-passengers")
    forecast = model.forecast(values[:120], dates=dates[:120])
    assert forecast.shape == (12,) and np.all(np.isfinite(forecast)) and np.all(forecast > 0)
    airline = json.loads((published / f"forecast_airline_{BACKEND}.json").read_text())
    assert airline == again["airline"]


def test_forecast_help_lists_every_setting(capsys):
    with pytest.raises(SystemExit) as info:
        load_recipe("forecast.py").main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--airline-epochs AIRLINE_EPOCHS" in text and "(default: 400; --quick: 60)" in text
    assert "split 70/15/15%" in text and "--publish" in text
