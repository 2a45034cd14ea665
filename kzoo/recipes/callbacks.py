"""The callbacks a recipe's `fit` runs with, assembled in one place.

A recipe's real metric (entity F1, BLEU, perplexity) is rarely a Keras
metric: `EpochMetric` computes it after each epoch and puts it into the logs,
where `ModelCheckpoint`, `EarlyStopping`, `CSVLogger` and the progress bar
see it like any other value. `training_callbacks` builds the standard set
for a run folder: the metric callbacks, the best-model checkpoint, early
stopping, the CSV log, TensorBoard when it is installed, and the backup that
makes the run resumable.
"""

import importlib.util
import math
import os

import keras

from kzoo.recipes.training_backup import TrainingBackup
from kzoo.utils import atomic_write


class EpochMetric(keras.callbacks.Callback):
    """Adds `name: compute(model)` to the logs at the end of each epoch.

    Put it before the callbacks that read the value (`training_callbacks`
    does): Keras hands the same logs dict to every callback in order.

    Args:
        name: the log key, e.g. `"val_entity_f1"`.
        compute: function `model -> float`, e.g. the F1 of `model.tag(...)`
            on the validation sentences.
        every: compute at epochs 0, every, 2*every, ... and at the last one;
            in between, the previous value is repeated so monitors see a number.

    Example:

    >>> f1 = EpochMetric("val_entity_f1", lambda m: entity_f1(tags, m.tag(sentences))["f1"])
    >>> model.fit(train, epochs=30, callbacks=[f1, keras.callbacks.EarlyStopping(
    ...     "val_entity_f1", mode="max", patience=5)])
    """

    def __init__(self, name, compute, every=1):
        super().__init__()
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
        if not callable(compute):
            raise ValueError(f"`compute` must be callable. Received: compute={compute!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive int. Received: every={every!r}")
        self.name = name
        self.compute = compute
        self.every = every
        self.value = math.nan

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs") if self.params else None

    def on_epoch_end(self, epoch, logs=None):
        last = getattr(self, "_epochs", None) is not None and epoch + 1 == self._epochs
        if epoch % self.every == 0 or last or math.isnan(self.value):
            self.value = float(self.compute(self.model))
        if logs is not None:
            logs[self.name] = self.value

    def get_state(self):
        return {"value": self.value}

    def set_state(self, state):
        self.value = float(state["value"])


class BestModel(keras.callbacks.Callback):
    """Saves the model whenever `monitor` improves, atomically.

    As `keras.callbacks.ModelCheckpoint(save_best_only=True)`, except that a
    kill during the save leaves the previous best file whole (the new one is
    written beside it and moved into place).

    Args:
        path: the `.keras` file.
        monitor: the log key to compare.
        mode: `"max"` or `"min"`.

    Attributes:
        best: the best value so far (None before the first epoch).
        best_epoch: the epoch it was reached (0-based), or None.
    """

    def __init__(self, path, monitor, mode):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"`mode` must be 'max' or 'min'. Received: mode={mode!r}")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = mode
        self.best = None
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(
                f"BestModel monitors {self.monitor!r}, which is not in the logs "
                f"({sorted(logs or {})}). Put the callback that computes it first."
            )
        value = float(value)
        if math.isnan(value):
            return
        better = self.best is None or (
            value > self.best if self.mode == "max" else value < self.best
        )
        if better:
            self.best, self.best_epoch = value, epoch
            atomic_write.save_model(self.model, self.path)

    def get_state(self):
        return {"best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]


def training_callbacks(
    run,
    monitor,
    mode,
    patience=None,
    metrics=(),
    datasets=(),
    best_model_name="best.keras",
    log_name="log.csv",
    resume=True,
    tensorboard=None,
):
    """The standard callbacks of a recipe's `fit`, and the backup to restore from.

    Args:
        run: the `kzoo.recipes.RunFolder`.
        monitor: the log key that decides the best model (e.g.
            `"val_entity_f1"`, `"val_loss"`).
        mode: `"max"` or `"min"` for `monitor`.
        patience: epochs without improvement before stopping; None: never.
        metrics: `EpochMetric`s, run first so the others see their values.
        datasets: training data with `set_epoch` (see `TrainingBackup`).
        best_model_name: file of the best model in the run folder.
        log_name: file of the per-epoch CSV log in the run folder.
        resume: whether an earlier backup in the run folder is used; with
            False it is deleted first, so the run starts afresh.
        tensorboard: whether to write TensorBoard logs (`<run>/tensorboard`).
            Keras's TensorBoard callback writes with TensorFlow, so by default
            only on the TensorFlow backend, where it is loaded anyway.

    Returns:
        `(callbacks, backup)`: the list for `fit(callbacks=...)` and the
        `TrainingBackup`, whose `restore(model)` gives `initial_epoch`.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"`mode` must be 'max' or 'min'. Received: mode={mode!r}")
    metrics = list(metrics)
    checkpoint = BestModel(run.file(best_model_name), monitor=monitor, mode=mode)
    keep = [checkpoint, *metrics]
    callbacks = [*metrics, checkpoint]
    if patience is not None:
        stopping = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience)
        keep.append(stopping)
        callbacks.append(stopping)
    log = run.file(log_name)
    if not resume:
        for stale in (log, os.path.join(run.backup_dir, "training_state.npz")):
            if os.path.exists(stale):
                os.remove(stale)
    callbacks.append(keras.callbacks.CSVLogger(log, append=True))
    if tensorboard is None:
        tensorboard = (
            keras.backend.backend() == "tensorflow"
            and importlib.util.find_spec("tensorboard") is not None
        )
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(run.file("tensorboard")))
    backup = TrainingBackup(run.backup_dir, callbacks=keep, datasets=datasets, csv_log=log)
    callbacks.append(backup)
    return callbacks, backup
