"""kzoo.recipes: settings flags, the run folder, and exact resumption after a kill."""

import csv
import dataclasses
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kzoo.recipes import (
    RunFolder,
    RunOptions,
    TrainingBackup,
    command_line,
    fit_resumable,
    limit_threads,
    marked_settings,
    parse_settings,
    setting,
    start_run,
)


@dataclasses.dataclass(frozen=True)
class Settings:
    units: int = dataclasses.field(default=64, metadata={"help": "GRU width", "min": 1})
    rate: float = dataclasses.field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    cell_type: str = dataclasses.field(default="gru", metadata={"choices": ("gru", "lstm")})
    vocab: tuple[int, ...] = (6000, 5000)
    budget: float | None = None
    tie: bool = False
    seed: int = 1


QUICK = {"units": 8, "vocab": (50, 40)}


def test_settings_defaults_quick_set_and_flags_in_order_of_precedence():
    settings, run = parse_settings(Settings, QUICK, argv=[], recipe="demo")
    assert settings == Settings()
    assert not run.quick and run.resume and not run.publish
    assert run.output_dir == os.path.join("runs", "demo", f"{keras.backend.backend()}-seed1")

    settings, run = parse_settings(Settings, QUICK, argv=["--quick"], recipe="demo")
    assert (settings.units, settings.vocab) == (8, (50, 40))
    assert run.output_dir.endswith("-quick-seed1")

    argv = ["--quick", "--set", "units=12", "--set", "budget=2.5", "--units", "16", "--tie", "yes"]
    settings, _ = parse_settings(Settings, QUICK, argv=argv)
    assert settings.units == 16  # the flag wins over --set and --quick
    assert settings.budget == 2.5 and settings.tie is True

    settings, run = parse_settings(
        Settings,
        QUICK,
        argv=["--set", "budget=none", "--vocab", "7 8", "--seed", "3", "--no-resume"],
    )
    assert settings.budget is None and settings.vocab == (7, 8) and run.seed == 3
    assert not run.resume


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--units", "0"], "must be >= 1"),
        (["--rate", "1.5"], "must be <= 1.0"),
        (["--cell-type", "rnn"], "must be one of gru, lstm"),
        (["--units", "many"], "expected int"),
        (["--set", "nope=1"], "KEY one of"),
        (["--set", "units"], "expected KEY=VALUE"),
        (["--name", "a/b"], "single folder name"),
    ],
)
def test_settings_errors_name_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as error:
        parse_settings(Settings, QUICK, argv=argv)
    assert error.value.code == 2
    assert message in capsys.readouterr().err


def test_settings_help_shows_both_defaults(capsys):
    with pytest.raises(SystemExit):
        parse_settings(Settings, QUICK, argv=["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "GRU width (default: 64; --quick: 8)" in text
    assert "--output-dir" in text and "--publish" in text and "--resume" in text


def test_settings_refuses_unknown_quick_keys():
    with pytest.raises(ValueError, match="do not exist"):
        parse_settings(Settings, {"epochs": 1}, argv=[])


def test_run_folder_writes_lists_and_publishes_only_on_request(tmp_path):
    run = RunFolder(tmp_path / "runs" / "demo" / "x")
    run.write_json("metrics.json", {"accuracy": 0.5})
    run.write_text("card.md", "# card\n")
    with pytest.raises(ValueError, match="inside the run folder"):
        run.file("../escape.txt")
    with pytest.raises(FileNotFoundError, match="did not write"):
        run.publish(["model.keras"], tmp_path / "saved")
    target = tmp_path / "saved"
    assert not target.exists()
    published = run.publish(["card.md"], target, rename={"card.md": "demo.md"})
    assert (target / "demo.md").read_text() == "# card\n"
    summary = run.summary()
    for path in [run.file("metrics.json"), run.file("card.md"), *published]:
        assert str(path) in summary


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.3, seed=seed)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


class EpochBatches(keras.utils.PyDataset):
    """A shuffle that depends only on (seed, epoch), as kzoo's BucketedBatches."""

    def __init__(self, x, y, batch_size, seed):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, i):
        rows = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


class KillAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("killed mid-epoch")


def _train(folder, data, kill=None, epochs=5):
    """One 'process': a fresh model restored from the backup, then fit."""
    os.makedirs(folder, exist_ok=True)
    model = _model()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=10)
    best = keras.callbacks.ModelCheckpoint(
        os.path.join(folder, "best.keras"), monitor="loss", save_best_only=True
    )
    log = os.path.join(folder, "log.csv")
    backup = TrainingBackup(
        os.path.join(folder, "backup"), callbacks=[stop, best], datasets=[data], csv_log=log
    )
    callbacks = [backup, stop, best, keras.callbacks.CSVLogger(log, append=True)]
    if kill:
        callbacks.append(KillAt(*kill))
    fit_resumable(model, data, backup=backup, epochs=epochs, callbacks=callbacks, verbose=0)
    return model, backup, best


def _log(folder):
    with open(os.path.join(folder, "log.csv")) as f:
        return [(row["epoch"], row["loss"]) for row in csv.DictReader(f)]


def test_a_killed_fit_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype("float32")
    y = (x @ rng.standard_normal((6, 1))).astype("float32")

    whole = str(tmp_path / "whole")
    reference, _, reference_best = _train(whole, EpochBatches(x, y, 16, seed=4))

    parts = str(tmp_path / "parts")
    with pytest.raises(KeyboardInterrupt):
        _train(parts, EpochBatches(x, y, 16, seed=4), kill=(2, 3))
    resumed, backup, best = _train(parts, EpochBatches(x, y, 16, seed=4))
    assert backup.restored_epoch == 2  # the killed epoch is replayed from its start

    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a), rtol=1e-5, atol=1e-6
        )
    assert best.best == pytest.approx(reference_best.best, rel=1e-5)
    assert [e for e, _ in _log(parts)] == [e for e, _ in _log(whole)] == list("01234")
    np.testing.assert_allclose(
        [float(v) for _, v in _log(parts)], [float(v) for _, v in _log(whole)], rtol=1e-5
    )

    # Run again once finished: nothing is retrained.
    capsys.readouterr()
    again, backup, _ = _train(parts, EpochBatches(x, y, 16, seed=4))
    assert backup.finished
    assert "Resuming from epoch 5 (backup in" in capsys.readouterr().out
    for a, b in zip(resumed.weights, again.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_backup_of_another_model_or_a_corrupt_file_is_refused(tmp_path):
    model = _model()
    backup = TrainingBackup(tmp_path / "backup")
    backup._save(model, 1, finished=False)
    other = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="written for another model or optimizer"):
        backup.restore(other)
    with open(backup.path, "wb") as f:
        f.write(b"not a backup")
    with pytest.raises(ValueError, match="cannot be read"):
        backup.restore(model)


def test_start_run_seeds_makes_the_folder_and_says_quick(tmp_path, capsys):
    options = RunOptions(
        quick=True, seed=5, output_dir=str(tmp_path / "run"), resume=True, publish=False
    )
    run = start_run(options)
    drawn = np.random.random()
    assert os.path.isdir(run.path) and run.path == options.output_dir
    assert "Smoke run (--quick)" in capsys.readouterr().out
    start_run(dataclasses.replace(options, quick=False), quick_notice="unused")
    assert np.random.random() == drawn  # seeded again from options.seed
    assert capsys.readouterr().out == ""


def test_marked_settings_and_command_line():
    @dataclasses.dataclass(frozen=True)
    class Marked:
        units: int = setting(8, "width", model=True)
        epochs: int = setting(2, "epochs")

    assert marked_settings(Marked(units=3), "model") == {"units": 3}
    with pytest.raises(TypeError, match="dataclass instance"):
        marked_settings(Marked, "model")
    command = command_line("ner", ["--quick", "--set", "temperatures=0.5 1.0"])
    assert command == (
        f"KERAS_BACKEND={keras.backend.backend()} python recipes/ner.py --quick --set "
        "'temperatures=0.5 1.0'"
    )


def test_fit_resumable_refuses_a_missing_backup_and_the_arguments_it_sets(tmp_path):
    model, data = _model(), EpochBatches(np.zeros((32, 6)), np.zeros((32, 1)), 16, seed=1)
    backup = TrainingBackup(tmp_path / "backup")
    with pytest.raises(ValueError, match="`callbacks` must include `backup`"):
        fit_resumable(model, data, backup=backup, epochs=1, callbacks=[])
    with pytest.raises(ValueError, match=r"sets \['shuffle'\] itself"):
        fit_resumable(model, data, backup=backup, epochs=1, callbacks=[backup], shuffle=True)
    assert not os.path.exists(backup.path)  # nothing was trained


def test_limit_threads_sets_pytorchs_pool_unless_the_user_chose(monkeypatch):
    with pytest.raises(ValueError, match="threads"):
        limit_threads(0)
    if keras.backend.backend() != "torch":
        assert limit_threads() is None  # TensorFlow and JAX keep their own pools
        return
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert limit_threads() == 2 == torch.get_num_threads()  # the user's choice stands
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert limit_threads() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_unsupported_callbacks_and_datasets_are_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="get_state"):
        TrainingBackup(tmp_path, callbacks=[keras.callbacks.TerminateOnNaN()])
    with pytest.raises(ValueError, match="set_epoch"):
        TrainingBackup(tmp_path, datasets=[np.zeros(3)])


@pytest.mark.large
def test_a_real_kill_during_fit_resumes(tmp_path):
    """The process is killed with os._exit in the middle of an epoch, then run again."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np, keras
        import test_recipe_convention as t
        rng = np.random.default_rng(0)
        x = rng.standard_normal((96, 6)).astype("float32")
        y = (x @ rng.standard_normal((6, 1))).astype("float32")
        class Exit(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
            def on_train_batch_end(self, batch, logs=None):
                if os.environ.get("KILL") and (self.epoch, batch) == (3, 2):
                    os._exit(9)
        t.KillAt = lambda *a: Exit()
        model, backup, _ = t._train(sys.argv[1], t.EpochBatches(x, y, 16, seed=4), kill=(0, 0))
        np.save(sys.argv[2], np.concatenate([np.ravel(keras.ops.convert_to_numpy(w)) for w in model.weights]))
        """
    )
    env = dict(os.environ)
    run = lambda folder, out, kill: subprocess.run(  # noqa: E731
        [sys.executable, "-c", script, str(tmp_path / folder), str(tmp_path / out)],
        env=dict(env, KILL="1" if kill else ""),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run("whole", "whole.npy", False).returncode == 0
    assert run("parts", "unused.npy", True).returncode == 9
    result = run("parts", "parts.npy", False)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "parts.npy"), np.load(tmp_path / "whole.npy"), rtol=1e-5, atol=1e-6
    )


def _train_standard(folder, data, x, y, kill=None, epochs=4):
    from kzoo.recipes import EpochMetric, training_callbacks

    model = _model()
    run = RunFolder(folder)
    score = EpochMetric("val_score", lambda m: -float(m.evaluate(x, y, verbose=0)), every=2)
    callbacks, backup = training_callbacks(
        run, monitor="val_score", mode="max", patience=3, metrics=[score], datasets=[data]
    )
    if kill:
        callbacks.append(KillAt(*kill))
    fit_resumable(model, data, backup=backup, epochs=epochs, callbacks=callbacks, verbose=0)
    return model, run


@pytest.mark.large
def test_standard_callbacks_resume_with_the_task_metric(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 6)).astype("float32")
    y = (x @ rng.standard_normal((6, 1))).astype("float32")
    whole, whole_run = _train_standard(str(tmp_path / "whole"), EpochBatches(x, y, 16, 2), x, y)
    with pytest.raises(KeyboardInterrupt):
        _train_standard(str(tmp_path / "parts"), EpochBatches(x, y, 16, 2), x, y, kill=(3, 1))
    parts, parts_run = _train_standard(str(tmp_path / "parts"), EpochBatches(x, y, 16, 2), x, y)
    logs = [_log(r.path) for r in (whole_run, parts_run)]
    assert [e for e, _ in logs[0]] == [e for e, _ in logs[1]] == list("0123")
    with open(parts_run.file("log.csv")) as f:
        scores = [float(row["val_score"]) for row in csv.DictReader(f)]
    assert scores[1] == scores[0] != scores[2] != scores[3]  # epochs 0, 2 and the last
    best = keras.saving.load_model(parts_run.file("best.keras"))
    reference = keras.saving.load_model(whole_run.file("best.keras"))
    np.testing.assert_allclose(
        best.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5
    )


def test_best_model_names_a_missing_log_key(tmp_path):
    from kzoo.recipes import BestModel

    callback = BestModel(tmp_path / "best.keras", monitor="val_f1", mode="max")
    callback.set_model(_model())
    with pytest.raises(ValueError, match="'val_f1', which is not in the logs"):
        callback.on_epoch_end(0, {"loss": 1.0})
