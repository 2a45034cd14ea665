"""Multi-step time-series forecasting with a recurrent stack.

`Forecaster` reads a window of past values (plus optional covariates such as
calendar features), runs a stack of LSTM/GRU layers and forecasts the next
`horizon` values, either all at once (`strategy="direct"`) or one step at a
time, feeding each prediction back as the newest input (`"autoregressive"`).
The input scaling is fitted on training data with `adapt` and stored in the
model's config, so a saved model forecasts raw values after loading.

The module also holds the pieces a forecasting recipe needs around the model:
`make_windows` (chronological windowing), `calendar_features`,
`seasonal_naive` and the metrics `mae`, `rmse` and `mase`.
"""

import math

import keras
import numpy as np

from kzoo.layers import StackedRNN
from kzoo.models.checked_inputs import CheckedInputs
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_number, check_seed, concrete_numpy

STRATEGIES = ("direct", "autoregressive")
TRANSFORMS = (None, "log")
LEVELS = ("mean", "last")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _check_finite(array, name):
    if array is None or isinstance(array, (str, bytes)):
        raise ValueError(f"`{name}` must be an array of numbers. Received: {name}={array!r:.80}")
    try:
        array = np.asarray(array, dtype="float64")
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"`{name}` must be an array of numbers (a ragged list or non-numeric values "
            f"cannot be read): {e}"
        ) from None
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        where = where[0] if len(where) == 1 else where
        raise ValueError(
            f"`{name}` contains {int(bad.sum())} NaN or infinite value(s); the first "
            f"is at index {where}. Fill or drop missing values before forecasting."
        )
    return array


def _as_series(values, name="series"):
    array = _check_finite(values, name)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D (time,). Received shape {array.shape}.")
    return array


def _as_covariates(covariates, length, name="covariates"):
    if covariates is None:
        return np.zeros((length, 0))
    array = _check_finite(covariates, name)
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
    values = _as_series(series)
    window = _check_int(window, "window", 1)
    horizon = _check_int(horizon, "horizon", 1)
    extra = _as_covariates(covariates, len(values))
    start = window if start is None else _check_int(start, "start", window)
    end = len(values) if end is None else _check_int(end, "end", 1)
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


def calendar_features(dates):
    """Cyclic calendar features of ISO dates: sin/cos of the month or day of year.

    Args:
        dates: strings `"YYYY-MM"` (monthly: 2 columns, month of year) or
            `"YYYY-MM-DD"` (daily: 2 columns, day of year).

    Returns:
        float32 array `(len(dates), 2)` in [-1, 1].

    Example:

    >>> calendar_features(["1949-01", "1949-07"]).round(3)
    array([[ 0.5  ,  0.866],
           [-0.5  , -0.866]], dtype=float32)
    """
    parsed = np.asarray(dates, dtype="datetime64")  # unit inferred: [M] or [D]
    if parsed.ndim != 1:
        raise ValueError(f"`dates` must be 1-D. Received shape {parsed.shape}.")
    if np.datetime_data(parsed.dtype)[0] == "M":
        month_of_year = parsed.astype(int) % 12  # 0..11, since 1970-01
        angle = 2 * np.pi * (month_of_year + 1) / 12.0
    elif np.datetime_data(parsed.dtype)[0] == "D":
        day_of_year = (parsed - parsed.astype("datetime64[Y]")).astype(int)  # 0..365
        angle = 2 * np.pi * (day_of_year + 1) / 365.25
    else:
        raise ValueError(
            "`dates` must be 'YYYY-MM' or 'YYYY-MM-DD' strings. "
            f"Received dates parsed with unit {np.datetime_data(parsed.dtype)[0]!r}."
        )
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1).astype("float32")


def seasonal_naive(series, origins, horizon, season):
    """Seasonal-naive forecasts: each value repeats the one a season earlier.

    For origin `t` and step `h = 0 .. horizon - 1` the forecast of time
    `t + h` is `series[t + h - season * ceil((h + 1) / season)]`, which only
    uses values before `t`.

    Args:
        series: 1-D array.
        origins: int array of forecast origins (each >= `season`).
        horizon: int >= 1.
        season: int >= 1 (1 gives the plain naive forecast).

    Returns:
        float array `(len(origins), horizon)`.
    """
    values = _as_series(series)
    horizon = _check_int(horizon, "horizon", 1)
    season = _check_int(season, "season", 1)
    origins = np.asarray(origins, dtype=int)
    if origins.size and origins.min() < season:
        raise ValueError(
            f"Seasonal naive needs one season ({season} steps) of history before every "
            f"origin; the earliest origin is {origins.min()}."
        )
    h = np.arange(horizon)
    lag = season * np.ceil((h + 1) / season).astype(int)
    return values[origins[:, None] + h[None, :] - lag[None, :]]


def mae(y_true, y_pred):
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(y_true, "float64") - np.asarray(y_pred, "float64"))))


def rmse(y_true, y_pred):
    """Root mean squared error."""
    diff = np.asarray(y_true, "float64") - np.asarray(y_pred, "float64")
    return float(np.sqrt(np.mean(diff**2)))


def mase(y_true, y_pred, train_series, season):
    """Mean absolute scaled error (Hyndman and Koehler, 2006).

    $$MASE = \\frac{MAE(y, \\hat y)}{\\frac{1}{n - m}\\sum_{t=m+1}^{n} |x_t - x_{t-m}|}$$

    where `x` is the training series and `m` the season: the error relative
    to the in-sample error of the one-season-ahead seasonal-naive forecast.
    Values below 1 beat that in-sample benchmark.

    Args:
        y_true, y_pred: arrays of the same shape.
        train_series: 1-D training values.
        season: int >= 1.

    Reference:
        Hyndman and Koehler, "Another look at measures of forecast accuracy",
        International Journal of Forecasting 22(4), 2006.
    """
    train = _as_series(train_series, "train_series")
    season = _check_int(season, "season", 1)
    if len(train) <= season:
        raise ValueError(
            f"MASE needs more than one season of training data: season={season}, "
            f"training length {len(train)}."
        )
    scale = np.mean(np.abs(train[season:] - train[:-season]))
    if scale == 0:
        raise ValueError("MASE is undefined: the training series repeats exactly each season.")
    return mae(y_true, y_pred) / float(scale)


@register_serializable
class Forecaster(CheckedInputs, keras.Model):
    """Windowed recurrent forecaster with direct or autoregressive outputs.

    Values are transformed and scaled before the network sees them:

        u = log(x) if transform == "log" else x
        z = (u - ref) / std

    where `ref` is the training mean of `u` (`level="mean"`) or the last input
    value of each window (`level="last"`, which makes the forecast follow a
    trend that the training data never reached). Targets are scaled the same
    way and predictions mapped back with the inverse. `mean` and `std` come
    from `adapt` on the training series and are part of the config.

    The network is `StackedRNN(units, num_layers, cell)` over the window of
    `(z, covariates)` rows, then `Dense`: `horizon` outputs for
    `strategy="direct"`, one output for `"autoregressive"` (multi-step
    forecasts repeat the one-step model on its own predictions).

    Args:
        window: int >= 1, past steps per input window.
        horizon: int >= 1, steps forecast.
        num_covariates: int >= 0, extra features per step (e.g. 2 for
            `calendar_features`); given on a unit scale, they are not scaled.
        strategy: `"direct"` or `"autoregressive"`.
        cell: `"lstm"` or `"gru"`.
        units: int >= 1, units per recurrent layer.
        num_layers: int >= 1.
        dropout: dropout between recurrent layers, in [0, 1).
        transform: `None` or `"log"` (positive series only).
        level: `"mean"` or `"last"`, see above.
        scaler: dict `{"mean": float, "std": float}`; default identity. Set
            by `adapt`.
        seed: int seed for dropout.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        inputs: `(batch, window, 1 + num_covariates)` scaled windows.

    Returns:
        `(batch, horizon)` (direct) or `(batch, 1)` (autoregressive) scaled
        forecasts. `forecast` returns raw values.

    Example:

    >>> model = Forecaster(window=24, horizon=12, transform="log", level="last")
    >>> model.adapt(train_values)
    >>> x, y = model.windows(train_values)
    >>> model.compile("adam", "mse"); model.fit(x, y, epochs=50)
    >>> model.forecast(all_values[:120])  # (1, 12) next 12 values

    Reference:
        Hochreiter and Schmidhuber, "Long Short-Term Memory", 1997;
        Hyndman and Athanasopoulos, "Forecasting: Principles and Practice"
        (direct and recursive multi-step strategies).
    """

    def __init__(
        self,
        window,
        horizon=1,
        num_covariates=0,
        strategy="direct",
        cell="lstm",
        units=32,
        num_layers=1,
        dropout=0.0,
        transform=None,
        level="mean",
        scaler=None,
        seed=None,
        **kwargs,
    ):
        window = _check_int(window, "window", 1)
        horizon = _check_int(horizon, "horizon", 1)
        num_covariates = _check_int(num_covariates, "num_covariates", 0)
        units = _check_int(units, "units", 1)
        num_layers = _check_int(num_layers, "num_layers", 1)
        dropout = check_number(dropout, "dropout", 0, 1)
        seed = check_seed(seed)
        for name, value, choices in (
            ("strategy", strategy, STRATEGIES),
            ("transform", transform, TRANSFORMS),
            ("level", level, LEVELS),
            ("cell", cell, ("lstm", "gru")),
        ):
            if value not in choices:
                raise ValueError(
                    f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}"
                )
        scaler = scaler or {"mean": 0.0, "std": 1.0}
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
        inputs = keras.Input((window, 1 + num_covariates), name="window")
        hidden = StackedRNN(
            units, num_layers=num_layers, cell=cell, dropout=dropout, seed=seed, name="rnn"
        )(inputs)
        outputs = keras.layers.Dense(horizon if strategy == "direct" else 1, name="forecast")(
            hidden
        )  # (batch, horizon or 1)
        super().__init__(inputs, outputs, **kwargs)
        self.window = window
        self.horizon = horizon
        self.num_covariates = num_covariates
        self.strategy = strategy
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.transform = transform
        self.level = level
        self.scaler = {"mean": float(scaler["mean"]), "std": float(scaler["std"])}
        self.seed = seed

    # ---------------------------------------------------------------- scaling
    def _transform(self, values, name="series"):
        values = _check_finite(values, name)
        if self.transform == "log":
            if np.any(values <= 0):
                raise ValueError(
                    f"transform='log' needs a positive series; `{name}` has minimum "
                    f"{values.min():g}."
                )
            return np.log(values)
        return values

    def _untransform(self, values):
        return np.exp(values) if self.transform == "log" else values

    def adapt(self, series):
        """Fits the scaler (mean and std of the transformed training series).

        Call it on the training period only, so no statistic of the
        validation or test period reaches the model. A constant series gets
        `std = 1`.
        """
        u = self._transform(_as_series(series))
        std = float(np.std(u))
        self.scaler = {"mean": float(np.mean(u)), "std": std if std > 0 else 1.0}
        return self

    def _reference(self, u_windows):
        """Per-window reference: the training mean or the last input value."""
        if self.level == "last":
            return u_windows[:, -1:]  # (n, 1)
        return np.full((u_windows.shape[0], 1), self.scaler["mean"])

    def scale(self, values, reference):
        """Maps raw values to network units: `(transform(x) - reference) / std`.

        `reference` broadcasts against `values` (see `reference_of`).
        """
        return (self._transform(values) - reference) / self.scaler["std"]

    def unscale(self, scaled, reference):
        """Inverse of `scale`."""
        return self._untransform(np.asarray(scaled, "float64") * self.scaler["std"] + reference)

    def reference_of(self, past_values):
        """The scaling reference of each window of raw past values, `(n, 1)`."""
        past = np.asarray(past_values, "float64")
        return self._reference(self._transform(past.reshape(-1, past.shape[-1])))

    # -------------------------------------------------------------- windowing
    def windows(self, series, covariates=None, start=None, end=None):
        """Scaled training pairs `(inputs, targets)` for `fit`.

        Targets have `horizon` columns for the direct strategy and one column
        (the next value) for the autoregressive one. See `make_windows` for
        `start` and `end`.
        """
        self._check_covariates_given(covariates)
        steps = self.horizon if self.strategy == "direct" else 1
        inputs, targets, _ = make_windows(series, self.window, steps, covariates, start, end)
        ref = self.reference_of(inputs[..., 0])
        x = inputs.astype("float64")
        x[..., 0] = self.scale(inputs[..., 0], ref)
        y = self.scale(targets, ref)
        return x.astype("float32"), y.astype("float32")

    def check_inputs(self, x):
        """Concrete scaled windows (`predict`, `evaluate`, `fit`) must be
        `(batch, window, 1 + num_covariates)` finite numbers."""
        values = concrete_numpy(x)
        if values is None:
            return
        expected = (self.window, 1 + self.num_covariates)
        if values.ndim != 3 or values.shape[1:] != expected:
            raise ValueError(
                f"`x` must be scaled windows of shape (batch, {expected[0]}, {expected[1]}) "
                f"(window, 1 + num_covariates). Received shape {values.shape}. "
                "`forecast` takes raw histories."
            )
        _check_finite(values, "x")

    def _check_covariates_given(self, covariates):
        given = (
            0
            if covariates is None
            else np.asarray(covariates).reshape(len(covariates), -1).shape[-1]
        )
        if given != self.num_covariates:
            raise ValueError(
                f"This Forecaster was built with num_covariates={self.num_covariates} "
                f"but got {given} covariate column(s)."
            )

    # ------------------------------------------------------------ forecasting
    def forecast(self, history, covariates=None, future_covariates=None, batch_size=None):
        """Forecasts the `horizon` values after each history, in raw units.

        Args:
            history: `(time,)` or `(batch, time)` raw past values; the last
                `window` steps are used.
            covariates: `(time, c)` or `(batch, time, c)` covariates of the
                history steps (when `num_covariates > 0`).
            future_covariates: `(horizon, c)` or `(batch, horizon, c)`
                covariates of the forecast steps; the autoregressive strategy
                needs the first `horizon - 1` rows to extend its window.
            batch_size: batch size of `predict`; default all histories in one
                batch (one compiled shape on JAX).

        Returns:
            `(batch, horizon)` float array (batch 1 for a 1-D history).
        """
        past = _check_finite(history, "history")
        if past.ndim == 1:
            past = past[None]
        if past.ndim != 2 or past.shape[1] < self.window:
            raise ValueError(
                f"`history` must be (time,) or (batch, time) with time >= window="
                f"{self.window}. Received shape {np.shape(history)}."
            )
        past = past[:, -self.window :]
        batch = past.shape[0]
        if batch == 0:
            raise ValueError("`history` holds no series (batch of 0); nothing to forecast.")
        if batch_size is not None:
            batch_size = _check_int(batch_size, "batch_size", 1)
        batch_size = batch_size or batch
        cov = np.zeros((batch, self.window, 0))
        future = np.zeros((batch, self.horizon, 0))
        if not self.num_covariates and covariates is not None and np.size(covariates):
            raise ValueError(
                "This Forecaster was built with num_covariates=0 and cannot use "
                f"`covariates` (received shape {np.shape(covariates)})."
            )
        if self.num_covariates:
            if covariates is None:
                raise ValueError(
                    f"This Forecaster uses {self.num_covariates} covariate(s); pass "
                    "`covariates` for the history."
                )
            cov = _check_finite(covariates, "covariates")
            cov = cov[None] if cov.ndim == 2 else cov
            self._check_history_covariates(cov, past, "covariates", self.window)
            cov = cov[:, -self.window :]
            if self.strategy == "autoregressive" and self.horizon > 1:
                if future_covariates is None:
                    raise ValueError(
                        "The autoregressive strategy needs `future_covariates` "
                        f"({self.horizon - 1} rows) to extend its window."
                    )
                future = _check_finite(future_covariates, "future_covariates")
                future = future[None] if future.ndim == 2 else future
                self._check_history_covariates(future, past, "future_covariates", self.horizon - 1)
        ref = self.reference_of(past)  # (batch, 1)
        z = self.scale(past, ref)  # (batch, window)
        if self.strategy == "direct":
            x = np.concatenate([z[..., None], cov], axis=-1).astype("float32")
            out = self.predict(x, batch_size=batch_size, verbose=0)
            return self.unscale(out, ref)
        steps = []
        for h in range(self.horizon):
            x = np.concatenate([z[..., None], cov], axis=-1).astype("float32")
            step = np.asarray(self.predict(x, batch_size=batch_size, verbose=0), "float64")
            steps.append(step[:, 0])
            if h + 1 < self.horizon:
                z = np.concatenate([z[:, 1:], step], axis=1)  # the prediction becomes input
                if self.num_covariates:
                    cov = np.concatenate([cov[:, 1:], future[:, h : h + 1]], axis=1)
        return self.unscale(np.stack(steps, axis=1), ref)

    def _check_history_covariates(self, cov, past, name, min_steps):
        """`cov` must be (batch, >= min_steps, num_covariates) for the histories `past`."""
        c = self.num_covariates
        if (
            cov.ndim != 3
            or cov.shape[0] != past.shape[0]
            or cov.shape[1] < min_steps
            or cov.shape[2] != c
        ):
            raise ValueError(
                f"`{name}` must have shape (steps, {c}) or ({past.shape[0]}, steps, {c}): "
                f"at least {min_steps} steps and one column per covariate "
                f"(num_covariates={c}) for each of the {past.shape[0]} histories. "
                f"Received shape {cov.shape}."
            )

    def rolling_forecast(self, series, start, covariates=None, end=None, batch_size=None):
        """Forecasts from every origin `t` in `[start, end - horizon]`.

        Each forecast sees the true values before `t` only, as in a rolling
        evaluation over a test period.

        Returns:
            `(forecasts, targets, origins)`: `(n, horizon)` raw forecasts, the
            true values and the origins.
        """
        values = _as_series(series)
        self._check_covariates_given(covariates)
        inputs, targets, origins = make_windows(
            values, self.window, self.horizon, covariates, start, end
        )
        cov = inputs[..., 1:]
        future = None
        if self.num_covariates:
            extra = _as_covariates(covariates, len(values))
            index = origins[:, None] + np.arange(self.horizon)[None, :]
            future = extra[index]
        forecasts = self.forecast(inputs[..., 0], cov, future, batch_size=batch_size)
        return forecasts, targets, origins

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "window": self.window,
            "horizon": self.horizon,
            "num_covariates": self.num_covariates,
            "strategy": self.strategy,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "transform": self.transform,
            "level": self.level,
            "scaler": dict(self.scaler),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
