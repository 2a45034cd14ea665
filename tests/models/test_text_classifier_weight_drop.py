"""TextClassifier(recurrent_weight_dropout=...): AWD-LSTM weight drop in the classifier."""

import keras
import numpy as np
import pytest

from kzoo.layers import RNN, Bidirectional
from kzoo.models import LanguageModel, TextClassifier
from kzoo.models.text_classifier import TextClassifierBackbone
from kzoo.training import transfer_language_model_weights
from kzoo.utils.atomic_write import save_model
from tests.harness import assert_close, to_numpy

VOCABULARY_SIZE, WIDTH, RATE = 20, 6, 0.5
# Three texts of lengths 7, 4 and 1, right-padded to 7 steps.
IDS = np.array(
    [[3, 7, 1, 9, 4, 12, 18], [5, 2, 16, 8, 0, 0, 0], [11, 0, 0, 0, 0, 0, 0]], dtype="int32"
)


def classifier(rate, **kwargs):
    args = dict(
        embedding_dim=WIDTH,
        units=WIDTH,
        cell_type="lstm",
        num_layers=2,
        bidirectional=True,
        pooling=["last", "max", "mean"],
        seed=3,
    )
    return TextClassifier(VOCABULARY_SIZE, recurrent_weight_dropout=rate, **{**args, **kwargs})


def run(model, training):
    """Outputs as float64 NumPy (without the autograd graph of a PyTorch training call)."""
    output = keras.ops.stop_gradient(model(IDS, training=training))
    return np.asarray(to_numpy(output), np.float64)


def cells(model):
    """The recurrent cells of a model, in layer order (forward before backward)."""
    for layer in model.layers:
        if isinstance(layer, Bidirectional):
            yield from (layer.forward_layer.cell, layer.backward_layer.cell)
        elif isinstance(layer, RNN):
            yield layer.cell


def seed_state(cell):
    return np.array(to_numpy(cell.seed_generator.state.value))


def mask_drawn_from(cell, state, batch):
    """The weight-drop mask that a training call starting from `state` draws."""
    cell.seed_generator.state.assign(state)
    step = keras.ops.zeros((batch, cell.input_dim))
    cell.prepare_dropout_masks(step, cell.get_initial_state(batch)[0], training=True)
    mask = np.asarray(to_numpy(cell._recurrent_weight_mask), np.float64)
    cell.reset_dropout_masks()
    return mask


def test_weight_drop_acts_in_training_only():
    model, plain = classifier(RATE, num_layers=1), classifier(0.0, num_layers=1)
    plain.set_weights(model.get_weights())
    assert all(cell.recurrent_weight_dropout == RATE for cell in cells(model))
    assert all(cell.recurrent_weight_dropout == 0.0 for cell in cells(plain))
    # The pooled features: the head's sigmoid, near 0.5 at first, would hide differences.
    features = run(model.backbone, False)
    assert_close(features, run(plain.backbone, False), what="inference features")
    assert np.max(np.abs(run(model.backbone, True) - features)) > 1e-3


@pytest.mark.parametrize("cell_type", ["gru", "rnn"])
def test_every_cell_type_drops_weights(cell_type):
    model = classifier(RATE, cell_type=cell_type, num_layers=1, bidirectional=False)
    assert [cell.recurrent_weight_dropout for cell in cells(model)] == [RATE]
    features = run(model.backbone, False)
    assert np.max(np.abs(run(model.backbone, True) - features)) > 1e-3


def test_training_output_is_the_plain_model_with_the_dropped_kernels():
    model = classifier(RATE)
    states = [seed_state(cell) for cell in cells(model)]
    training = run(model.backbone, True)
    masks = [mask_drawn_from(cell, s, len(IDS)) for cell, s in zip(cells(model), states)]
    # Two layers, two directions: four cells, each with its own mask.
    assert len(masks) == 4
    plain = classifier(0.0)
    plain.set_weights(model.get_weights())
    for source, target, mask in zip(cells(model), cells(plain), masks):
        kernel = np.asarray(to_numpy(source.recurrent_kernel), np.float64)
        # One Bernoulli mask of the kernel's shape, kept entries scaled by 1 / (1 - p).
        assert mask.shape == kernel.shape == (WIDTH, 4 * WIDTH)
        assert set(np.unique(mask)) <= {0.0, 1.0 / (1.0 - RATE)}
        assert 0.2 < np.mean(mask == 0) < 0.8
        target.recurrent_kernel.assign((kernel * mask).astype("float32"))
    assert not np.array_equal(masks[0], masks[2])  # layers draw independently
    assert_close(training, run(plain.backbone, False), what="training features")


def test_config_round_trip_and_saving(tmp_path):
    model = classifier(0.3, bidirectional=False, name="clf")
    config = model.get_config()
    assert config["backbone"]["config"]["recurrent_weight_dropout"] == 0.3
    assert model.backbone.recurrent_weight_dropout == 0.3
    clone = TextClassifier.from_config(config)
    assert clone.get_config() == config
    assert all(cell.recurrent_weight_dropout == 0.3 for cell in cells(clone))
    path = str(tmp_path / "clf.keras")
    save_model(model, path)  # atomic, as kzoo writes every file
    loaded = keras.saving.load_model(path)
    assert loaded.backbone.recurrent_weight_dropout == 0.3
    assert all(cell.recurrent_weight_dropout == 0.3 for cell in cells(loaded))
    assert_close(loaded.predict(IDS, verbose=0), model.predict(IDS, verbose=0), what="reloaded")
    # A config saved before the option existed loads with it off.
    old = dict(model.backbone.get_config())
    del old["recurrent_weight_dropout"]
    assert TextClassifierBackbone.from_config(old).recurrent_weight_dropout == 0.0


def test_transfer_from_a_weight_dropped_language_model():
    language_model = LanguageModel(
        vocabulary_size=VOCABULARY_SIZE,
        embedding_dim=WIDTH,
        units=WIDTH,
        num_layers=2,
        tie_weights=True,
        recurrent_weight_dropout=0.4,
        seed=1,
    )
    model = classifier(0.3, bidirectional=False)
    pairs = transfer_language_model_weights(language_model, model)
    assert len(pairs) == 3  # the embedding and two LSTM layers
    assert_close(
        model.get_layer("embedding").embeddings, to_numpy(language_model.embedding.embeddings)
    )
    for source, target in zip(language_model.recurrent_layers, cells(model)):
        assert target.recurrent_weight_dropout == 0.3
        for a, b in zip(source.cell.weights, target.weights):
            np.testing.assert_array_equal(to_numpy(b), to_numpy(a))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.3", None, True])
def test_bad_rates_are_refused_by_name(rate):
    with pytest.raises(ValueError, match=r"`recurrent_weight_dropout` must be a float in \[0, 1\)"):
        TextClassifierBackbone(VOCABULARY_SIZE, recurrent_weight_dropout=rate)
    with pytest.raises(ValueError, match="Received: recurrent_weight_dropout="):
        TextClassifier(VOCABULARY_SIZE, recurrent_weight_dropout=rate)
