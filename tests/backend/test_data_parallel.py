"""A data-parallel training step of a kzoo LSTM equals a single-device step.

Runs on JAX with two simulated CPU devices; XLA reads
`--xla_force_host_platform_device_count` only when it starts, so the check
runs in a fresh subprocess with `XLA_FLAGS` set before JAX is imported.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One global batch of right-padded sequences; it replaces the "# <data>" line
# of both scripts.
DATA = textwrap.dedent(
    """
    batch, steps, features, units = 8, 6, 3, 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    lengths = np.array([6, 3, 5, 1, 6, 2, 4, 6])
    x = x * (np.arange(steps)[None, :] < lengths[:, None])[..., None]  # right-padded
    y = rng.standard_normal((batch, 1)).astype("float32")
    """
).lstrip()

SCRIPT = textwrap.dedent(
    """
    import json

    import jax
    import keras
    import numpy as np

    import kzoo

    assert len(jax.devices()) == 2, jax.devices()
    # <data>


    def build():
        inputs = keras.Input((steps, features))
        hidden = kzoo.layers.LSTM(units)(keras.layers.Masking(0.0)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        return model


    single = build()
    initial = single.get_weights()
    single.train_on_batch(x, y)

    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices())
    )
    parallel = build()
    parallel.set_weights(initial)
    parallel.train_on_batch(x, y)
    kernel = parallel.layers[2].cell.kernel.value
    shards = len(kernel.sharding.device_set)

    diffs = [
        float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), parallel.get_weights())
    ]
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), initial))
    print("RESULT " + json.dumps({"diffs": diffs, "moved": moved, "devices": shards}))
    """
)


def test_data_parallel_step_equals_single_device_step(tmp_path):
    if keras.backend.backend() != "jax":
        pytest.skip(
            "simulated multi-device CPU training (XLA_FLAGS host device count) "
            "exists on the JAX backend only"
        )
    script = tmp_path / "data_parallel.py"
    script.write_text(SCRIPT.replace("# <data>\n", DATA))
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""),
    )
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    assert result["devices"] == 2  # the weights live on both simulated devices
    assert result["moved"] > 1e-3  # the step changed the weights
    assert max(result["diffs"]) < 1e-5, result["diffs"]


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

    import keras
    import numpy as np

    import kzoo

    # <data>


    def build():
        inputs = keras.Input((steps, features))
        hidden = kzoo.layers.GRU(units)(keras.layers.Masking(0.0)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        return model


    single = build()
    initial = single.get_weights()
    single.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        parallel = build()
    parallel.set_weights(initial)
    parallel.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    diffs = [
        float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), parallel.get_weights())
    ]
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), initial))
    print("RESULT " + json.dumps(
        {"diffs": diffs, "moved": moved, "replicas": strategy.num_replicas_in_sync}
    ))
    """
)


def test_mirrored_strategy_step_equals_single_device_step(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute.MirroredStrategy needs the TensorFlow backend")
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT.replace("# <data>\n", DATA))
    env = dict(os.environ)
    env.update(KERAS_BACKEND="tensorflow", PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    assert result["replicas"] == 2  # one replica per logical CPU device
    assert result["moved"] > 1e-3
    assert max(result["diffs"]) < 1e-5, result["diffs"]
