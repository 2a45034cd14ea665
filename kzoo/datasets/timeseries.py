"""Univariate time series (CSV files of Jason Brownlee's dataset mirror).

- `"airline-passengers"`: monthly international airline passengers in
  thousands, 1949-01 to 1960-12, 144 rows (Box & Jenkins series G).
- `"daily-min-temperatures"`: daily minimum temperature in Melbourne (deg C),
  1981-1990, 3,650 rows.
- `"monthly-sunspots"`: Zurich monthly mean sunspot numbers, 1749-01 to
  1983-12, 2,820 rows.

Plus `sine_wave`, a synthetic noisy sine for quick experiments.
"""

import csv
import io
import math

import numpy as np

from kzoo.datasets._download import check_split_size, fetch, read_text

ORIGIN = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/{name}.csv"
SERIES = ("airline-passengers", "daily-min-temperatures", "monthly-sunspots")


def load_series(name, path=None):
    """Loads a series as its dates and values.

    Args:
        name: one of `SERIES`.
        path: a CSV file (header row, then `date,value` rows) to read instead.
            Default: downloaded into (or found in) the Keras cache; see
            `kzoo.datasets._download.fetch` for `KZOO_DATA_DIR`.

    Returns:
        `(dates, values)`: a NumPy str array of the dates as written in the
        file (e.g. `"1949-01"`) and a float32 array.

    Example:
        >>> dates, values = load_series("airline-passengers")
        >>> dates[0], values[0]
        ('1949-01', 112.0)
    """
    if name not in SERIES:
        raise ValueError(f"Unknown series {name!r}; expected one of {list(SERIES)}.")
    file_path = fetch(
        f"{name}.csv",
        ORIGIN.format(name=name),
        local_name=f"timeseries/{name}.csv",
        path=path,
    )
    dates, values = parse_csv(read_text(file_path), source=file_path)
    if path is None:  # the cached file, not a user's own copy
        check_split_size("timeseries", name, len(values), "rows", file_path)
    return dates, values


def parse_csv(text, source="<text>"):
    """Parses a two-column CSV with a header row into `(dates, values)`.

    Raises:
        ValueError: a row without exactly two fields, or a value that is not a
            finite number; the message names the file and the line.
    """
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or len(header) != 2:
        raise ValueError(f"{source}: expected a header row of 2 columns, got {header}")
    dates, values = [], []
    for row in rows:
        line = rows.line_num
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != 2:
            raise ValueError(f"{source}, line {line}: expected 2 fields, got {row}")
        try:
            value = float(row[1])
        except ValueError:
            raise ValueError(f"{source}, line {line}: value {row[1]!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{source}, line {line}: value {row[1]!r} is not finite")
        dates.append(row[0].strip())
        values.append(value)
    if not values:
        raise ValueError(f"{source}: no data rows")
    return np.asarray(dates, dtype=str), np.asarray(values, dtype="float32")


def sine_wave(n, period=50.0, amplitude=1.0, phase=0.0, noise=0.1, seed=None):
    """A noisy sine: `amplitude * sin(2 pi t / period + phase) + noise * e_t`.

    `t = 0, 1, ..., n - 1` and `e_t` are independent standard normal draws.

    Args:
        n: number of time steps (int >= 1).
        period: steps per cycle (> 0).
        amplitude: peak of the clean sine.
        phase: phase shift in radians.
        noise: standard deviation of the added Gaussian noise (>= 0).
        seed: seed of the NumPy generator drawing the noise.

    Returns:
        A float32 array of shape `(n,)`.

    Example:
        >>> series = sine_wave(1000, period=40, noise=0.05, seed=0)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be an int >= 1. Received: n={n!r}")
    _check_number("period", period, minimum=0.0, strict=True)
    _check_number("noise", noise, minimum=0.0, strict=False)
    _check_number("amplitude", amplitude)
    _check_number("phase", phase)
    t = np.arange(n, dtype="float64")
    clean = amplitude * np.sin(2.0 * np.pi * t / period + phase)
    eps = np.random.default_rng(seed).standard_normal(n)
    return (clean + noise * eps).astype("float32")


def _check_number(name, value, minimum=None, strict=False):
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = ""
        if minimum is not None:
            bound = f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"`{name}` must be a finite number{bound}. Received: {name}={value!r}")
