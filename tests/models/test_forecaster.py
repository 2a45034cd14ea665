"""Forecaster: windowing without leakage, scaling, learning, save/load, errors."""

import os

import keras
import numpy as np
import pytest

from kzoo.metrics import mae, mase, rmse
from kzoo.models.forecaster import (
    Forecaster,
    ForecasterBackbone,
    calendar_features,
    make_windows,
    next_dates,
    seasonal_naive,
)

TOL = 1e-5


def test_windows_have_no_leakage():
    series = np.arange(100, 160, dtype="float64")  # value = 100 + time: values name their time
    covariates = np.stack([np.arange(60) * 10.0, -np.arange(60.0)], axis=-1)
    inputs, targets, origins = make_windows(series, 7, 4, covariates, start=20, end=50)
    assert inputs.shape == (27, 7, 3) and targets.shape == (27, 4)
    np.testing.assert_array_equal(origins, np.arange(20, 47))
    for x, y, t in zip(inputs, targets, origins):
        input_times = x[:, 0] - 100
        target_times = y - 100
        assert not set(input_times) & set(target_times)
        assert input_times.max() < target_times.min()  # strictly before
        np.testing.assert_array_equal(input_times, np.arange(t - 7, t))
        np.testing.assert_array_equal(target_times, np.arange(t, t + 4))
        np.testing.assert_array_equal(x[:, 1], input_times * 10)  # covariates of input times
        np.testing.assert_array_equal(x[:, 2], -input_times)
    assert targets.min() - 100 >= 20 and targets.max() - 100 < 50  # inside [start, end)


def test_default_windows_cover_series():
    inputs, targets, origins = make_windows(np.arange(10.0), window=3, horizon=2)
    np.testing.assert_array_equal(origins, np.arange(3, 9))
    np.testing.assert_array_equal(inputs[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(targets[-1], [8, 9])


@pytest.mark.parametrize("transform", [None, "log"])
@pytest.mark.parametrize("level", ["mean", "last"])
def test_scaling_round_trips(transform, level):
    rng = np.random.default_rng(0)
    train = rng.uniform(50, 400, size=120)
    model = Forecaster(window=6, horizon=3, units=2, transform=transform, level=level)
    model.adapt(train)
    u = np.log(train) if transform == "log" else train
    assert model.scaler["mean"] == pytest.approx(np.mean(u), rel=1e-12)
    assert model.scaler["std"] == pytest.approx(np.std(u), rel=1e-12)
    windows = rng.uniform(50, 400, size=(5, 6))
    pre = model.preprocessor
    ref = pre.reference_of(windows)
    expected_ref = (
        (np.log(windows[:, -1:]) if transform == "log" else windows[:, -1:])
        if level == "last"
        else np.full((5, 1), np.mean(u))
    )
    np.testing.assert_allclose(ref, expected_ref, rtol=1e-12)
    scaled = pre.scale(windows, ref)
    uw = np.log(windows) if transform == "log" else windows
    np.testing.assert_allclose(scaled, (uw - expected_ref) / np.std(u), rtol=1e-12)
    np.testing.assert_allclose(pre.unscale(scaled, ref), windows, rtol=1e-12)


def test_scaling_is_saved_with_the_model(tmp_path):
    rng = np.random.default_rng(1)
    series = 100 + 10 * np.sin(np.arange(80) / 3) + rng.normal(size=80)
    model = Forecaster(window=8, horizon=2, units=4, transform="log", level="last", seed=0)
    model.adapt(series[:60])
    expected = model.forecast(series[:70])
    path = os.path.join(tmp_path, "forecaster.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Forecaster)
    assert loaded.scaler == model.scaler and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.forecast(series[:70]), expected, rtol=TOL)


@pytest.mark.parametrize("strategy", ["direct", "autoregressive"])
def test_learns_identity_on_constant_series(strategy):
    # The scaler is left at the identity, so the network itself has to learn
    # to output the constant it reads.
    value = 2.5
    series = np.full(40, value)
    model = Forecaster(window=4, horizon=3, strategy=strategy, units=4, seed=0)
    x, y = model.windows(series)
    assert y.shape[1] == (3 if strategy == "direct" else 1)
    model.compile(keras.optimizers.Adam(0.05), "mse", metrics=[])  # evaluate: the loss only
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=150, batch_size=len(x), verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 1e-3 < before
    forecast = model.forecast(series)
    assert forecast.shape == (3,)  # a 1-D series gives (horizon,)
    np.testing.assert_allclose(forecast, value, atol=0.05)


def test_autoregressive_feeds_predictions_back():
    rng = np.random.default_rng(2)
    series = rng.normal(size=30)
    covariates = rng.normal(size=(34, 1))
    model = Forecaster(
        window=5, horizon=4, num_covariates=1, strategy="autoregressive", units=3, seed=0
    )
    model.adapt(series)
    forecast = model.forecast(series, covariates[:30], future_covariates=covariates[30:34])
    # Reference: one-step model applied by hand, the window sliding over
    # its own predictions and the known future covariates.
    mean, std = model.scaler["mean"], model.scaler["std"]
    z = list((series[-5:] - mean) / std)
    cov = list(covariates[25:30, 0])
    expected = []
    for h in range(4):
        x = np.stack([z[-5:], cov[-5:]], axis=-1)[None].astype("float32")
        step = float(keras.ops.convert_to_numpy(model(x))[0, 0])
        expected.append(step * std + mean)
        z.append(step)
        cov.append(covariates[30 + h, 0])
    np.testing.assert_allclose(forecast, expected, rtol=TOL, atol=TOL)


def test_rolling_forecast_sees_only_the_past():
    rng = np.random.default_rng(3)
    series = rng.normal(size=50)
    model = Forecaster(window=6, horizon=3, units=3, seed=0)
    model.adapt(series[:30])
    forecasts, targets, origins = model.rolling_forecast(series, start=35)
    np.testing.assert_array_equal(origins, np.arange(35, 48))
    np.testing.assert_allclose(targets, series[origins[:, None] + np.arange(3)], rtol=1e-6)
    # Changing the future (from origin 40 on) leaves earlier forecasts alone.
    changed = series.copy()
    changed[40:] = 1e3
    again, _, _ = model.rolling_forecast(changed, start=35)
    np.testing.assert_allclose(again[:6], forecasts[:6], rtol=TOL)
    np.testing.assert_allclose(forecasts[5], model.forecast(series[:40]), rtol=TOL)


def test_bad_inputs_give_clear_errors():
    series = np.arange(20.0)
    with_nan = series.copy()
    with_nan[7] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite.*index 7"):
        make_windows(with_nan, 3, 2)
    for horizon in (0, -2):
        with pytest.raises(ValueError, match="horizon"):
            make_windows(series, 3, horizon)
        with pytest.raises(ValueError, match="horizon"):
            Forecaster(window=3, horizon=horizon)
    with pytest.raises(ValueError, match="window"):
        Forecaster(window=0)
    with pytest.raises(ValueError, match="Not enough data.*window=30.*series has 20"):
        make_windows(series, 30, 1)
    model = Forecaster(window=5, horizon=2, units=2)
    with pytest.raises(ValueError, match="NaN"):
        model.adapt(with_nan)
    with pytest.raises(ValueError, match="NaN"):
        model.forecast(with_nan)
    with pytest.raises(ValueError, match="time >= window=5"):
        model.forecast(series[:3])
    with pytest.raises(ValueError, match="num_covariates=0"):
        model.windows(series, covariates=np.ones((20, 2)))
    with pytest.raises(ValueError, match="positive series"):
        Forecaster(window=5, transform="log").adapt(series)  # contains 0
    with pytest.raises(ValueError, match="strategy"):
        Forecaster(window=5, strategy="recursive")
    with pytest.raises(ValueError, match="scaler"):
        Forecaster(window=5, scaler={"mean": 0.0, "std": 0.0})


def test_seasonal_naive_and_metrics_match_definitions():
    series = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 8.0, 6.0, 9.0, 7.0, 12.0])
    naive = seasonal_naive(series, origins=[4, 6], horizon=3, season=2)
    # h = 0, 1 repeat lag 2; h = 2 repeats lag 4 (two seasons back)
    np.testing.assert_array_equal(naive, [[2.0, 5.0, 2.0], [4.0, 8.0, 4.0]])
    y_true = np.array([[4.0, 8.0, 6.0], [6.0, 9.0, 7.0]])
    assert mae(y_true, naive) == pytest.approx(np.mean([2, 3, 4, 2, 1, 3]))
    assert rmse(y_true, naive) == pytest.approx(np.sqrt(np.mean([4, 9, 16, 4, 1, 9])))
    train = series[:6]  # in-sample seasonal naive errors |x_t - x_{t-2}|: 1, 2, 2, 3
    assert mase(y_true, naive, train, 2) == pytest.approx(np.mean([2, 3, 4, 2, 1, 3]) / 2.0)
    with pytest.raises(ValueError, match="one season"):
        seasonal_naive(series, origins=[1], horizon=1, season=2)


def test_calendar_features():
    monthly = calendar_features(["1949-01", "1949-04", "1950-12"])
    angles = 2 * np.pi * np.array([1, 4, 12]) / 12
    np.testing.assert_allclose(monthly, np.stack([np.sin(angles), np.cos(angles)], -1), atol=TOL)
    daily = calendar_features(["1981-01-01", "1981-02-01", "1984-12-31"])
    angles = 2 * np.pi * np.array([1, 32, 366]) / 365.25
    np.testing.assert_allclose(daily, np.stack([np.sin(angles), np.cos(angles)], -1), atol=TOL)


def test_next_dates():
    np.testing.assert_array_equal(
        next_dates(["1960-11", "1960-12"], 2), np.array(["1961-01", "1961-02"], "datetime64[M]")
    )
    np.testing.assert_array_equal(
        next_dates(["1990-12-30", "1990-12-31"], 1), np.array(["1991-01-01"], "datetime64[D]")
    )


@pytest.mark.parametrize("strategy", ["direct", "autoregressive"])
def test_dates_make_the_calendar_covariates(strategy):
    """`forecast(dates=...)` equals passing the calendar features of past and future dates."""
    rng = np.random.default_rng(4)
    dates = np.arange("1950-01", "1953-01", dtype="datetime64[M]").astype(str)  # 36 months
    series = 100 + 20 * np.sin(np.arange(36) / 2) + rng.normal(size=36)
    model = Forecaster(window=12, horizon=4, num_covariates=2, calendar="monthly",
                       strategy=strategy, units=3, seed=0)  # fmt: skip
    model.adapt(series)
    calendar = calendar_features(dates)
    future = calendar_features(next_dates(dates, 4))
    expected = model.forecast(series, calendar, future_covariates=future)
    np.testing.assert_allclose(model.forecast(series, dates=dates), expected, rtol=TOL)
    x, _ = model.windows(series, dates=dates)
    np.testing.assert_array_equal(x, model.windows(series, calendar)[0])
    batch = model.forecast(np.stack([series, series[::-1]]), dates=np.stack([dates, dates]))
    assert batch.shape == (2, 4)
    np.testing.assert_allclose(batch[0], expected, rtol=TOL)
    with pytest.raises(ValueError, match=r"pass `dates` to make its monthly calendar"):
        model.forecast(series)
    with pytest.raises(ValueError, match="'YYYY-MM' dates"):
        model.forecast(series, dates=np.arange("1950-01-01", "1950-02-06", dtype="datetime64[D]"))
    with pytest.raises(ValueError, match="one date per step"):
        model.forecast(series, dates=dates[:-1])
    with pytest.raises(ValueError, match="num_covariates` must be >= 2"):
        Forecaster(window=3, calendar="daily")
    plain = Forecaster(window=12, horizon=2, units=2)
    with pytest.raises(ValueError, match="calendar=None"):
        plain.forecast(series, dates=dates)


def test_config_round_trip_and_old_cell_name():
    model = Forecaster(window=5, horizon=2, cell_type="gru", units=3, calendar="daily",
                       num_covariates=3, seed=1)  # fmt: skip
    config = model.get_config()
    assert config["cell_type"] == "gru" and config["calendar"] == "daily" and "cell" not in config
    assert Forecaster.from_config(config).get_config() == config
    old = {k: v for k, v in config.items() if k not in ("cell_type", "calendar")}
    old["cell"] = "gru"  # files saved before the rename
    assert Forecaster.from_config(old).get_config()["cell_type"] == "gru"
    assert isinstance(model.backbone, ForecasterBackbone)
    assert model.count_params() == model.backbone.count_params() + 3 * 2 + 2
    with pytest.raises(ValueError, match="cell_type"):
        Forecaster(window=5, cell_type="transformer")


def test_compile_defaults():
    model = Forecaster(window=4, horizon=2, units=2, seed=0)
    model.compile()
    assert isinstance(model.loss, keras.losses.MeanSquaredError)
    x, y = model.windows(np.arange(20.0))
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(logs) == {"loss", "mae"}
