"""AWD-LSTM options of LanguageModelBackbone: each option's effect against a reference."""

import math

import keras
import numpy as np
import pytest

from kzoo.layers.sampled_softmax import (
    candidate_log_probabilities,
    draw_candidates,
    sampled_softmax_cross_entropy,
)
from kzoo.models import LanguageModel, LanguageModelBackbone
from kzoo.models.language_model.backbone import AWD_DEFAULTS, EmbeddingDropout
from tests.harness import assert_close, to_numpy

VOCABULARY_SIZE = 40


def model_with(**options):
    defaults = dict(embedding_dim=8, units=8, num_layers=2, tie_weights=True, seed=5)
    return LanguageModel(vocabulary_size=VOCABULARY_SIZE, **{**defaults, **options})


def run(model, x, training):
    """Outputs as NumPy (without the autograd graph of a PyTorch training call)."""
    return to_numpy(keras.ops.stop_gradient(model(x, training=training)))


def ids(batch=3, time=9, seed=0):
    return np.random.default_rng(seed).integers(0, VOCABULARY_SIZE, (batch, time)).astype("int32")


def test_options_off_keep_config_and_outputs():
    plain = model_with()
    assert not set(AWD_DEFAULTS) & set(plain.get_config())
    explicit = model_with(**AWD_DEFAULTS)
    explicit.set_weights(plain.get_weights())
    x = ids()
    assert_close(run(explicit, x, True), run(plain, x, True), what="training logits")
    assert len(plain.weights) == len(explicit.weights)


def test_config_round_trip_and_saving(tmp_path):
    options = dict(
        input_dropout=0.3,
        hidden_dropout=0.2,
        output_dropout=0.4,
        variational_dropout=True,
        embedding_dropout=0.1,
        recurrent_weight_dropout=0.5,
        activation_regularization=2.0,
        temporal_activation_regularization=1.0,
        softmax="sampled",
        num_sampled=16,
    )
    model = model_with(**options)
    config = model.get_config()
    assert {k: config[k] for k in options} == options
    assert LanguageModel.from_config(config).get_config() == config
    path = str(tmp_path / "awd.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = ids()
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), what="reloaded logits")


def test_rates_default_to_dropout_and_apply_per_place():
    model = model_with(num_layers=3, dropout=0.3, hidden_dropout=0.1, output_dropout=0.0)
    assert [layer.rate for layer in model.dropout_layers] == [0.3, 0.1, 0.1, 0.0]


def test_variational_dropout_shares_the_mask_across_steps():
    model = model_with(input_dropout=0.5, variational_dropout=True)
    out = run(model.dropout_layers[0], np.ones((4, 6, 8), "float32"), True)
    kept = out != 0
    # One mask per (sequence, feature): every step equal to the first.
    np.testing.assert_array_equal(kept, np.repeat(kept[:, :1], 6, axis=1))
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out[kept], 2.0)


def test_embedding_dropout_drops_word_types():
    layer = EmbeddingDropout(0.5, vocabulary_size=6, seed=3)
    token_ids = np.array([[1, 2, 1, 3, 2, 1], [3, 3, 1, 2, 4, 5]], "int32")
    out = to_numpy(layer(np.ones((2, 6, 3), "float32"), token_ids, training=True))
    for token in range(6):
        values = out[token_ids == token]
        # Every occurrence of a type in the batch: all dropped or all scaled by 1/(1-p).
        assert np.all(values == 0) or np.allclose(values, 2.0), (token, values)
    inference = to_numpy(layer(np.ones((2, 6, 3), "float32"), token_ids, training=False))
    np.testing.assert_array_equal(inference, 1.0)


def test_weight_drop_reaches_every_layer_and_only_trains():
    model = model_with(recurrent_weight_dropout=0.5)
    assert all(layer.cell.recurrent_weight_dropout == 0.5 for layer in model.recurrent_layers)
    plain = model_with()
    plain.set_weights(model.get_weights())
    x = ids()
    assert_close(run(model, x, False), run(plain, x, False), what="inference logits")
    assert np.abs(run(model, x, True) - run(plain, x, True)).max() > 1e-4


def test_activation_regularization_equals_its_formula():
    alpha, beta = 2.0, 1.5
    model = model_with(activation_regularization=alpha, temporal_activation_regularization=beta)
    x = ids()
    model(x, training=True)
    losses = [float(to_numpy(loss)) for loss in model.losses]
    # No dropout, so the last layer's outputs are the same in inference.
    last = keras.Model(model.inputs, model.recurrent_layers[-1].output)
    h = to_numpy(last(x, training=False)).astype(np.float64)
    ar = alpha * np.mean(h**2)
    tar = beta * np.mean((h[:, 1:] - h[:, :-1]) ** 2)
    assert len(losses) == 2
    np.testing.assert_allclose(sorted(losses), sorted([ar, tar]), rtol=1e-4)
    model(x, training=False)
    assert not model.losses


def test_sampled_training_loss_is_the_sampled_softmax_of_the_hidden_states():
    model = model_with(softmax="sampled", num_sampled=12)
    x, y = ids(), ids(seed=1)
    hidden = keras.ops.stop_gradient(model(x, training=True))
    assert tuple(hidden.shape) == (3, 9, 8)
    assert tuple(model(x, training=False).shape) == (3, 9, VOCABULARY_SIZE)
    # The same draw as the model's: a copy of its seed generator's state.
    generator = keras.random.SeedGenerator(0)
    generator.state.assign(model.candidate_seed_generator.state.value)
    loss = float(to_numpy(model.compute_loss(x, y, hidden, training=True)))
    sampled = draw_candidates(12, VOCABULARY_SIZE, "log_uniform", generator)
    log_expected = candidate_log_probabilities(sampled, VOCABULARY_SIZE) + math.log(12)
    weights, bias = model.embedding.embeddings, model.embedding.output_bias
    expected = sampled_softmax_cross_entropy(hidden, y, weights, bias, sampled, log_expected)
    assert abs(loss - float(np.mean(to_numpy(expected)))) < 1e-5


def test_sampled_softmax_training_lowers_the_exact_loss():
    keras.utils.set_random_seed(0)
    # Many candidates for a tiny vocabulary: a log-uniform proposal over 40
    # ids rarely draws the high ids as negatives otherwise.
    model = model_with(softmax="sampled", num_sampled=30, units=16, embedding_dim=16)
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    # A deterministic stream: each id is followed by id + 1.
    x = (np.arange(32)[:, None] + np.arange(12)[None, :]) % VOCABULARY_SIZE
    x, y = x.astype("int32"), ((x + 1) % VOCABULARY_SIZE).astype("int32")
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    assert abs(before["loss"] - math.log(VOCABULARY_SIZE)) < 0.1
    history = model.fit(x, y, batch_size=8, epochs=8, verbose=0)
    assert set(history.history) == {"loss"}  # no logits in a sampled step
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["loss"] < 0.8 * before["loss"]
    assert abs(after["perplexity"] - math.exp(after["loss"])) < 1e-3 * after["perplexity"]
    assert model.output_projection is None  # tied: one matrix in and out


def test_bad_awd_arguments():
    with pytest.raises(ValueError, match="num_sampled"):
        LanguageModelBackbone(10, embedding_dim=4, units=4, softmax="sampled", num_sampled=10)
    with pytest.raises(ValueError, match="softmax"):
        LanguageModelBackbone(10, embedding_dim=4, units=4, softmax="adaptive")
    with pytest.raises(ValueError, match="recurrent_weight_dropout"):
        LanguageModelBackbone(10, embedding_dim=4, units=4, recurrent_weight_dropout=1.0)
    with pytest.raises(ValueError, match="activation_regularization"):
        LanguageModelBackbone(10, embedding_dim=4, units=4, activation_regularization=-1)


def test_sampled_fit_before_any_evaluate():
    # Keras reads every compiled metric at the end of `fit`; a sampled step has
    # no logits to update the perplexity with, so the model builds it itself.
    model = model_with(softmax="sampled", num_sampled=12)
    model.compile()
    history = model.fit(ids(batch=4), ids(batch=4, seed=1), epochs=1, verbose=0)
    assert set(history.history) == {"loss"}
    assert np.isfinite(history.history["loss"][0])
