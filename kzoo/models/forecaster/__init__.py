"""Time-series forecasting: `Forecaster` (task), its backbone and preprocessor.

- `ForecasterBackbone`: the recurrent network (windows to features).
- `ForecasterPreprocessor`: scaling fitted on training data, calendar
  covariates made from dates; `make_windows`, `calendar_features`,
  `next_dates`.
- `Forecaster`: the task, raw values in and out (`forecast`,
  `rolling_forecast`), plus the `seasonal_naive` baseline.

The error metrics `mae`, `rmse` and `mase` are in `kzoo.metrics`.
"""

from kzoo.models.forecaster.backbone import ForecasterBackbone
from kzoo.models.forecaster.forecaster import Forecaster, seasonal_naive
from kzoo.models.forecaster.preprocessor import (
    ForecasterPreprocessor,
    calendar_features,
    make_windows,
    next_dates,
)

__all__ = [
    "Forecaster",
    "ForecasterBackbone",
    "ForecasterPreprocessor",
    "calendar_features",
    "make_windows",
    "next_dates",
    "seasonal_naive",
]
