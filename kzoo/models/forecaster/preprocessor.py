"""Raw series <-> network arrays for `Forecaster`: scaling, windows, calendar covariates.

Everything here runs on the host in NumPy (float64) before and after the
network: `ForecasterPreprocessor` holds the scaling fitted on the training
period and the calendar the model was trained with; `make_windows` cuts a
series into (past, future) pairs without leakage; `calendar_features` and
`next_dates` make the calendar covariates from dates.
"""

import math

import numpy as np

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_finite_array, check_int

TRANSFORMS = (None, "log")
LEVELS = ("mean", "last")
# Calendar covariates: the date unit they are made from and their number of columns.
CALENDARS = {"monthly": "M", "daily": "D"}
CALENDAR_COLUMNS = 2


def as_series(values, name="series"):
    """A finite 1-D float64 array, or a ValueError naming `name`."""
    array = check_finite_array(values, name)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D (time,). Received shape {array.shape}.")
    return array


def as_covariates(covariates, length, name="covariates"):
    """Covariates as a finite `(length, c)` array (`(length, 0)` for None)."""
    if covariates is None:
        return np.zeros((length, 0))
    array = check_finite_array(covariates, name)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != length:
        raise ValueError(
            f"`{name}` must have shape ({length}, num_covariates), one row per time "
            f"step of the series. Received shape {array.shape}."
        )
    return array


def make_windows(series, window, horizon, covariates=None, start=None, end=None):
    """Cuts a series into (past window, next `horizon` values) pairs.

    Sample `i` has inputs at times `t - window .. t - 1` and targets at times
    `t .. t + horizon - 1` for the forecast origin `t = start + i`; a target
    time is never an input time of the same sample.

    Args:
        series: 1-D array of values (no NaN).
        window: int >= 1, number of past steps the model sees.
        horizon: int >= 1, number of future steps to predict.
        covariates: optional `(time, c)` array aligned with `series`; its rows
            at the input times are appended to the values as extra features.
        start: first forecast origin (default `window`). Use the first index
            of a validation or test period: inputs may come from before it,
            targets never do.
        end: exclusive end of the targets (default `len(series)`).

    Returns:
        `(inputs, targets, origins)`: float32 arrays of shapes
        `(n, window, 1 + c)` and `(n, horizon)`, and the int origins `(n,)`.

    Raises:
        ValueError: NaN in the data, `window` or `horizon` < 1, or not enough
            data for one window (the message gives the lengths).

    Example:

    >>> x, y, t = make_windows(np.arange(10.0), window=3, horizon=2)
    >>> x[0, :, 0], y[0]
    (array([0., 1., 2.], dtype=float32), array([3., 4.], dtype=float32))
    """
    values = as_series(series)
    window = check_int(window, "window", minimum=1)
    horizon = check_int(horizon, "horizon", minimum=1)
    extra = as_covariates(covariates, len(values))
    start = window if start is None else check_int(start, "start", minimum=window)
    end = len(values) if end is None else check_int(end, "end", minimum=1)
    if end > len(values):
        raise ValueError(f"`end`={end} is past the end of the series (length {len(values)}).")
    count = end - horizon - start + 1
    if count < 1:
        raise ValueError(
            f"Not enough data for one window: window={window} + horizon={horizon} "
            f"need {window + horizon} steps, but the series has {len(values)} "
            f"(forecast origins from {start}, targets before {end})."
        )
    origins = np.arange(start, start + count)
    past = origins[:, None] + np.arange(-window, 0)[None, :]  # (n, window)
    future = origins[:, None] + np.arange(horizon)[None, :]  # (n, horizon)
    inputs = np.concatenate([values[past][..., None], extra[past]], axis=-1)
    return inputs.astype("float32"), values[future].astype("float32"), origins


def _parse_dates(dates, name="dates"):
    try:
        parsed = np.asarray(dates, dtype="datetime64")  # unit inferred: [M] or [D]
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"`{name}` must be ISO dates, 'YYYY-MM' or 'YYYY-MM-DD' strings: {e}"
        ) from None
    unit = np.datetime_data(parsed.dtype)[0]
    if unit not in ("M", "D"):
        raise ValueError(
            f"`{name}` must be 'YYYY-MM' (monthly) or 'YYYY-MM-DD' (daily) dates. Received "
            f"dates parsed with unit {unit!r}, e.g. {str(parsed.reshape(-1)[:1])}."
        )
    return parsed


def calendar_features(dates):
    """Cyclic calendar features of ISO dates: sin/cos of the month or day of year.

    Args:
        dates: strings `"YYYY-MM"` (monthly: 2 columns, month of year) or
            `"YYYY-MM-DD"` (daily: 2 columns, day of year), or `datetime64`
            values of unit month or day; any shape.

    Returns:
        float32 array `dates.shape + (2,)` in [-1, 1].

    Example:

    >>> calendar_features(["1949-01", "1949-07"]).round(3)
    array([[ 0.5  ,  0.866],
           [-0.5  , -0.866]], dtype=float32)
    """
    parsed = _parse_dates(dates)
    if np.datetime_data(parsed.dtype)[0] == "M":
        month_of_year = parsed.astype(int) % 12  # 0..11, since 1970-01
        angle = 2 * np.pi * (month_of_year + 1) / 12.0
    else:
        day_of_year = (parsed - parsed.astype("datetime64[Y]")).astype(int)  # 0..365
        angle = 2 * np.pi * (day_of_year + 1) / 365.25
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1).astype("float32")


def next_dates(dates, steps):
    """The `steps` dates after the last of `dates` (along the last axis), same unit.

    Example:

    >>> next_dates(["1960-11", "1960-12"], 2)
    array(['1961-01', '1961-02'], dtype='datetime64[M]')
    """
    parsed = _parse_dates(dates)
    return parsed[..., -1:] + np.arange(1, steps + 1)


@register_serializable
class ForecasterPreprocessor:
    """Scaling and calendar covariates of a `Forecaster`, fitted on training data.

    Values are transformed and scaled before the network sees them:

        u = log(x) if transform == "log" else x
        z = (u - ref) / std

    where `ref` is the training mean of `u` (`level="mean"`) or the last input
    value of each window (`level="last"`, which lets the forecast follow a
    trend the training data never reached). Forecasts are mapped back with
    the inverse. `mean` and `std` come from `adapt` on the training series.

    Args:
        transform: `None` or `"log"` (positive series only).
        level: `"mean"` or `"last"`, see above.
        scaler: dict `{"mean": float, "std": float}`; default identity. Set
            by `adapt`.
        calendar: `None`, `"monthly"` or `"daily"`: the model's first two
            covariates are `calendar_features` of the dates (month of year or
            day of year), which `calendar_covariates` makes from dates.

    Example:

    >>> pre = ForecasterPreprocessor(transform="log", level="last").adapt(train)
    >>> ref = pre.reference_of(windows)  # (n, 1)
    >>> z = pre.scale(windows, ref); x = pre.unscale(z, ref)
    """

    def __init__(self, transform=None, level="mean", scaler=None, calendar=None):
        self.transform = check_choice(transform, TRANSFORMS, "transform")
        self.level = check_choice(level, LEVELS, "level")
        self.calendar = check_choice(calendar, (None, *CALENDARS), "calendar")
        scaler = {"mean": 0.0, "std": 1.0} if scaler is None else scaler
        if (
            not isinstance(scaler, dict)
            or set(scaler) != {"mean", "std"}
            or not all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                for v in scaler.values()
            )
            or not (
                math.isfinite(scaler["mean"]) and math.isfinite(scaler["std"]) and scaler["std"] > 0
            )
        ):
            raise ValueError(
                "`scaler` must be {'mean': finite float, 'std': finite float > 0}. "
                f"Received: scaler={scaler!r}"
            )
        self.scaler = {"mean": float(scaler["mean"]), "std": float(scaler["std"])}

    @property
    def calendar_columns(self):
        """The number of calendar covariates (0 or 2)."""
        return CALENDAR_COLUMNS if self.calendar else 0

    def _transform(self, values, name="series"):
        values = check_finite_array(values, name)
        if self.transform == "log":
            if np.any(values <= 0):
                raise ValueError(
                    f"transform='log' needs a positive series; `{name}` has minimum "
                    f"{values.min():g}."
                )
            return np.log(values)
        return values

    def adapt(self, series):
        """Fits the scaler (mean and std of the transformed training series).

        Call it on the training period only, so no statistic of the
        validation or test period reaches the model. A constant series gets
        `std = 1`.

        Returns:
            `self`.
        """
        u = self._transform(as_series(series))
        std = float(np.std(u))
        self.scaler = {"mean": float(np.mean(u)), "std": std if std > 0 else 1.0}
        return self

    def reference_of(self, past_values):
        """The scaling reference of each window of raw past values, `(n, 1)`."""
        past = np.asarray(past_values, "float64")
        u = self._transform(past.reshape(-1, past.shape[-1]))
        if self.level == "last":
            return u[:, -1:]  # (n, 1)
        return np.full((u.shape[0], 1), self.scaler["mean"])

    def scale(self, values, reference):
        """Raw values to network units, `(transform(x) - reference) / std`.

        `reference` broadcasts against `values` (see `reference_of`).
        """
        return (self._transform(values) - reference) / self.scaler["std"]

    def unscale(self, scaled, reference):
        """Inverse of `scale`."""
        u = np.asarray(scaled, "float64") * self.scaler["std"] + reference
        return np.exp(u) if self.transform == "log" else u

    def calendar_covariates(self, dates, steps=None):
        """Calendar covariates of `dates`, and of the `steps` dates after them.

        Args:
            dates: `(time,)` or `(batch, time)` dates in this preprocessor's
                calendar unit (`"YYYY-MM"` for monthly, `"YYYY-MM-DD"` daily).
            steps: optional number of following dates to make covariates for.

        Returns:
            `(..., time, 2)` float32 covariates, or with `steps` a pair
            (covariates of `dates`, covariates of the next `steps` dates).
        """
        if not self.calendar:
            raise ValueError(
                "This model was not trained with calendar covariates (calendar=None); "
                "pass `covariates` instead of `dates`."
            )
        parsed = _parse_dates(dates)
        unit = np.datetime_data(parsed.dtype)[0]
        if unit != CALENDARS[self.calendar]:
            expected = "'YYYY-MM'" if self.calendar == "monthly" else "'YYYY-MM-DD'"
            raise ValueError(
                f"This model uses {self.calendar} calendar covariates: `dates` must be "
                f"{expected} dates. Received e.g. {str(parsed.reshape(-1)[:1])}."
            )
        history = calendar_features(parsed)
        if steps is None:
            return history
        return history, calendar_features(next_dates(parsed, steps))

    def get_config(self):
        return {
            "transform": self.transform,
            "level": self.level,
            "scaler": dict(self.scaler),
            "calendar": self.calendar,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
