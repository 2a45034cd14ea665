"""Every file kzoo writes appears whole or not at all (kzoo.utils.atomic_write).

Process-level checks run the saving code in subprocesses (`save_worker.py`):
Ctrl-C and SIGKILL at random moments during `save_compact` / `save_model`, and
two processes saving to one path. Whatever the moment, the path holds a whole
earlier or later save, which Keras loads, never 0 bytes or a mix of two saves.
"""

import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile

import keras
import numpy as np
import pytest

from kzoo.models import saving
from kzoo.models.saving import save_compact, store_weights_as_float16
from kzoo.utils import atomic_write
from kzoo.utils.atomic_write import atomic_path, check_writable_folder, save_model, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "reliability", "save_worker.py")


def stored_version(path):
    """The one value every weight in the `.keras` file at `path` holds."""
    import h5py

    assert os.path.getsize(path) > 0, f"{path} is empty"
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None, f"{path} has a damaged member"
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(archive.namelist())
        weights = archive.read("model.weights.h5")
    values = set()
    with h5py.File(io.BytesIO(weights), "r") as store:
        store.visititems(
            lambda name, item: (
                values.update(np.unique(item[()]).tolist()) if hasattr(item, "dtype") else None
            )
        )
    assert len(values) == 1, f"{path} mixes weights of several saves: {sorted(values)}"
    return values.pop()


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if ".tmp-" in name or ".old-" in name)


class Worker:
    """A `save_worker.py` process and the lines it printed so far."""

    def __init__(self, path, function, first=0, count=0):
        self.path = path
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, str(path), function, str(first), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def saved(self):
        return [int(m.group(1)) for m in map(re.compile(r"saved (\d+)").search, self.lines) if m]

    def wait_for_saves(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while len(self.saved()) < n:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(
                    f"worker stopped before {n} saves: {self.lines}\n{self.proc.stderr.read()}"
                )
            time.sleep(0.02)

    def finish(self, timeout=120):
        self.proc.wait(timeout)
        self.reader.join(timeout)
        return self.proc.stderr.read()


def test_ctrl_c_and_kill_during_save_leave_old_or_new_file(tmp_path):
    # Both savers at once: one process start's worth of waiting, not two.
    workers = [Worker(tmp_path / f"{f}.keras", f) for f in ("save_compact", "save_model")]
    for worker in workers:
        worker.wait_for_saves(1)
    rng = random.Random(0)
    seen = [[stored_version(worker.path)] for worker in workers]
    interrupts = [0, 0]
    for _ in range(5):
        for i, worker in enumerate(workers):
            time.sleep(rng.uniform(0.0, 0.06))
            if worker.proc.poll() is None:  # a Ctrl-C between two saves ends it
                worker.proc.send_signal(signal.SIGINT)
                interrupts[i] += 1
        time.sleep(0.01)
        for i, worker in enumerate(workers):
            seen[i].append(stored_version(worker.path))  # whole, whatever the moment
    time.sleep(rng.uniform(0.0, 0.1))
    for worker in workers:
        worker.proc.kill()
        worker.finish()
    for worker, versions, count in zip(workers, seen, interrupts):
        saved = worker.saved()
        assert count >= 1 and saved, worker.lines
        # Save i writes version i; a Ctrl-C after its rename but before its
        # print leaves version i in place although it printed "interrupted".
        started = len(saved) + sum("interrupted" in line for line in worker.lines) + 1
        assert versions == sorted(versions) and max(versions) < started, (versions, worker.lines)
        version = stored_version(worker.path)
        assert max(saved) <= version < started, (version, worker.lines)
        loaded = keras.saving.load_model(worker.path)
        for weight in loaded.weights:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), version)
    assert any("interrupted" in line for worker in workers for line in worker.lines), [
        (w.lines, w.proc.returncode) for w in workers
    ]
    # Ctrl-C cleans up after itself; only a killed save may leave its
    # temporary file, which is never taken for the model.
    assert len(leftovers(tmp_path)) <= 2, leftovers(tmp_path)


def test_two_processes_saving_to_one_path_leave_one_whole_file(tmp_path):
    path = tmp_path / "shared.keras"
    writers = [Worker(path, "save_model", first, count=6) for first in (100, 200)]
    for writer in writers:
        stderr = writer.finish()
        assert writer.proc.returncode == 0, stderr
    version = stored_version(path)
    assert version in writers[0].saved() + writers[1].saved()
    keras.saving.load_model(path)
    assert leftovers(tmp_path) == []


class FailingSave(keras.layers.Layer):
    """A layer whose weights cannot be saved: the save fails half-way."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w

    def save_own_variables(self, store):
        store["0"] = np.zeros(3)  # something is already written when it fails
        raise RuntimeError("disk failure while saving")


def small_model(failing=False):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    if failing:
        hidden = FailingSave()(hidden)
    return keras.Model(inputs, hidden)


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    save_model(small_model(), path)
    assert leftovers(tmp_path) == []  # a normal save leaves nothing either
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="disk failure"):
        save_model(small_model(failing=True), path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_failed_save_compact_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.keras"
    save_compact(small_model(), path, "float16")
    before = path.read_bytes()
    with keras.saving.custom_object_scope({"FailingSave": FailingSave}):
        with pytest.raises(RuntimeError, match="disk failure"):
            save_compact(small_model(failing=True), path, "float32")
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_failed_float16_conversion_keeps_the_float32_file(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    save_compact(small_model(), path, "float32")
    before = path.read_bytes()
    real_copy_group = saving._copy_group

    def copy_then_fail(source, target):
        real_copy_group(source, target)
        raise OSError("no space left on device")

    monkeypatch.setattr(saving, "_copy_group", copy_then_fail)
    with pytest.raises(OSError, match="no space left"):
        store_weights_as_float16(path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    store_weights_as_float16(path)
    assert {a.dtype.name for a in _arrays(path) if a.dtype.kind == "f"} == {"float16"}, (
        "the conversion itself still works"
    )
    keras.saving.load_model(path)


def _arrays(path):
    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    arrays = []
    with h5py.File(io.BytesIO(data), "r") as store:
        store.visititems(
            lambda n, item: arrays.append(item[()]) if hasattr(item, "dtype") else None
        )
    return arrays


def test_interrupted_write_keeps_old_text_and_folder(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write('{"a": ')
            raise KeyboardInterrupt
    assert path.read_text() == '{\n  "a": 1\n}\n'
    folder = tmp_path / "saved_model"
    with atomic_path(folder) as tmp:
        os.makedirs(os.path.join(tmp, "variables"))
        with open(os.path.join(tmp, "saved_model.pb"), "w") as f:
            f.write("v1")
    with pytest.raises(ValueError):
        with atomic_path(folder) as tmp:
            os.makedirs(tmp)
            raise ValueError("export failed")
    assert (folder / "saved_model.pb").read_text() == "v1"
    assert leftovers(tmp_path) == []


def test_nothing_written_is_an_error_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(FileNotFoundError, match="Nothing was written"):
        with atomic_path(path):
            pass
    assert path.read_bytes() == b"old"


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    path = tmp_path / "model.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".model.tmp-{dead_pid}-0123abcd.json"
    fresh = tmp_path / f".model.tmp-{dead_pid}-4567abcd.json"
    alive = tmp_path / f".model.tmp-{os.getppid()}-89abcdef.json"
    other = tmp_path / f".other.tmp-{dead_pid}-0123abcd.json"
    old = time.time() - 2 * atomic_write.STALE_SECONDS
    for leftover in (stale, fresh, alive, other):
        leftover.write_text("half")
    for leftover in (stale, alive, other):
        os.utime(leftover, (old, old))
    write_json(path, [1])
    assert not stale.exists()
    # A recent one may belong to a writer on another machine; a live process
    # is still writing; another target's files are not this write's business.
    assert fresh.exists() and alive.exists() and other.exists()


def test_check_writable_folder(tmp_path):
    check_writable_folder(tmp_path / "new" / "deeper" / "model.keras")  # created later
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="file.txt.*not a folder"):
        check_writable_folder(a_file / "sub" / "model.keras")
    assert os.listdir(tmp_path) == ["file.txt"]  # the probe is gone
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="locked"):
            check_writable_folder(locked / "model.keras")


def test_weights_files_keep_the_suffix_keras_insists_on(tmp_path):
    model = small_model()
    path = tmp_path / "model.weights.h5"
    with atomic_path(path) as tmp:
        assert tmp.endswith(".weights.h5")
        model.save_weights(tmp)
    restored = small_model()
    restored.load_weights(path)
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert leftovers(tmp_path) == []


def test_float16_conversion_of_a_non_keras_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        store_weights_as_float16(tmp_path / "missing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="notes.keras.*not one"):
        store_weights_as_float16(text)
    assert text.read_text() == "not a model"
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="holds no model.weights.h5"):
        store_weights_as_float16(other_zip)


def test_save_model_names_the_path_for_a_wrong_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"must end in `\.keras`.*model\.bin'"):
        save_model(small_model(), tmp_path / "model.bin")
    assert os.listdir(tmp_path) == []
