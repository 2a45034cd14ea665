"""LanguageModel -> TextClassifier weight transfer and a small ULMFiT fine-tuning run."""

import keras
import numpy as np
import pytest

from kzoo.models import LanguageModel, TextClassifier
from kzoo.training import (
    DiscriminativeOptimizer,
    GradualUnfreezing,
    SlantedTriangularLearningRate,
    layer_groups,
    transfer_language_model_weights,
)
from kzoo.training.unfreezing import RECURRENT, walk_layers
from tests.harness import to_numpy

VOCABULARY, DIM = 30, 8


def _language_model(seed, cell_type="lstm", num_layers=2):
    model = LanguageModel(
        vocabulary_size=VOCABULARY,
        embedding_dim=DIM,
        units=DIM,
        num_layers=num_layers,
        cell_type=cell_type,
    )
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    return model


def _classifier(bidirectional=False, cell_type="lstm", num_layers=2, vocabulary_size=VOCABULARY):
    return TextClassifier(
        vocabulary_size,
        embedding_dim=DIM,
        cell_type=cell_type,
        units=DIM,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pooling=["max", "mean"],
    )


def _cell_weights(layer):
    return [to_numpy(w) for w in layer.cell.weights]


def _recurrent(model):
    return [layer for layer in walk_layers(model) if isinstance(layer, RECURRENT)]


def _embeddings(model):
    layer = next(layer for layer in walk_layers(model) if hasattr(layer, "embeddings"))
    return to_numpy(layer.embeddings)


def test_forward_model_into_a_unidirectional_classifier():
    lm, clf = _language_model(0), _classifier()
    copied = transfer_language_model_weights(lm, clf)
    assert len(copied) == 3
    np.testing.assert_array_equal(_embeddings(clf), _embeddings(lm))
    for source, target in zip(_recurrent(lm), _recurrent(clf)):
        for a, b in zip(_cell_weights(source), _cell_weights(target)):
            np.testing.assert_array_equal(a, b)


def test_forward_and_backward_models_into_a_bidirectional_classifier():
    forward, backward = _language_model(1), _language_model(2)
    clf = _classifier(bidirectional=True, num_layers=1)
    transfer_language_model_weights(forward, clf, backward_language_model=backward)
    (layer,) = _recurrent(clf)
    for a, b in zip(_cell_weights(_recurrent(forward)[0]), _cell_weights(layer.forward_layer)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_cell_weights(_recurrent(backward)[0]), _cell_weights(layer.backward_layer)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "classifier_kwargs,match",
    [
        ({"cell_type": "gru"}, "same kind"),
        ({"vocabulary_size": VOCABULARY + 1}, "Shape mismatch"),
        ({"num_layers": 3}, "at most as many"),
    ],
)
def test_mismatches_are_refused_and_nothing_is_copied(classifier_kwargs, match):
    lm, clf = _language_model(3), _classifier(**classifier_kwargs)
    before = [to_numpy(w).copy() for w in clf.weights]
    with pytest.raises(ValueError, match=match):
        transfer_language_model_weights(lm, clf)
    for a, b in zip(before, clf.weights):
        np.testing.assert_array_equal(a, to_numpy(b))


def test_ulmfit_fine_tuning_runs_with_fit():
    """Transfer, discriminative rates, STLR and gradual unfreezing together."""
    lm, clf = _language_model(4), _classifier(bidirectional=True, num_layers=1)
    transfer_language_model_weights(lm, clf)
    groups = layer_groups(clf)
    assert len(groups) == 3  # embedding, recurrent layer, head
    schedule = SlantedTriangularLearningRate(0.01, total_steps=6, cut_fraction=0.2)
    optimizer = DiscriminativeOptimizer(keras.optimizers.Adam(schedule), groups, factor=2.6)
    clf.compile(optimizer=optimizer, loss="binary_crossentropy")
    rng = np.random.default_rng(5)
    x = rng.integers(1, VOCABULARY, size=(16, 7)).astype("int32")
    x[:4, 5:] = 0  # padding
    y = (x[:, 0] > VOCABULARY // 2).astype("float32")[:, None]
    embeddings = _embeddings(clf).copy()
    history = clf.fit(
        x, y, epochs=3, batch_size=8, verbose=0, callbacks=[GradualUnfreezing(groups)]
    )
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.any(_embeddings(clf) != embeddings)  # unfrozen in the last epoch
