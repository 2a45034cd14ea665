"""Point-forecast errors: MAE, RMSE and MASE (NumPy, float64).

Each takes the true and forecast values in raw units (any matching shapes,
e.g. `(origins, horizon)` from `Forecaster.rolling_forecast`) and returns a
Python float.
"""

import numpy as np

from kzoo.utils.validation import check_finite_array, check_int


def _pair(y_true, y_pred):
    y_true = check_finite_array(y_true, "y_true")
    y_pred = check_finite_array(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "`y_true` and `y_pred` must have the same shape. Received shapes "
            f"{y_true.shape} and {y_pred.shape}."
        )
    if y_true.size == 0:
        raise ValueError("`y_true` and `y_pred` are empty: no errors to average.")
    return y_true, y_pred


def mae(y_true, y_pred):
    """Mean absolute error, $\\frac{1}{n}\\sum |y - \\hat y|$.

    Example:

    >>> mae([1.0, 2.0], [2.0, 2.0])
    0.5
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true, y_pred):
    """Root mean squared error, $\\sqrt{\\frac{1}{n}\\sum (y - \\hat y)^2}$.

    Example:

    >>> rmse([0.0, 0.0], [3.0, 4.0])  # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mase(y_true, y_pred, train_series, season):
    """Mean absolute scaled error (Hyndman and Koehler, 2006).

    $$MASE = \\frac{MAE(y, \\hat y)}{\\frac{1}{n - m}\\sum_{t=m+1}^{n} |x_t - x_{t-m}|}$$

    where `x` is the training series and `m` the season: the error relative
    to the in-sample error of the one-season-ahead seasonal-naive forecast.
    Values below 1 beat that in-sample benchmark.

    Args:
        y_true: true values.
        y_pred: forecasts, the shape of `y_true`.
        train_series: 1-D training values.
        season: int >= 1 (1: the naive forecast's error scales).

    Returns:
        A float.

    Raises:
        ValueError: shapes differ, NaN values, fewer than `season + 1`
            training values, or a training series that repeats exactly each
            season (zero scale).

    Reference:
        Hyndman and Koehler, "Another look at measures of forecast accuracy",
        International Journal of Forecasting 22(4), 2006.
    """
    train = check_finite_array(train_series, "train_series", ndim=1)
    season = check_int(season, "season", minimum=1)
    if len(train) <= season:
        raise ValueError(
            f"MASE needs more than one season of training data: season={season}, "
            f"training length {len(train)}."
        )
    scale = np.mean(np.abs(train[season:] - train[:-season]))
    if scale == 0:
        raise ValueError("MASE is undefined: the training series repeats exactly each season.")
    return mae(y_true, y_pred) / float(scale)
