"""kzoo.utils.set_random_seed: Keras's seeding, without importing TensorFlow on JAX/torch."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kzoo.utils import set_random_seed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _draws():
    import random

    return [
        random.random(),
        float(np.random.rand()),
        *keras.ops.convert_to_numpy(keras.random.uniform((3,))).tolist(),
        *keras.ops.convert_to_numpy(keras.layers.Dropout(0.5)(np.ones(4), training=True)).tolist(),
    ]


def test_same_random_streams_as_keras():
    set_random_seed(5)
    ours = _draws()
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(ours, _draws())
    set_random_seed(6)
    assert _draws() != ours


def test_tensorflow_is_not_imported_on_other_backends():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("checked once, from the TensorFlow pass, in a JAX process")
    backend = "jax"
    code = textwrap.dedent(
        """
        import sys
        import keras
        from kzoo.utils import set_random_seed
        set_random_seed(3)
        assert "tensorflow" not in sys.modules, "set_random_seed imported TensorFlow"
        from keras.src.utils.module_utils import tensorflow
        assert tensorflow.available  # still found when something asks for it
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
