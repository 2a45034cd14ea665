"""Recipe: recurrent forecasting of a sine wave, airline passengers and temperatures.

Each series is split by time into train / validation / test periods. The
scaler is fitted on the training period only; training windows have all their
targets in the training period and validation windows in the validation
period (their inputs may reach back into earlier periods, as at forecast time).
The test period is forecast from every origin in it with the true history
before that origin (rolling origin), and scored with MAE, RMSE and MASE next to
the seasonal-naive forecast of the same targets.

    KZOO_DATA_DIR=/work/shared/data KERAS_BACKEND=jax python recipes/forecast.py
    python recipes/forecast.py --quick            # CI smoke run, < 40 s
    python recipes/forecast.py --dataset airline --time-budget-minutes 5

Artifacts per dataset in `--output-dir` (default `saved_models/`):
`forecast_<name>.keras` (model with its scaler), `forecast_<name>_<backend>.json`
(metrics), `forecast_<name>_<backend>.png` (forecast vs truth) and
`forecast_<name>.md` (model card).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

# The models are small: one thread per process is fastest, and on a shared
# machine several threads per process mostly wait on each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")

if __package__ in (None, ""):  # run as a script: make `kzoo` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from kzoo.callbacks import TrainingBudget  # noqa: E402
from kzoo.datasets import timeseries  # noqa: E402
from kzoo.metrics import mae, mase, rmse  # noqa: E402
from kzoo.models.forecaster import Forecaster, seasonal_naive  # noqa: E402
from kzoo.utils import (  # noqa: E402
    atomic_path,
    check_writable_folder,
    float_range,
    int_range,
    save_model,
    write_json,
    write_text,
)

# Settings per dataset. Periods are (validation start, test start) as indices
# or fractions of the series length; season is the seasonal-naive lag.
DATASETS = {
    "sine": dict(
        season=50,
        periods=(0.7, 0.85),
        model=dict(window=50, horizon=10, strategy="autoregressive", cell_type="lstm", units=32),
        epochs=60,
        learning_rate=3e-3,
        batch_size=32,
    ),
    "airline": dict(
        season=12,
        periods=(96, 120),  # train 1949-1956, validation 1957-1958, test 1959-1960
        model=dict(
            window=24,
            horizon=12,
            strategy="direct",
            cell_type="lstm",
            units=32,
            transform="log",
            level="last",
            calendar="monthly",  # month-of-year covariates made from the dates
        ),
        epochs=400,
        learning_rate=3e-3,
        batch_size=16,
    ),
    "temperatures": dict(
        season=365,
        periods=(2920, 3285),  # train 1981-1988, validation 1989, test 1990
        model=dict(
            window=30, horizon=7, strategy="direct", cell_type="gru", units=32, calendar="daily"
        ),
        epochs=40,
        learning_rate=3e-3,
        batch_size=64,
    ),
}
QUICK = dict(epochs=2, units=8, sine_length=200, temperature_days=600)
SEED = 7


def load(name, quick):
    """Returns `(dates or None, values)`."""
    if name == "sine":
        n = QUICK["sine_length"] if quick else 1000
        values = timeseries.sine_wave(n, period=50.0, noise=0.1, seed=0)
        return None, values.astype("float64")
    file_name = {"airline": "airline-passengers", "temperatures": "daily-min-temperatures"}
    dates, values = timeseries.load_series(file_name[name])
    if quick and name == "temperatures":
        dates, values = dates[-QUICK["temperature_days"] :], values[-QUICK["temperature_days"] :]
    return dates, values.astype("float64")


def split_points(settings, length, quick):
    val_start, test_start = settings["periods"]
    if quick or isinstance(val_start, float):
        fractions = (0.7, 0.85) if quick else (val_start, test_start)
        val_start, test_start = (int(f * length) for f in fractions)
    return val_start, test_start


def run(name, args):
    settings = DATASETS[name]
    dates, values = load(name, args.quick)
    # With `calendar`, the model makes its calendar covariates from the dates.
    calendar_dates = dates if settings["model"].get("calendar") else None
    val_start, test_start = split_points(settings, len(values), args.quick)
    model_args = dict(settings["model"])
    if args.quick:
        model_args["units"] = QUICK["units"]
    keras.utils.set_random_seed(SEED)
    model = Forecaster(
        num_covariates=0 if calendar_dates is None else 2,
        seed=SEED,
        name=f"forecast_{name}",
        **model_args,
    )
    train = values[:val_start]
    model.adapt(train)  # statistics of the training period only

    def dates_until(end):
        return None if calendar_dates is None else calendar_dates[:end]

    x_train, y_train = model.windows(train, dates=dates_until(val_start))
    x_val, y_val = model.windows(
        values[:test_start], dates=dates_until(test_start), start=val_start
    )

    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"], clipnorm=1.0), loss="mse"
    )
    if args.epochs is not None:  # an explicit --epochs wins, also over --quick
        epochs = args.epochs
    else:
        epochs = QUICK["epochs"] if args.quick else settings["epochs"]
    budget = TrainingBudget(
        None if args.time_budget_minutes is None else 60 * args.time_budget_minutes
    )
    callbacks = [budget]
    if not args.quick:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=max(10, epochs // 8), restore_best_weights=True
            )
        )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        # The quick run skips validation: on JAX each extra step function
        # costs a compilation, and CI only checks that the pipeline runs.
        validation_data=None if args.quick else (x_val, y_val),
        epochs=epochs,
        # Quick: one full batch, so JAX compiles a single step shape.
        batch_size=len(x_train) if args.quick else settings["batch_size"],
        shuffle=True,
        callbacks=callbacks,
        verbose=0 if args.quick else 2,
    )
    train_seconds = time.perf_counter() - start

    forecasts, targets, origins = model.rolling_forecast(values, test_start, dates=calendar_dates)
    naive = seasonal_naive(values, origins, model.horizon, settings["season"])
    season = settings["season"]
    metrics = {
        "dataset": name,
        "backend": keras.backend.backend(),
        "quick": args.quick,
        "train_steps": [0, val_start],
        "validation_steps": [val_start, test_start],
        "test_steps": [test_start, len(values)],
        "test_origins": len(origins),
        "horizon": model.horizon,
        "window": model.window,
        "season": season,
        "epochs_run": len(history.history["loss"]),
        "stopped_by_time_budget": budget.stopped,
        "best_val_loss": (None if args.quick else float(min(history.history["val_loss"]))),
        "train_seconds": round(train_seconds, 1),
        "model": {k: v for k, v in model.get_config().items() if k not in ("name", "trainable")},
        "test": {
            "model": {
                "mae": mae(targets, forecasts),
                "rmse": rmse(targets, forecasts),
                "mase": mase(targets, forecasts, train, season),
            },
            "seasonal_naive": {
                "mae": mae(targets, naive),
                "rmse": rmse(targets, naive),
                "mase": mase(targets, naive, train, season),
            },
        },
    }
    test = metrics["test"]
    test["model_mae_over_naive_mae"] = test["model"]["mae"] / test["seasonal_naive"]["mae"]
    save(name, model, metrics, values, dates, forecasts, naive, origins, val_start, args)
    print(
        f"[{name} | {metrics['backend']}] test MAE {test['model']['mae']:.4g} "
        f"RMSE {test['model']['rmse']:.4g} MASE {test['model']['mase']:.3f} | seasonal naive "
        f"MAE {test['seasonal_naive']['mae']:.4g} RMSE {test['seasonal_naive']['rmse']:.4g} "
        f"MASE {test['seasonal_naive']['mase']:.3f} | {metrics['epochs_run']} epochs in "
        f"{train_seconds:.1f} s",
        flush=True,
    )
    return metrics


def save(name, model, metrics, values, dates, forecasts, naive, origins, val_start, args):
    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    backend = metrics["backend"]
    save_model(model, os.path.join(out, f"forecast_{name}.keras"))
    write_json(os.path.join(out, f"forecast_{name}_{backend}.json"), metrics)
    plot(
        os.path.join(out, f"forecast_{name}_{backend}.png"),
        name,
        values,
        dates,
        forecasts,
        naive,
        origins,
        val_start,
        metrics,
    )
    write_card(os.path.join(out, f"forecast_{name}.md"), name, metrics)


def plot(path, name, values, dates, forecasts, naive, origins, val_start, metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizon = forecasts.shape[1]
    t = np.arange(len(values))
    fig, axes = plt.subplots(2, 1, figsize=(10, 7))
    top, bottom = axes
    top.plot(t, values, color="black", lw=0.8, label="series")
    top.axvspan(val_start, origins[0], color="tab:orange", alpha=0.15, label="validation")
    top.axvspan(origins[0], len(values) - 1, color="tab:green", alpha=0.15, label="test")
    top.set_title(f"{name}: chronological split")
    top.legend(loc="upper left")
    # Test period: the path forecast from the first test origin, and the
    # 1-step and h-step rolling forecasts at every origin.
    first = origins[0] + np.arange(horizon)
    bottom.plot(
        np.arange(origins[0], len(values)),
        values[origins[0] :],
        color="black",
        lw=1,
        label="truth",
    )
    bottom.plot(origins, forecasts[:, 0], color="tab:blue", lw=1, label="model, 1 step ahead")
    if horizon > 1:
        bottom.plot(
            origins + horizon - 1,
            forecasts[:, -1],
            color="tab:purple",
            lw=1,
            ls="--",
            label=f"model, {horizon} steps ahead",
        )
    bottom.plot(first, forecasts[0], color="tab:red", lw=2, label="model path from first origin")
    bottom.plot(origins, naive[:, 0], color="tab:gray", lw=0.8, ls=":", label="seasonal naive")
    model_scores = metrics["test"]["model"]
    bottom.set_title(
        f"test: MAE {model_scores['mae']:.3g}, MASE {model_scores['mase']:.3f} "
        f"(seasonal naive MASE {metrics['test']['seasonal_naive']['mase']:.3f}), "
        f"{metrics['backend']}"
    )
    if dates is not None:
        ticks = np.linspace(origins[0], len(values) - 1, 5).astype(int)
        bottom.set_xticks(ticks, [str(dates[i]) for i in ticks])
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def write_card(path, name, metrics):
    test = metrics["test"]
    cfg = metrics["model"]
    lines = [
        f"# forecast_{name}",
        "",
        f"`kzoo.models.Forecaster` ({cfg['strategy']}, {cfg['num_layers']} x {cfg['cell_type'].upper()}"
        f"({cfg['units']}), window {cfg['window']}, horizon {cfg['horizon']}, "
        f"transform {cfg['transform']}, level {cfg['level']}, "
        f"calendar covariates: {cfg['calendar'] or 'none'}) trained by `recipes/forecast.py"
        f"{' --quick' if metrics['quick'] else ''}` on the {metrics['backend']} backend.",
        "",
        "Split (time-step indices, end excluded): train [{}, {}), validation [{}, {}), "
        "test [{}, {}); the scaler ".format(
            *metrics["train_steps"], *metrics["validation_steps"], *metrics["test_steps"]
        )
        + f"{cfg['scaler']} was fitted on the training period.",
        f"Training: {metrics['epochs_run']} epochs, {metrics['train_seconds']} s"
        + (
            ""
            if metrics["best_val_loss"] is None
            else f", best validation MSE (scaled) {metrics['best_val_loss']:.4g}"
        )
        + ".",
        "",
        f"Test: rolling forecasts from {metrics['test_origins']} origins, every horizon "
        f"1..{cfg['horizon']} pooled; MASE scaled by the in-sample seasonal-naive MAE "
        f"(season {metrics['season']}) of the training period.",
        "",
        "| forecast | MAE | RMSE | MASE |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in (("model", "Forecaster"), ("seasonal_naive", "seasonal naive")):
        s = test[key]
        lines.append(f"| {label} | {s['mae']:.4g} | {s['rmse']:.4g} | {s['mase']:.3f} |")
    lines += [
        "",
        f'Load: `model = kzoo.models.from_preset("forecast_{name}")` (or '
        "`kzoo.models.load(path)`); `model.forecast(values"
        + (", dates=dates" if cfg["calendar"] else "")
        + ")` returns the next values in raw units; or "
        f"`python -m kzoo predict forecast_{name} series.csv`.",
        "",
    ]
    write_text(path, "\n".join(lines))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", choices=[*DATASETS, "all"], default="all", help="series to run"
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run for CI")
    parser.add_argument(
        "--epochs",
        type=int_range(1),
        default=None,
        help="override the epochs (also those of --quick)",
    )
    parser.add_argument(
        "--time-budget-minutes",
        type=float_range(0, min_inclusive=False),
        default=None,
        help="stop training (cleanly, after an epoch) once this much time has passed",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="artifacts folder (default saved_models/, or a temporary folder with --quick)",
    )
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = (
            tempfile.mkdtemp(prefix="kzoo_forecast_") if args.quick else "saved_models"
        )
    try:  # before any data is loaded or any model trained
        check_writable_folder(os.path.join(args.output_dir, "forecast.md"))
    except OSError as e:
        parser.error(f"argument --output-dir: {e}")
    return args


def main(argv=None):
    args = parse_args(argv)
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    return {name: run(name, args) for name in names}


if __name__ == "__main__":
    main()
