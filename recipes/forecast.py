"""Recipe: recurrent forecasters of a noisy sine, airline passengers and Melbourne temperatures.

Each dataset is a stage of its own (a sub-folder of the run with its own
backup, skipped once finished). A series is split by time into train /
validation / test periods; the scaling is fitted on the training period
only. After each epoch the validation period is forecast from every origin
in it (the true history before each origin, every horizon pooled) and scored
in the data's units (`val_mae`, `val_rmse`); the model with the best
validation MAE is kept, and training stops when it has not improved for
`patience` epochs. The test period is then forecast the same way and scored
with MAE, RMSE and MASE next to the seasonal-naive forecast of the same
targets.

    KZOO_DATA_DIR=/work/shared/data KERAS_BACKEND=jax python recipes/forecast.py
    python recipes/forecast.py --quick                  # smoke run, about a minute
    python recipes/forecast.py --datasets airline --airline-epochs 200
    python recipes/forecast.py --publish                # also copy into saved_models/

Writes into `runs/forecast/<backend>[-quick]-seed<seed>/` (or `--output-dir`):
`metrics.json` (final metrics of every dataset), `timings.json`, and per
dataset a folder `<dataset>/` with `best.keras` (the model, with its scaling),
`model_card.md`, `forecast.png` (forecasts against the truth), `metrics.json`,
`log.csv` and `backup/`. `--publish` copies them to
`saved_models/forecast_<dataset>.keras`, `.md`, `_<backend>.png` and `_<backend>.json`.
"""

import dataclasses
import os
import shlex
import sys
import time

import keras
import numpy as np

from kzoo.datasets import timeseries
from kzoo.metrics import mae, mase, rmse
from kzoo.models.forecaster import Forecaster, seasonal_naive
from kzoo.recipes import (
    SMOKE_RUN,
    BestModel,
    EpochMetric,
    RunFolder,
    fit_resumable,
    parse_settings,
    start_run,
    training_callbacks,
)
from kzoo.utils import set_random_seed
from kzoo.utils.atomic_write import atomic_path
from kzoo.utils.optional import require

DATASETS = ("sine", "airline", "temperatures")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The full run's settings (`QUICK`: what `--quick` changes); each one is a flag."""

    datasets: tuple[str, ...] = dataclasses.field(
        default=DATASETS, metadata={"help": "the series to train on", "choices": DATASETS}
    )
    units: int = dataclasses.field(default=32, metadata={"help": "recurrent units", "min": 1})
    learning_rate: float = dataclasses.field(
        default=3e-3, metadata={"help": "Adam learning rate", "min": 1e-6, "max": 1.0}
    )
    patience: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "epochs without a better validation MAE before stopping "
            "(none: an eighth of the dataset's epochs, at least 10)",
            "min": 1,
        },
    )
    sine_epochs: int = dataclasses.field(
        default=60, metadata={"help": "most epochs on the sine series", "min": 1}
    )
    airline_epochs: int = dataclasses.field(
        default=400, metadata={"help": "most epochs on the airline series", "min": 1}
    )
    temperatures_epochs: int = dataclasses.field(
        default=40, metadata={"help": "most epochs on the temperatures series", "min": 1}
    )
    sine_batch_size: int = dataclasses.field(
        default=32, metadata={"help": "training windows per batch (sine)", "min": 1}
    )
    airline_batch_size: int = dataclasses.field(
        default=16, metadata={"help": "training windows per batch (airline)", "min": 1}
    )
    temperatures_batch_size: int = dataclasses.field(
        default=64, metadata={"help": "training windows per batch (temperatures)", "min": 1}
    )
    sine_length: int = dataclasses.field(
        default=1000, metadata={"help": "steps of the synthetic sine", "min": 200}
    )
    temperature_days: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "use only the last N days, split 70/15/15%% (none: all 3,650, split "
            "1981-88 / 1989 / 1990)",
            "min": 500,
        },
    )
    seed: int = dataclasses.field(
        default=7, metadata={"help": "random seed (7 trained the shipped models)", "min": 0}
    )


QUICK = {
    "units": 16,
    "sine_epochs": 12,
    "airline_epochs": 60,
    "temperatures_epochs": 6,
    "sine_length": 400,
    "temperature_days": 1000,
}


@dataclasses.dataclass(frozen=True)
class Problem:
    """What a dataset asks for: the forecast task, its split and its source.

    These define the task (and the shipped models' inputs), so they are not
    settings. `periods` are the first validation and test steps, as indices,
    or as fractions of the length.
    """

    season: int
    periods: tuple
    model: dict
    step: str
    source: str
    licence: str


PROBLEMS = {
    "sine": Problem(
        season=50,
        periods=(0.7, 0.85),
        model=dict(window=50, horizon=10, strategy="autoregressive", cell_type="lstm"),
        step="steps",
        source="synthetic: `kzoo.datasets.timeseries.sine_wave(n, period=50, noise=0.1, "
        "seed=0)`, a sine of period 50 steps plus Gaussian noise of standard deviation 0.1",
        licence="none needed: generated by kzoo's own code (Apache-2.0)",
    ),
    "airline": Problem(
        season=12,
        periods=(96, 120),  # train 1949-1956, validation 1957-1958, test 1959-1960
        model=dict(
            window=24,
            horizon=12,
            strategy="direct",
            cell_type="lstm",
            transform="log",
            level="last",
            calendar="monthly",  # month-of-year covariates made from the dates
        ),
        step="months",
        source="international airline passengers, monthly totals in thousands, 1949-01 to "
        "1960-12 (Box & Jenkins 1976, Series G), `airline-passengers.csv` of the "
        "jbrownlee/Datasets mirror (commit d20fcb6), which cites Hyndman's Time Series "
        "Data Library",
        licence="none stated by the mirror or its source; a long-published series "
        "(Box & Jenkins 1976) reproduced in textbooks",
    ),
    "temperatures": Problem(
        season=365,
        periods=(2920, 3285),  # train 1981-1988, validation 1989, test 1990
        model=dict(window=30, horizon=7, strategy="direct", cell_type="gru", calendar="daily"),
        step="days",
        source="daily minimum temperatures in Melbourne (deg C), 1981-1990, 3,650 days, "
        "`daily-min-temperatures.csv` of the jbrownlee/Datasets mirror (commit d20fcb6), "
        "from Hyndman's Time Series Data Library, citing the Australian Bureau of Meteorology",
        licence="none stated by the mirror or its source; the measurements are the "
        "Australian Bureau of Meteorology's, a long-published textbook series",
    ),
}


@dataclasses.dataclass(frozen=True)
class Series:
    """One dataset's values, dates (None for the sine) and split points."""

    name: str
    values: np.ndarray
    dates: np.ndarray | None
    val_start: int
    test_start: int

    @property
    def train(self):
        return self.values[: self.val_start]


class ShuffledWindows(keras.utils.PyDataset):
    """Training windows in batches, reshuffled from `(seed, epoch)` every epoch.

    Every batch has `batch_size` rows: the last one is completed with the
    first rows of the epoch's order, so each epoch sees every window and the
    step function is compiled for one shape (JAX, TensorFlow).

    Args:
        x: `(n, window, features)` inputs.
        y: `(n, targets)` targets.
        batch_size: rows per batch.
        seed: seed of the shuffling, so that a resumed run sees the same orders.
    """

    def __init__(self, x, y, batch_size, seed):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        positions = np.arange(index * self.batch_size, (index + 1) * self.batch_size)
        rows = np.take(self.order, positions, mode="wrap")
        return self.x[rows], self.y[rows]


def load(name, settings):
    """The dataset as a `Series` split into train / validation / test periods."""
    if name == "sine":
        dates = None
        values = timeseries.sine_wave(settings.sine_length, period=50.0, noise=0.1, seed=0)
    else:
        file_name = {"airline": "airline-passengers", "temperatures": "daily-min-temperatures"}
        dates, values = timeseries.load_series(file_name[name])
    val_start, test_start = PROBLEMS[name].periods
    if name == "temperatures" and settings.temperature_days is not None:
        dates, values = dates[-settings.temperature_days :], values[-settings.temperature_days :]
        val_start, test_start = 0.7, 0.85
    if isinstance(val_start, float):
        val_start, test_start = int(val_start * len(values)), int(test_start * len(values))
    return Series(name, values.astype("float64"), dates, val_start, test_start)


def forecast_period(model, series, start, end):
    """Rolling forecasts from every origin in `[start, end - horizon]`, in raw units.

    Returns:
        `(forecasts, targets, origins)`, see `Forecaster.rolling_forecast`.
    """
    dates = series.dates[:end] if model.preprocessor.calendar else None
    return model.rolling_forecast(series.values[:end], start, dates=dates)


def validation_metrics(series):
    """`val_mae` and `val_rmse` of the validation period's forecasts, from one forecast."""
    last = {}

    def val_mae(model):
        forecasts, targets, _ = forecast_period(model, series, series.val_start, series.test_start)
        last["rmse"] = rmse(targets, forecasts)
        return mae(targets, forecasts)

    return [EpochMetric("val_mae", val_mae), EpochMetric("val_rmse", lambda model: last["rmse"])]


def build_model(name, series, settings, seed):
    model = Forecaster(
        **PROBLEMS[name].model,
        num_covariates=2 if series.dates is not None else 0,
        units=settings.units,
        seed=seed,
        name=f"forecast_{name}",
    )
    model.adapt(series.train)  # statistics of the training period only
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate, clipnorm=1.0), loss="mse")
    return model


def train_stage(name, settings, options, run, command):
    """Trains (or resumes, or skips when finished) one dataset's forecaster.

    Returns:
        `(metrics, seconds, stage)`: the stage's final metrics, its seconds in
        this process (data, training, evaluation), and its `RunFolder`.
    """
    print(f"\n=== {name}", flush=True)
    start = time.perf_counter()
    stage = RunFolder(os.path.join(run.path, name))
    series = load(name, settings)
    set_random_seed(options.seed)  # the same start whichever stages ran before
    model = build_model(name, series, settings, options.seed)
    dates = None if series.dates is None else series.dates[: series.val_start]
    x, y = model.windows(series.train, dates=dates)
    train = ShuffledWindows(x, y, getattr(settings, f"{name}_batch_size"), options.seed)
    forecasts, targets, _ = forecast_period(model, series, series.val_start, series.test_start)
    untrained_mae = mae(targets, forecasts)
    epochs = getattr(settings, f"{name}_epochs")
    callbacks, backup = training_callbacks(
        stage,
        monitor="val_mae",
        mode="min",
        patience=settings.patience or max(10, epochs // 8),
        metrics=validation_metrics(series),
        datasets=[train],
        resume=options.resume,
    )
    initial_epoch = fit_resumable(model, train, backup=backup, epochs=epochs, callbacks=callbacks)
    checkpoint = next(c for c in callbacks if isinstance(c, BestModel))
    if checkpoint.best_epoch is None:
        raise RuntimeError(
            f"{name}: no epoch gave a finite validation MAE, so there is no model to keep "
            f"(see {stage.file('log.csv')}). Try a lower learning rate (--learning-rate)."
        )
    best = keras.saving.load_model(stage.file("best.keras"))
    metrics = evaluate(best, series, untrained_mae, checkpoint.best_epoch, stage.file("log.csv"))
    seconds = time.perf_counter() - start
    about = dict(
        command=command,
        settings=settings,
        options=options,
        seconds=seconds,
        resumed_from=initial_epoch,
    )
    write_stage(stage, name, best, series, metrics, about)
    return metrics, seconds, stage


def evaluate(model, series, untrained_mae, best_epoch, log_path):
    """The stage's metrics: validation and test scores of `model`, the seasonal-naive ones."""
    season = PROBLEMS[series.name].season
    forecasts, targets, _ = forecast_period(model, series, series.val_start, series.test_start)
    validation = {"mae": mae(targets, forecasts), "rmse": rmse(targets, forecasts)}
    forecasts, targets, origins = forecast_period(
        model, series, series.test_start, len(series.values)
    )
    naive = seasonal_naive(series.values, origins, model.horizon, season)
    test = {}
    for key, predicted in (("model", forecasts), ("seasonal_naive", naive)):
        test[key] = {
            "mae": mae(targets, predicted),
            "rmse": rmse(targets, predicted),
            "mase": mase(targets, predicted, series.train, season),
        }
    with open(log_path, encoding="utf-8") as f:
        epochs_run = sum(1 for line in f if line.strip()) - 1  # rows after the header
    return {
        "splits": {
            "train": [0, series.val_start],
            "validation": [series.val_start, series.test_start],
            "test": [series.test_start, len(series.values)],
        },
        "epochs_run": epochs_run,
        "best_epoch": best_epoch + 1,
        "validation": {**validation, "untrained_mae": untrained_mae},
        "test": {**test, "origins": len(origins)},
        "forecasts": forecasts.tolist(),
    }


def write_stage(stage, name, model, series, metrics, about):
    """The stage's metrics, plot and model card; published with `--publish`."""
    forecasts = np.asarray(metrics.pop("forecasts"))
    stage.write_json("metrics.json", metrics)
    stage.record("best.keras")
    stage.record("log.csv")
    with atomic_path(stage.file("forecast.png")) as path:
        plot(path, name, model, series, forecasts, metrics)
    stage.record("forecast.png")
    stage.write_text("model_card.md", model_card(name, model, series, metrics, about))
    test = metrics["test"]
    print(
        f"[{name} | {keras.backend.backend()}] test MAE {test['model']['mae']:.4g} "
        f"RMSE {test['model']['rmse']:.4g} MASE {test['model']['mase']:.3f} | seasonal naive "
        f"MAE {test['seasonal_naive']['mae']:.4g} MASE {test['seasonal_naive']['mase']:.3f} | "
        f"validation MAE {metrics['validation']['mae']:.4g} (untrained "
        f"{metrics['validation']['untrained_mae']:.4g})",
        flush=True,
    )
    if about["options"].publish:
        backend = keras.backend.backend()
        rename = {
            "best.keras": f"forecast_{name}.keras",
            "model_card.md": f"forecast_{name}.md",
            "forecast.png": f"forecast_{name}_{backend}.png",
            "metrics.json": f"forecast_{name}_{backend}.json",
        }
        stage.publish(list(rename), "saved_models", rename=rename)


def plot(path, name, model, series, forecasts, metrics):
    """The split (top) and the test period's rolling forecasts (bottom)."""
    matplotlib = require("matplotlib", extra="recipes", feature="the forecast plots")
    matplotlib.use("Agg")
    from matplotlib import pyplot

    values, horizon, start = series.values, model.horizon, series.test_start
    origins = np.arange(start, start + len(forecasts))
    naive = seasonal_naive(values, origins, horizon, PROBLEMS[name].season)
    figure, (top, bottom) = pyplot.subplots(2, 1, figsize=(10, 7))
    top.plot(np.arange(len(values)), values, color="black", lw=0.8, label="series")
    top.axvspan(series.val_start, start, color="tab:orange", alpha=0.15, label="validation")
    top.axvspan(start, len(values) - 1, color="tab:green", alpha=0.15, label="test")
    top.set_title(f"{name}: chronological split")
    top.legend(loc="upper left")
    bottom.plot(np.arange(start, len(values)), values[start:], color="black", lw=1, label="truth")
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
    bottom.plot(start + np.arange(horizon), forecasts[0], color="tab:red", lw=2,
                label="model path from the first origin")  # fmt: skip
    bottom.plot(origins, naive[:, 0], color="tab:gray", lw=0.8, ls=":", label="seasonal naive")
    test = metrics["test"]
    bottom.set_title(
        f"test: MAE {test['model']['mae']:.3g}, MASE {test['model']['mase']:.3f} "
        f"(seasonal naive MASE {test['seasonal_naive']['mase']:.3f}), {keras.backend.backend()}"
    )
    if series.dates is not None:
        ticks = np.linspace(start, len(values) - 1, 5).astype(int)
        bottom.set_xticks(ticks, [str(series.dates[i]) for i in ticks])
    bottom.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90, format="png")
    pyplot.close(figure)


def model_card(name, model, series, metrics, about):
    """The stage's model card: intended use, limitations, data, metrics, training."""
    problem, config = PROBLEMS[name], model.get_config()
    settings, options = about["settings"], about["options"]
    test, validation = metrics["test"], metrics["validation"]
    splits = metrics["splits"]
    if series.dates is not None:
        periods = {
            key: f"{series.dates[a]} to {series.dates[b - 1]}" for key, (a, b) in splits.items()
        }
    else:
        periods = {key: f"steps {a} to {b - 1}" for key, (a, b) in splits.items()}
    lines = [
        f"# forecast_{name}",
        "",
        f"`kzoo.models.Forecaster` ({config['strategy']}, {config['num_layers']} x "
        f"{config['cell_type'].upper()}({config['units']}), window {config['window']}, horizon "
        f"{config['horizon']}, transform {config['transform']}, level {config['level']}, "
        f"calendar covariates: {config['calendar'] or 'none'}), trained by `recipes/forecast.py`"
        + (" as a smoke run (`--quick`): " + SMOKE_RUN.split(": ", 1)[1] if options.quick else "."),
        "",
        "## Intended use",
        "",
        f"Forecasting the next {config['horizon']} {problem.step} of this series from its last "
        f"{config['window']}, in raw units: `kzoo.models.load(path)` (or, once published, "
        f'`kzoo.models.from_preset("forecast_{name}")`), then `model.forecast(values'
        + (", dates=dates" if config["calendar"] else "")
        + ")`. A worked example of the recipe and a baseline to compare other forecasters with.",
        "",
        "## Limitations",
        "",
        f"- Trained on one series ({periods['train']}); it has seen no other series and no "
        "change of regime, and gives point forecasts without intervals.",
        "- The scaling was fitted on the training period; values far outside it are extrapolation.",
        "- Scored on a single test period with rolling origins (no repeated splits), so the "
        "numbers below carry the noise of one short period.",
        "",
        "## Data",
        "",
        f"Source: {problem.source}.",
        f"Split by time: train {periods['train']}, validation {periods['validation']}, test "
        f"{periods['test']} (time-step indices, end excluded: train [{splits['train'][0]}, "
        f"{splits['train'][1]}), validation [{splits['validation'][0]}, "
        f"{splits['validation'][1]}), test [{splits['test'][0]}, {splits['test'][1]})).",
        f"Licence: {problem.licence}.",
        "",
        "## Metrics",
        "",
        f"Command: `{about['command']}`",
        "",
        f"Test: rolling forecasts from {test['origins']} origins, every horizon "
        f"1..{config['horizon']} pooled; MASE scaled by the in-sample seasonal-naive MAE "
        f"(season {problem.season}) of the training period.",
        "",
        "| forecast | MAE | RMSE | MASE |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in (("model", "Forecaster"), ("seasonal_naive", "seasonal naive")):
        s = test[key]
        lines.append(f"| {label} | {s['mae']:.4g} | {s['rmse']:.4g} | {s['mase']:.3f} |")
    lines += [
        "",
        f"Validation (the model kept: epoch {metrics['best_epoch']} of "
        f"{metrics['epochs_run']}): MAE {validation['mae']:.4g}, RMSE {validation['rmse']:.4g}; "
        f"the untrained model's MAE {validation['untrained_mae']:.4g}.",
        "",
        "## Training",
        "",
        f"Settings: {dataclasses.asdict(settings)}, seed {options.seed}. Adam with clipnorm 1.0 "
        "on the mean squared error of the scaled targets; the model with the best validation "
        "MAE is kept (`best.keras`).",
        f"Backend {keras.backend.backend()}, {os.cpu_count()} CPU cores, "
        f"{about['seconds']:.1f} s for this dataset (data, training, evaluation)"
        + (
            f" in the process that resumed from epoch {about['resumed_from']}."
            if about["resumed_from"]
            else "."
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="forecast", description=__doc__
    )
    set_random_seed(options.seed)
    require("matplotlib", extra="recipes", feature="the forecast plots")
    run = start_run(options)
    arguments = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "recipes/forecast.py", *arguments])
    command = f"KERAS_BACKEND={keras.backend.backend()} {command}"
    metrics, timings = {}, {}
    for name in dict.fromkeys(settings.datasets):
        metrics[name], timings[name], stage = train_stage(name, settings, options, run, command)
        run.written.extend(stage.written)
    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", {f"{name}_seconds": t for name, t in timings.items()})
    print(run.summary())
    return metrics


if __name__ == "__main__":
    main()
