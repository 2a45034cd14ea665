"""Kills a recipe mid-training, resumes it, and compares with an uninterrupted run.

One fresh process on the chosen backend (TensorFlow unimportable on JAX and
PyTorch, as a recipe must run without it) runs the recipe three times:

1. uninterrupted, into `<tmp>/full`;
2. into `<tmp>/resumed`, killed after `kill_after_batches` training batches
   (counted over every `fit` call of the run) by an exception raised from a
   callback, as an interrupt would stop it: nothing after that batch runs;
3. the same command again, which must say it resumes and end with the same
   `metrics.json` as run 1.

Each recipe writes its final metrics to `metrics.json` in its run folder
(timings elsewhere), so the two files are compared number by number.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras

from tests.harness import _BLOCK_TENSORFLOW

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_DRIVER = """
import json, os, sys
sys.path.insert(0, {root!r})
import keras
from tests.recipes.recipe_module import load_recipe


class Killed(BaseException):
    pass


count = {{"batches": 0, "limit": None}}


class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        count["batches"] += 1
        if count["limit"] is not None and count["batches"] >= count["limit"]:
            raise Killed()


_fit = keras.Model.fit


def fit(self, *args, callbacks=None, **kwargs):
    return _fit(self, *args, callbacks=[*(callbacks or []), Kill()], **kwargs)


keras.Model.fit = fit
recipe = load_recipe({script!r})
argv = {argv!r}
print("=== full run", flush=True)
recipe.main(argv + ["--output-dir", {full!r}])
full_batches = count["batches"]
print("=== killed run", flush=True)
count.update(batches=0, limit={kill!r})
killed = False
try:
    recipe.main(argv + ["--output-dir", {resumed!r}])
except Killed:
    killed = True
count.update(batches=0, limit=None)
print("=== resumed run", flush=True)
recipe.main(argv + ["--output-dir", {resumed!r}])
print("KILL_RESUME_RESULT " + json.dumps({{"killed": killed, "full_batches": full_batches}}))
"""

_NO_TENSORFLOW_LOADED = """
_loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "tensorflow")
assert not _loaded, f"TensorFlow was imported: {_loaded[:5]}"
"""


def _numbers(tree, prefix=""):
    """Flattens nested dicts/lists into {path: leaf}."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        return {prefix: tree}
    flat = {}
    for key, value in items:
        flat.update(_numbers(value, f"{prefix}/{key}" if prefix else str(key)))
    return flat


def assert_same_metrics(full, resumed, rtol=1e-4, atol=1e-6):
    a, b = _numbers(full), _numbers(resumed)
    assert a.keys() == b.keys(), f"metrics differ in keys: {sorted(a.keys() ^ b.keys())}"
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) or isinstance(y, float):
            assert math.isclose(x, y, rel_tol=rtol, abs_tol=atol), (
                f"{key}: uninterrupted {x!r} != resumed {y!r}"
            )
        else:
            assert x == y, f"{key}: uninterrupted {x!r} != resumed {y!r}"


def check_kill_and_resume(
    script, argv, tmp_path, kill_after_batches, backend=None, block_tensorflow=True, timeout=600
):
    """Runs the kill/resume comparison for `recipes/<script>`; returns the metrics.

    Args:
        script: the recipe's module name, e.g. `"ner"`.
        argv: its arguments (without `--output-dir`), small enough for a test.
        tmp_path: a temporary folder.
        kill_after_batches: training batches (over all `fit` calls) before the
            kill; pick one in the middle of an epoch after the first.
        backend: the Keras backend (default: this process's).
        block_tensorflow: make TensorFlow unimportable on JAX and PyTorch.

    Returns:
        `(metrics, stdout)`: the uninterrupted run's `metrics.json` and the output.
    """
    backend = backend or keras.backend.backend()
    full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
    code = textwrap.dedent(_DRIVER).format(
        root=ROOT,
        script=script,
        argv=list(argv),
        full=full,
        resumed=resumed,
        kill=kill_after_batches,
    )
    if block_tensorflow and backend != "tensorflow":
        code = _BLOCK_TENSORFLOW + code + _NO_TENSORFLOW_LOADED
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if backend == "jax":
        # The three runs build the same programs: JAX's persistent cache
        # compiles each once (XLA compilation is most of a small run's time).
        env.update(
            JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{script} failed on {backend}:\n{output[-6000:]}"
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("KILL_RESUME_RESULT ")]
    summary = json.loads(line[-1].split(" ", 1)[1])
    assert summary["killed"], (
        f"the run ended after {summary['full_batches']} batches, before the kill at "
        f"{kill_after_batches}: choose a smaller kill_after_batches"
    )
    resumed_output = result.stdout.split("=== resumed run", 1)[1]
    assert "Resuming" in resumed_output, "the restarted run did not say that it resumed"
    with open(os.path.join(full, "metrics.json"), encoding="utf-8") as f:
        full_metrics = json.load(f)
    with open(os.path.join(resumed, "metrics.json"), encoding="utf-8") as f:
        resumed_metrics = json.load(f)
    assert_same_metrics(full_metrics, resumed_metrics)
    return full_metrics, result.stdout
