"""`Forecaster`: multi-step time-series forecasting task, raw values in and out."""

import keras
import numpy as np

from kzoo.models.checked_inputs import CheckedInputs
from kzoo.models.forecaster.backbone import ForecasterBackbone
from kzoo.models.forecaster.preprocessor import (
    ForecasterPreprocessor,
    as_covariates,
    as_series,
    make_windows,
)
from kzoo.models.task import Task
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_finite_array, check_int, concrete_numpy

STRATEGIES = ("direct", "autoregressive")


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
    values = as_series(series)
    horizon = check_int(horizon, "horizon", minimum=1)
    season = check_int(season, "season", minimum=1)
    origins = np.asarray(origins, dtype=int)
    if origins.size and origins.min() < season:
        raise ValueError(
            f"Seasonal naive needs one season ({season} steps) of history before every "
            f"origin; the earliest origin is {origins.min()}."
        )
    h = np.arange(horizon)
    lag = season * np.ceil((h + 1) / season).astype(int)
    return values[origins[:, None] + h[None, :] - lag[None, :]]


@register_serializable
class Forecaster(Task, CheckedInputs, keras.Model):
    """Windowed recurrent forecaster with direct or autoregressive outputs.

    A `ForecasterBackbone` (a stack of LSTM/GRU layers) reads a window of
    `(scaled value, covariates)` rows; a `Dense` head gives `horizon` outputs
    (`strategy="direct"`) or one (`"autoregressive"`: multi-step forecasts
    repeat the one-step model on its own predictions). The
    `ForecasterPreprocessor` (`model.preprocessor`) scales raw values with
    statistics fitted by `adapt` on the training period and makes calendar
    covariates from dates; both are part of the config, so a saved model
    forecasts raw values from raw values after loading.

    Args:
        window: int >= 1, past steps per input window.
        horizon: int >= 1, steps forecast.
        num_covariates: int >= 0, extra features per step, on a unit scale
            (not scaled). With `calendar`, the first two are the calendar
            features.
        strategy: `"direct"` or `"autoregressive"`.
        cell_type: `"lstm"` or `"gru"`.
        units: int >= 1, units per recurrent layer.
        num_layers: int >= 1.
        dropout: dropout between recurrent layers, in [0, 1).
        transform: `None` or `"log"` (positive series only).
        level: `"mean"` or `"last"` (see `ForecasterPreprocessor`).
        scaler: dict `{"mean": float, "std": float}`; default identity. Set
            by `adapt`.
        calendar: `None`, `"monthly"` or `"daily"`: the model was trained
            with `calendar_features` of monthly or daily dates as its first
            two covariates, and `forecast(..., dates=...)` makes them.
        seed: int seed for dropout.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        inputs: `(batch, window, 1 + num_covariates)` scaled windows.

    Returns:
        `(batch, horizon)` (direct) or `(batch, 1)` (autoregressive) scaled
        forecasts. `forecast` takes and returns raw values.

    Example:

    >>> model = Forecaster(window=24, horizon=12, num_covariates=2, calendar="monthly",
    ...                    transform="log", level="last")
    >>> model.adapt(values[:96])
    >>> x, y = model.windows(values[:96], dates=dates[:96])
    >>> model.compile(); model.fit(x, y, epochs=50)
    >>> model.forecast(values[:120], dates=dates[:120])  # (12,) next 12 values

    Reference:
        Hochreiter and Schmidhuber, "Long Short-Term Memory", 1997;
        Hyndman and Athanasopoulos, "Forecasting: Principles and Practice"
        (direct and recursive multi-step strategies).
    """

    task = "forecast"

    def __init__(
        self,
        window,
        horizon=1,
        num_covariates=0,
        strategy="direct",
        cell_type="lstm",
        units=32,
        num_layers=1,
        dropout=0.0,
        transform=None,
        level="mean",
        scaler=None,
        calendar=None,
        seed=None,
        **kwargs,
    ):
        horizon = check_int(horizon, "horizon", minimum=1)
        num_covariates = check_int(num_covariates, "num_covariates", minimum=0)
        strategy = check_choice(strategy, STRATEGIES, "strategy")
        preprocessor = ForecasterPreprocessor(transform, level, scaler, calendar)
        if num_covariates < preprocessor.calendar_columns:
            raise ValueError(
                f"calendar={calendar!r} makes {preprocessor.calendar_columns} covariates, so "
                f"`num_covariates` must be >= {preprocessor.calendar_columns}. Received: "
                f"num_covariates={num_covariates}"
            )
        backbone = ForecasterBackbone(
            window, 1 + num_covariates, cell_type, units, num_layers, dropout, seed
        )
        inputs = keras.Input((backbone.window, 1 + num_covariates), name="window")
        features = backbone(inputs)  # (batch, units)
        outputs = keras.layers.Dense(horizon if strategy == "direct" else 1, name="forecast")(
            features
        )  # (batch, horizon or 1)
        super().__init__(inputs, outputs, **kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.window = backbone.window
        self.horizon = horizon
        self.num_covariates = num_covariates
        self.strategy = strategy

    @property
    def scaler(self):
        """The preprocessor's `{"mean", "std"}` scaling statistics."""
        return self.preprocessor.scaler

    def compile_defaults(self):
        # Targets are scaled windows: mean squared error in network units.
        return {
            "optimizer": keras.optimizers.Adam(3e-3, clipnorm=1.0),
            "loss": keras.losses.MeanSquaredError(),
            "metrics": [keras.metrics.MeanAbsoluteError(name="mae")],
        }

    def adapt(self, series):
        """Fits the scaling on the training series (see `ForecasterPreprocessor.adapt`).

        Returns:
            `self`.
        """
        self.preprocessor.adapt(series)
        return self

    # -------------------------------------------------------------- covariates
    def _history_covariates(self, covariates, dates, length, name="covariates"):
        """The full `(length, num_covariates)` covariates of a 1-D series."""
        if dates is None:
            self._check_covariate_count(covariates)
            return as_covariates(covariates, length, name)
        calendar = self.preprocessor.calendar_covariates(self._dates_of(dates, length))
        extra = self.num_covariates - self.preprocessor.calendar_columns
        given = 0 if covariates is None else as_covariates(covariates, length, name).shape[1]
        if given != extra:
            raise ValueError(
                f"With `dates`, `{name}` holds the covariates after the {calendar.shape[-1]} "
                f"calendar ones: this model needs {extra} column(s), received {given}."
            )
        return np.concatenate([calendar, as_covariates(covariates, length, name)], axis=-1)

    def _dates_of(self, dates, length):
        dates = np.asarray(dates)
        if dates.shape[-1:] != (length,):
            raise ValueError(
                f"`dates` must give one date per step of the series ({length} steps). "
                f"Received shape {dates.shape}."
            )
        return dates

    def _check_covariate_count(self, covariates):
        given = (
            0
            if covariates is None
            else np.asarray(covariates).reshape(len(covariates), -1).shape[-1]
        )
        if given != self.num_covariates:
            hint = (
                f" Pass `dates` to make its {self.preprocessor.calendar} calendar covariates."
                if self.preprocessor.calendar and covariates is None
                else ""
            )
            raise ValueError(
                f"This Forecaster was built with num_covariates={self.num_covariates} "
                f"but got {given} covariate column(s).{hint}"
            )

    # -------------------------------------------------------------- windowing
    def windows(self, series, covariates=None, dates=None, start=None, end=None):
        """Scaled training pairs `(inputs, targets)` for `fit`.

        Targets have `horizon` columns for the direct strategy and one column
        (the next value) for the autoregressive one. See `make_windows` for
        `start` and `end`; with `dates`, the calendar covariates are made
        from them (and `covariates` holds only the others).
        """
        values = as_series(series)
        full = self._history_covariates(covariates, dates, len(values))
        steps = self.horizon if self.strategy == "direct" else 1
        inputs, targets, _ = make_windows(values, self.window, steps, full, start, end)
        pre = self.preprocessor
        ref = pre.reference_of(inputs[..., 0])
        x = inputs.astype("float64")
        x[..., 0] = pre.scale(inputs[..., 0], ref)
        y = pre.scale(targets, ref)
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
        check_finite_array(values, "x")

    # ------------------------------------------------------------ forecasting
    def forecast(
        self, series, covariates=None, dates=None, *, future_covariates=None, batch_size=None
    ):
        """Forecasts the `horizon` values after each series, in raw units.

        Args:
            series: `(time,)` or `(batch, time)` raw past values; the last
                `window` steps are used.
            covariates: `(time, c)` or `(batch, time, c)` covariates of the
                series steps. Without `dates`, all `num_covariates` columns;
                with `dates`, only those after the calendar ones.
            dates: for a model trained with calendar covariates, the dates of
                the series steps (`(time,)` or `(batch, time)`, e.g.
                `"1960-12"` or `"1990-12-31"`); the calendar covariates of the
                series and of the forecast steps are made from them.
            future_covariates: `(horizon, c)` or `(batch, horizon, c)`
                covariates of the forecast steps (the same columns as
                `covariates`); the autoregressive strategy needs the first
                `horizon - 1` rows to extend its window.
            batch_size: batch size of `predict`; default all series in one
                batch (one compiled shape on JAX).

        Returns:
            float array `(horizon,)` for a 1-D series, `(batch, horizon)`
            for a batch.

        Example:

        >>> model = kzoo.models.from_preset("forecast_airline")
        >>> dates, values = kzoo.datasets.timeseries.load_series("airline-passengers")
        >>> model.forecast(values[:120], dates=dates[:120]).round()  # 1959-01 .. 1959-12
        """
        past = check_finite_array(series, "series")
        single = past.ndim == 1
        if single:
            past = past[None]
        if past.ndim != 2 or past.shape[1] < self.window:
            raise ValueError(
                f"`series` must be (time,) or (batch, time) with time >= window="
                f"{self.window}. Received shape {np.shape(series)}."
            )
        batch, length = past.shape
        if batch == 0:
            raise ValueError("`series` holds no series (batch of 0); nothing to forecast.")
        batch_size = batch if batch_size is None else check_int(batch_size, "batch_size", 1)
        cov, future = self._forecast_covariates(covariates, dates, future_covariates, batch, length)
        past = past[:, -self.window :]
        cov = cov[:, -self.window :]
        pre = self.preprocessor
        ref = pre.reference_of(past)  # (batch, 1)
        z = pre.scale(past, ref)  # (batch, window)
        if self.strategy == "direct":
            x = np.concatenate([z[..., None], cov], axis=-1).astype("float32")
            out = pre.unscale(self.predict(x, batch_size=batch_size, verbose=0), ref)
            return out[0] if single else out
        steps = []
        for h in range(self.horizon):
            x = np.concatenate([z[..., None], cov], axis=-1).astype("float32")
            step = np.asarray(self.predict(x, batch_size=batch_size, verbose=0), "float64")
            steps.append(step[:, 0])
            if h + 1 < self.horizon:
                z = np.concatenate([z[:, 1:], step], axis=1)  # the prediction becomes input
                if self.num_covariates:
                    cov = np.concatenate([cov[:, 1:], future[:, h : h + 1]], axis=1)
        out = pre.unscale(np.stack(steps, axis=1), ref)
        return out[0] if single else out

    def _forecast_covariates(self, covariates, dates, future_covariates, batch, length):
        """History `(batch, >= window, c)` and future `(batch, horizon - 1, c)` covariates.

        The calendar columns come from `dates` when given; the other columns
        from `covariates` and `future_covariates`.
        """
        pre = self.preprocessor
        steps = self.horizon - 1  # forecast steps whose covariates extend the window
        calendar = np.zeros((batch, length, 0))
        calendar_future = np.zeros((batch, steps, 0))
        if dates is not None:
            if not pre.calendar:
                raise ValueError(
                    "This Forecaster uses no calendar covariates (calendar=None); pass "
                    "`covariates` instead of `dates`."
                )
            dates = self._dates_of(dates, length)
            dates = dates[None] if dates.ndim == 1 else dates
            if dates.shape[0] != batch:
                raise ValueError(
                    f"`dates` must have one row per series: {batch} series, received "
                    f"shape {dates.shape}."
                )
            calendar, calendar_future = pre.calendar_covariates(dates, steps=steps)
        columns = self.num_covariates - calendar.shape[-1]
        if columns == 0:
            for name, value in (
                ("covariates", covariates),
                ("future_covariates", future_covariates),
            ):
                if value is not None and np.size(value):
                    if calendar.shape[-1]:
                        problem = (
                            f"With `dates`, this Forecaster needs no other covariates "
                            f"(num_covariates={self.num_covariates}, all made from the dates)"
                        )
                    else:
                        problem = (
                            f"This Forecaster was built with num_covariates={self.num_covariates} "
                            f"and cannot use `{name}`"
                        )
                    raise ValueError(f"{problem}. Received `{name}` of shape {np.shape(value)}.")
            return calendar, calendar_future
        if covariates is None:
            hint = (
                f"; or pass `dates` to make its {pre.calendar} calendar covariates"
                if (pre.calendar and dates is None)
                else ""
            )
            raise ValueError(
                f"This Forecaster uses {self.num_covariates} covariate(s): pass `covariates` "
                f"for the series ({columns} column(s)){hint}."
            )
        history = self._covariate_array(covariates, "covariates", batch, self.window, columns)
        future = np.zeros((batch, steps, columns))
        if self.strategy == "autoregressive" and steps:
            if future_covariates is None:
                raise ValueError(
                    "The autoregressive strategy needs `future_covariates` "
                    f"({steps} rows) to extend its window."
                )
            future = self._covariate_array(
                future_covariates, "future_covariates", batch, steps, columns
            )[:, :steps]
        window = self.window  # both aligned with the end of the series
        history = np.concatenate([calendar[:, -window:], history[:, -window:]], axis=-1)
        return history, np.concatenate([calendar_future, future], axis=-1)

    def _covariate_array(self, values, name, batch, min_steps, columns):
        """`values` as `(batch, >= min_steps, columns)`, or an error naming `name`."""
        array = check_finite_array(values, name)
        array = array[None] if array.ndim == 2 else array  # (steps, c) of one series
        if (
            array.ndim != 3
            or array.shape[0] != batch
            or array.shape[1] < min_steps
            or array.shape[2] != columns
        ):
            raise ValueError(
                f"`{name}` must have shape (steps, {columns}) or ({batch}, steps, {columns}): "
                f"at least {min_steps} steps and one column per covariate "
                f"(num_covariates={self.num_covariates}) for each of the {batch} series. "
                f"Received shape {np.shape(values)}."
            )
        return array

    def rolling_forecast(self, series, start, covariates=None, dates=None, end=None,
                         batch_size=None):  # fmt: skip
        """Forecasts from every origin `t` in `[start, end - horizon]`.

        Each forecast sees the true values before `t` only, as in a rolling
        evaluation over a test period. `covariates` and `dates` are aligned
        with `series` as in `windows`.

        Returns:
            `(forecasts, targets, origins)`: `(n, horizon)` raw forecasts, the
            true values and the origins.
        """
        values = as_series(series)
        full = self._history_covariates(covariates, dates, len(values))
        inputs, targets, origins = make_windows(values, self.window, self.horizon, full, start, end)
        future = None
        if self.num_covariates:
            index = origins[:, None] + np.arange(self.horizon)[None, :]
            future = full[index]
        forecasts = self.forecast(
            inputs[..., 0], inputs[..., 1:], future_covariates=future, batch_size=batch_size
        )
        return forecasts, targets, origins

    def get_config(self):
        pre = self.preprocessor.get_config()
        return {
            "name": self.name,
            "trainable": self.trainable,
            "window": self.window,
            "horizon": self.horizon,
            "num_covariates": self.num_covariates,
            "strategy": self.strategy,
            "cell_type": self.backbone.cell_type,
            "units": self.backbone.units,
            "num_layers": self.backbone.num_layers,
            "dropout": self.backbone.dropout,
            "transform": pre["transform"],
            "level": pre["level"],
            "scaler": pre["scaler"],
            "calendar": pre["calendar"],
            "seed": self.backbone.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "cell" in config:  # files saved before the rename to `cell_type`
            config["cell_type"] = config.pop("cell")
        return cls(**config)
