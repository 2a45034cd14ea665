import numpy as np
import pytest

from kzoo.datasets import timeseries

# Quoted header, CRLF line ends, no newline after the last row: as shipped.
CSV = '"Month","Passengers"\r\n"1949-01",112\r\n"1949-02",118.5\r\n"1949-03",132'


def test_seeded_csv(offline, data_dir):
    (data_dir / "timeseries").mkdir()
    (data_dir / "timeseries" / "airline-passengers.csv").write_text(CSV, newline="")
    dates, values = timeseries.load_series("airline-passengers")
    assert dates.tolist() == ["1949-01", "1949-02", "1949-03"]
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, [112.0, 118.5, 132.0])
    assert (offline.datasets / "timeseries" / "airline-passengers.csv").exists()
    assert offline.attempts == []


def test_local_file_with_trailing_newlines(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text('"Date","Temp"\n"1981-01-01",20.7\n"1981-01-02",17.9\n\n')
    dates, values = timeseries.load_series("daily-min-temperatures", path=path)
    assert dates.tolist() == ["1981-01-01", "1981-01-02"]
    np.testing.assert_allclose(values, [20.7, 17.9], rtol=1e-6)


@pytest.mark.parametrize(
    "row, message",
    [
        ('"1949-02",NaN', r"line 3: value 'NaN' is not finite"),
        ('"1949-02",inf', r"line 3: value 'inf' is not finite"),
        ('"1949-02",?', r"line 3: value '\?' is not a number"),
        ('"1949-02",', r"line 3: value '' is not a number"),
        ('"1949-02",1,2', r"line 3: expected 2 fields"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f'"Month","Passengers"\n"1949-01",112\n{row}\n"1949-03",3')
    with pytest.raises(ValueError, match=message) as info:
        timeseries.load_series("airline-passengers", path=path)
    assert "bad.csv" in str(info.value)


def test_bad_header_and_empty(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('"Month"\n"1949-01"\n')
    with pytest.raises(ValueError, match="header"):
        timeseries.load_series("airline-passengers", path=path)
    path.write_text('"Month","Passengers"\n')
    with pytest.raises(ValueError, match="no data rows"):
        timeseries.load_series("airline-passengers", path=path)


def test_unknown_name():
    with pytest.raises(ValueError, match="'airline'.*airline-passengers"):
        timeseries.load_series("airline")


def test_sine_wave_matches_reference():
    n, period, amplitude, phase, noise = 200, 17.0, 2.5, 0.3, 0.2
    series = timeseries.sine_wave(
        n, period=period, amplitude=amplitude, phase=phase, noise=noise, seed=5
    )
    t = np.arange(n, dtype=np.float64)
    eps = np.random.default_rng(5).standard_normal(n)
    expected = amplitude * np.sin(2 * np.pi * t / period + phase) + noise * eps
    assert series.dtype == np.float32 and series.shape == (n,)
    np.testing.assert_allclose(series, expected, rtol=1e-5, atol=1e-5)
    clean = timeseries.sine_wave(8, period=4, noise=0.0)
    np.testing.assert_allclose(clean, [0, 1, 0, -1, 0, 1, 0, -1], atol=1e-6)
    np.testing.assert_array_equal(
        timeseries.sine_wave(50, seed=1), timeseries.sine_wave(50, seed=1)
    )
    assert not np.array_equal(timeseries.sine_wave(50, seed=1), timeseries.sine_wave(50, seed=2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "`n`"),
        ({"n": 5.0}, "`n`"),
        ({"n": 5, "period": 0}, "`period`"),
        ({"n": 5, "period": float("nan")}, "`period`"),
        ({"n": 5, "noise": -0.1}, "`noise`"),
        ({"n": 5, "amplitude": float("inf")}, "`amplitude`"),
    ],
)
def test_sine_wave_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timeseries.sine_wave(**kwargs)


@pytest.mark.parametrize(
    "name, rows, first, last, low, high, mean",
    [
        ("airline-passengers", 144, "1949-01", "1960-12", 104.0, 622.0, 280.30),
        ("daily-min-temperatures", 3650, "1981-01-01", "1990-12-31", 0.0, 26.3, 11.18),
        ("monthly-sunspots", 2820, "1749-01", "1983-12", 0.0, 253.8, None),
    ],
)
def test_shared_copies(offline, shared_env, name, rows, first, last, low, high, mean):
    dates, values = timeseries.load_series(name)
    assert len(dates) == len(values) == rows
    assert (dates[0], dates[-1]) == (first, last)
    np.testing.assert_allclose([values.min(), values.max()], [low, high], rtol=1e-6)
    if mean is not None:
        assert round(float(values.astype(np.float64).mean()), 2) == mean
    assert offline.attempts == []
