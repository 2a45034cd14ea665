"""The same model and weights give the same numbers on every backend.

Runs tests/cross_backend_worker.py once per backend in a subprocess, then
checks (1) outputs agree within 1e-5 and (2) a `.keras` file saved under
one backend loads under the others with equal outputs.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.harness import assert_close

BACKENDS = ["tensorflow", "jax", "torch"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_worker(backend, workdir, others):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.cross_backend_worker", str(workdir), *others],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{backend} worker failed:\n{proc.stderr[-3000:]}"
    return np.load(os.path.join(workdir, f"out_{backend}_{len(others)}.npz"))


@pytest.mark.cross_backend
def test_outputs_and_saved_files_agree_across_backends(tmp_path):
    for backend in BACKENDS:
        pytest.importorskip({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend])
    rng = np.random.default_rng(0)
    # Shapes of the worker's model weights, in `model.weights` order.
    shapes = [(30, 6)]
    shapes += [(6, 20), (5, 20), (20,)] * 2  # forward and backward LSTM
    shapes += [(10, 12), (4, 12), (12,)]  # GRU, reset_after=False
    shapes += [(4, 3), (3, 3), (3,)]  # SimpleRNNCell
    shapes += [(3, 12), (3, 12), (12,), (12,), (12,), (3,), (3,)]  # LSTMCell + layer norm
    shapes += [(3, 2), (2,)]
    weights = {f"w{i}": rng.uniform(-0.5, 0.5, s).astype("float32") for i, s in enumerate(shapes)}
    ids = rng.integers(1, 30, size=(4, 7))
    ids[0, 5:] = 0
    ids[2, 2:] = 0
    np.savez(tmp_path / "weights.npz", ids=ids, **weights)

    outputs = {}
    for i, backend in enumerate(BACKENDS):
        outputs.update(run_worker(backend, tmp_path, BACKENDS[:i]))
    outputs.update(
        {f"{k}_again": v for k, v in run_worker("tensorflow", tmp_path, BACKENDS[1:]).items()}
    )

    reference = outputs["tensorflow"]
    assert np.all(np.isfinite(reference)) and np.abs(reference).max() > 1e-3
    for backend in BACKENDS[1:]:
        assert_close(outputs[backend], reference, what=f"{backend} vs tensorflow")
    for key in ("tensorflow_loaded", "jax_loaded", "jax_loaded_again", "torch_loaded_again"):
        assert_close(outputs[key], reference, what=key)
