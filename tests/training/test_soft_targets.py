"""`kzoo.training.thresholded_binary_accuracy`: accuracy on a teacher's soft targets."""

import keras
import numpy as np

from kzoo.training import thresholded_binary_accuracy
from kzoo.utils.atomic_write import save_model
from tests.harness import to_numpy


def test_on_hard_labels_it_equals_keras_binary_accuracy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(40, 1)).astype("float32")
    predictions = rng.uniform(size=(40, 1)).astype("float32")
    np.testing.assert_array_equal(
        to_numpy(thresholded_binary_accuracy(labels, predictions)),
        to_numpy(keras.metrics.binary_accuracy(labels, predictions)),
    )


def test_soft_targets_count_by_their_side_of_the_threshold():
    targets = np.array([0.8, 0.8, 0.3, 0.3, 0.55], "float32")  # (batch,) as the recipe's labels
    predictions = np.array([[0.9], [0.2], [0.1], [0.7], [0.51]], "float32")
    got = to_numpy(thresholded_binary_accuracy(targets, predictions)).reshape(-1)
    np.testing.assert_array_equal(got, [1, 0, 1, 0, 1])
    # Keras's own accuracy never matches a soft target: the reason for this metric.
    keras_accuracy = to_numpy(keras.metrics.binary_accuracy(targets[:, None], predictions))
    assert keras_accuracy.sum() == 0


def test_a_compiled_model_reports_it_and_reloads(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    metric = keras.metrics.MeanMetricWrapper(thresholded_binary_accuracy, name="accuracy")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[metric])
    x = np.random.default_rng(1).normal(size=(16, 3)).astype("float32")
    soft = np.full((16,), 0.9, "float32")
    result = model.evaluate(x, soft, verbose=0, return_dict=True)
    expected = np.mean(model.predict(x, verbose=0)[:, 0] > 0.5)
    np.testing.assert_allclose(result["accuracy"], expected, atol=1e-6)
    save_model(model, tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")  # the registered function resolves
    again = reloaded.evaluate(x, soft, verbose=0, return_dict=True)
    np.testing.assert_allclose(again["accuracy"], expected, atol=1e-6)
