"""Accuracy for training on a teacher's probabilities (distillation, self-training)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
def thresholded_binary_accuracy(y_true, y_pred, threshold=0.5):
    """Binary accuracy with the targets thresholded too.

    Keras's `binary_accuracy` thresholds only the predictions, so a soft
    target such as 0.8 (a teacher's probability) never counts as matched.
    Here a prediction is right when it falls on the same side of `threshold`
    as its target; on hard 0/1 targets this equals `binary_accuracy`.

    Args:
        y_true: targets in [0, 1], hard labels or probabilities.
        y_pred: predicted probabilities.
        threshold: the decision threshold of both.

    Returns:
        A float tensor of 1.0 (agrees) and 0.0 per sample.

    Example:

    >>> model.compile(loss="binary_crossentropy", metrics=[
    ...     keras.metrics.MeanMetricWrapper(thresholded_binary_accuracy, name="accuracy")])
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.reshape(y_true, ops.shape(y_pred))  # labels (batch,) vs outputs (batch, 1)
    agree = ops.equal(ops.greater(y_true, threshold), ops.greater(y_pred, threshold))
    return ops.cast(agree, keras.backend.floatx())
