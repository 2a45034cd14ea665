"""Training that survives a kill: restart the same command and it carries on.

Keras's `BackupAndRestore` keeps the weights and the epoch number. Carrying
on *exactly* (the same final metrics as a run that was never interrupted)
needs more: the optimizer's slots and step count, the random state of every
dropout layer, the order of the next epoch's batches, and the state of the
callbacks that decide what happens next (the best value `ModelCheckpoint`
and `EarlyStopping` compare with, the epochs `EarlyStopping` has waited).
`TrainingBackup` keeps all of it in one file per epoch, replaced atomically,
so a kill at any moment (even during the backup) leaves the last complete
epoch to resume from.
"""

import csv
import io
import json
import os

import keras
import numpy as np

from kzoo.utils import atomic_write

# Attributes of Keras's callbacks that carry their decisions from one epoch
# to the next. Callbacks of other classes can implement `get_state()` /
# `set_state(state)` with JSON-serializable values.
_CALLBACK_ATTRIBUTES = {
    keras.callbacks.ModelCheckpoint: ("best",),
    keras.callbacks.EarlyStopping: ("wait", "best", "stopped_epoch", "best_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
}

_STATE_FILE = "training_state.npz"


def _callback_state(callback):
    if hasattr(callback, "get_state"):
        return callback.get_state()
    for cls, names in _CALLBACK_ATTRIBUTES.items():
        if isinstance(callback, cls):
            return {n: _plain(getattr(callback, n, None)) for n in names}
    raise ValueError(
        f"TrainingBackup cannot keep the state of {type(callback).__name__}: give it "
        "`get_state()` and `set_state(state)` methods, or leave it out of `callbacks`."
    )


def _set_callback_state(callback, state):
    if hasattr(callback, "set_state"):
        callback.set_state(state)
        return
    for name, value in state.items():
        setattr(callback, name, value)


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if hasattr(value, "shape") and not isinstance(value, (int, float)):
        return float(np.asarray(keras.ops.convert_to_numpy(value)))
    return value


class TrainingBackup(keras.callbacks.Callback):
    """Keeps everything `fit` needs to resume a run exactly, after every epoch.

    Call `restore(model)` before `fit` and pass the epoch it returns as
    `initial_epoch`; pass the callback itself to `fit`. After a kill, the
    same code continues from the end of the last complete epoch, with the
    same weights, optimizer state, dropout random state, batch order and
    callback decisions as the interrupted run had then.

    Args:
        backup_dir: folder of the backup (created when first written).
        callbacks: callbacks whose state is kept: Keras's `ModelCheckpoint`,
            `EarlyStopping`, `ReduceLROnPlateau`, or any with
            `get_state()`/`set_state(state)` (JSON-serializable state).
        datasets: training data whose order depends on the epoch: objects
            with `set_epoch(epoch)` (e.g. `kzoo.utils.bucketing.BucketedBatches`),
            set to Keras's epoch number as each epoch begins. Pass
            `shuffle=False` to `fit` (the dataset shuffles; Keras's own
            shuffle of the batch order draws from the global random state,
            which a new process does not share) and keep `workers=1`, so that
            no batch is fetched before its epoch begins.
        csv_log: path of a `keras.callbacks.CSVLogger(append=True)` file; on
            restore, rows of epochs after the backup are dropped, so the log
            of a resumed run reads as one uninterrupted run.

    Attributes:
        finished: after `restore`, whether the backed-up run had already
            ended (all epochs done or stopped early); `fit` then has nothing
            left to do.

    Example:

    >>> stop = keras.callbacks.EarlyStopping(patience=2)
    >>> backup = TrainingBackup(run.backup_dir, callbacks=[stop], datasets=[train])
    >>> initial_epoch = backup.restore(model)
    >>> if not backup.finished:
    ...     model.fit(train, epochs=10, initial_epoch=initial_epoch, shuffle=False,
    ...               callbacks=[backup, stop])

    `fit_resumable` does these last steps in one call.
    """

    def __init__(self, backup_dir, callbacks=(), datasets=(), csv_log=None):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        self.kept_callbacks = list(callbacks)
        for callback in self.kept_callbacks:
            _callback_state(callback)  # fails now, not after the first epoch
        self.datasets = list(datasets)
        for data in self.datasets:
            if not callable(getattr(data, "set_epoch", None)):
                raise ValueError(
                    f"`datasets` entries need a `set_epoch(epoch)` method; "
                    f"{type(data).__name__} has none."
                )
        self.csv_log = csv_log
        self.finished = False
        self.restored_epoch = 0

    @property
    def path(self):
        return os.path.join(self.backup_dir, _STATE_FILE)

    # -- variables --------------------------------------------------------

    @staticmethod
    def _variables(model):
        optimizer = getattr(model, "optimizer", None)
        variables = list(model.variables)
        if optimizer is not None:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
            variables += list(optimizer.variables)
        return variables

    def _save(self, model, epoch, finished):
        variables = self._variables(model)
        arrays = {f"v{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
        meta = {
            "epoch": epoch,
            "finished": finished,
            "paths": [v.path for v in variables],
            "callbacks": [_callback_state(c) for c in self.kept_callbacks],
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with atomic_write.atomic_path(self.path) as temporary:
            with open(temporary, "wb") as f:
                np.savez(f, **arrays)

    def restore(self, model):
        """Loads the backup into `model` (built and compiled); returns the epoch to start at.

        Without a backup, nothing changes and 0 is returned.
        """
        self.finished = False
        self.restored_epoch = 0
        if not os.path.exists(self.path):
            if self.csv_log is not None:
                _trim_csv_log(self.csv_log, 0)  # rows of a run killed in its first epoch
            return 0
        if not model.built:
            raise ValueError(
                "TrainingBackup.restore needs a built model (call it on a batch, or build it) "
                "so that its variables exist."
            )
        try:
            with np.load(self.path) as stored:
                meta = json.loads(bytes(stored["meta"]).decode("utf-8"))
                values = [stored[f"v{i}"] for i in range(len(meta["paths"]))]
        except Exception as error:
            raise ValueError(
                f"The training backup {self.path} cannot be read ({type(error).__name__}: "
                f"{error}). Delete it to start the run afresh."
            ) from None
        variables = self._variables(model)
        # Matched by position, as `load_weights` does: automatic layer names
        # (`dense_2`) differ between processes that build other models first.
        if len(variables) != len(values):
            raise ValueError(
                f"The training backup {self.path} was written for another model or optimizer "
                f"({len(values)} variables; this one has {len(variables)}). Use another output "
                "folder, or delete the backup to start afresh."
            )
        for variable, value, path in zip(variables, values, meta["paths"]):
            if tuple(variable.shape) != value.shape:
                raise ValueError(
                    f"The training backup {self.path} was written for another model or "
                    f"optimizer: it holds {path} with shape {value.shape} where this model has "
                    f"{variable.path} with shape {tuple(variable.shape)}."
                )
        for variable, value in zip(variables, values):
            variable.assign(value)
        for callback, state in zip(self.kept_callbacks, meta["callbacks"]):
            _set_callback_state(callback, state)
        self.restored_epoch = int(meta["epoch"])
        self.finished = bool(meta["finished"])
        for data in self.datasets:
            data.set_epoch(self.restored_epoch)
        if self.csv_log is not None:
            _trim_csv_log(self.csv_log, self.restored_epoch)
        return self.restored_epoch

    # -- callback hooks ---------------------------------------------------

    def on_epoch_begin(self, epoch, logs=None):
        for data in self.datasets:
            data.set_epoch(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(self.model, epoch + 1, finished=False)

    def on_train_end(self, logs=None):
        # Marks the run complete: the same command run again has nothing to redo.
        epoch = self.restored_epoch
        if os.path.exists(self.path):
            with np.load(self.path) as stored:
                epoch = json.loads(bytes(stored["meta"]).decode("utf-8"))["epoch"]
        self._save(self.model, epoch, finished=True)


def fit_resumable(model, data, *, backup, epochs, callbacks, **kwargs):
    """Fits `model` for what is left of a run: from its backup on, or from the start.

    Restores `backup` into `model`, says so when a run is found there
    ("Resuming from epoch ..."), and calls `model.fit` from the restored
    epoch with `shuffle=False` (the data orders itself by epoch, see
    `TrainingBackup`), unless the backed-up run had already ended. So the
    same command, run again after a kill, continues the run, and run once
    more after its end, trains nothing.

    Args:
        model: a built and compiled `keras.Model`.
        data: the training data, as `fit` takes it (e.g. a
            `keras.utils.PyDataset` with `set_epoch`).
        backup: the run's `TrainingBackup` (as `training_callbacks` returns it).
        epochs: the number of epochs of the whole run.
        callbacks: the callbacks of `fit`; they must include `backup`.
        **kwargs: more `fit` arguments (`validation_data`, `verbose`, ...),
            except `initial_epoch` and `shuffle`, which this function sets.

    Returns:
        The epoch training started at: 0 for a new run, the restored epoch
        for a resumed one (also when it had ended and nothing was fitted).

    Example:

    >>> callbacks, backup = training_callbacks(run, "val_accuracy", "max", datasets=[train])
    >>> initial_epoch = fit_resumable(
    ...     model, train, backup=backup, epochs=10, callbacks=callbacks
    ... )
    """
    callbacks = list(callbacks)
    if not any(callback is backup for callback in callbacks):
        raise ValueError(
            "`callbacks` must include `backup`, or no epoch is backed up. Pass the list "
            "`training_callbacks` returns (it holds the backup). Received: "
            f"callbacks={[type(c).__name__ for c in callbacks]}"
        )
    fixed = sorted({"initial_epoch", "shuffle"} & set(kwargs))
    if fixed:
        raise ValueError(
            f"`fit_resumable` sets {fixed} itself (from the backup; the data shuffles "
            f"itself by epoch). Received: {', '.join(f'{k}={kwargs[k]!r}' for k in fixed)}"
        )
    initial_epoch = backup.restore(model)
    if initial_epoch > 0 or backup.finished:
        print(f"Resuming from epoch {initial_epoch} (backup in {backup.backup_dir})")
    if not backup.finished:
        model.fit(
            data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            shuffle=False,
            callbacks=callbacks,
            **kwargs,
        )
    return initial_epoch


def _trim_csv_log(path, epochs):
    """Keeps the header and the rows of the first `epochs` epochs of a CSVLogger file."""
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")

    def keep(row):  # a row torn by the kill (short, unparsable) goes too
        try:
            return len(row) == len(rows[0]) and int(float(row[column])) < epochs
        except ValueError:
            return False

    kept = [rows[0]] + [r for r in rows[1:] if keep(r)]
    if len(kept) == len(rows):
        return
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    atomic_write.write_text(path, out.getvalue())
