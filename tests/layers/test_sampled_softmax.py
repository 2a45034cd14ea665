"""Sampled softmax (`kzoo.layers.SampledSoftmax`) against the exact softmax."""

import keras
import numpy as np
import pytest
from keras import ops

import kzoo
from kzoo.layers import sampled_softmax as ss
from kzoo.models import TiedEmbedding
from tests.harness import assert_close, to_numpy

VOCABULARY, DIM = 12, 6


def _numpy_cross_entropy(hidden, targets, weights, bias):
    logits = np.asarray(hidden, np.float64) @ np.asarray(weights, np.float64).T + bias
    return _cross_entropy_from_logits(logits, targets)


def _cross_entropy_from_logits(logits, targets):
    logits = np.asarray(logits, np.float64)
    peak = logits.max(-1, keepdims=True)
    log_norm = np.log(np.exp(logits - peak).sum(-1)) + peak[..., 0]
    return log_norm - np.take_along_axis(logits, targets[..., None], -1)[..., 0]


def _problem(seed=0, shape=(3, 4)):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(*shape, DIM)).astype("float32")
    targets = rng.integers(0, VOCABULARY, size=shape).astype("int32")
    weights = rng.normal(size=(VOCABULARY, DIM)).astype("float32") * 0.5
    bias = rng.normal(size=(VOCABULARY,)).astype("float32")
    return hidden, targets, weights, bias


def test_every_id_once_with_unit_counts_is_the_exact_loss():
    hidden, targets, weights, bias = _problem()
    every_id = np.arange(VOCABULARY, dtype="int32")
    zeros = np.zeros(VOCABULARY, "float32")
    loss = ss.sampled_softmax_cross_entropy(hidden, targets, weights, bias, every_id, zeros)
    expected = _numpy_cross_entropy(hidden, targets, weights, bias)
    assert_close(loss, expected)
    assert_close(ss.full_softmax_cross_entropy(hidden, targets, weights, bias), expected)


def test_accidental_hits_are_removed():
    hidden, targets, weights, bias = _problem(1)
    # Only the targets themselves are drawn: once removed, nothing competes.
    drawn = np.repeat(targets[:1, :1].reshape(-1), 3).astype("int32")
    zeros = np.zeros(3, "float32")
    kept = ss.sampled_softmax_cross_entropy(
        hidden[:1, :1], targets[:1, :1], weights, bias, drawn, zeros
    )
    assert_close(kept, np.zeros((1, 1)))
    counted = ss.sampled_softmax_cross_entropy(
        hidden[:1, :1], targets[:1, :1], weights, bias, drawn, zeros, remove_accidental_hits=False
    )
    assert_close(counted, np.full((1, 1), np.log(4.0)))


def test_log_uniform_probabilities_and_draws():
    ids = np.arange(1000, dtype="int32")
    log_q = to_numpy(ss.candidate_log_probabilities(ids, 1000))
    expected = np.log((np.log(ids + 2.0) - np.log(ids + 1.0)) / np.log(1001.0))
    assert_close(log_q, expected)
    assert abs(np.exp(np.asarray(log_q, np.float64)).sum() - 1.0) < 1e-4
    draws = to_numpy(ss.draw_candidates(20000, 1000, seed=3))
    assert draws.min() >= 0 and draws.max() < 1000
    counts = np.bincount(draws, minlength=1000)
    # The frequent head is drawn as often as Q says, within 5 standard deviations.
    for k in range(3):
        q = np.exp(expected[k])
        assert abs(counts[k] - 20000 * q) < 5 * np.sqrt(20000 * q * (1 - q))


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_many_samples_approach_the_exact_loss(sampler):
    """With S draws the corrected sampled normaliser converges to the exact
    one (law of large numbers on counts / (S Q))."""
    hidden, targets, weights, bias = _problem(2, shape=(2, 3))
    output = keras.layers.Dense(VOCABULARY)
    output.build((None, DIM))
    output.set_weights([weights.T, bias])
    layer = ss.SampledSoftmax(output, num_sampled=40000, sampler=sampler, seed=0)
    sampled = to_numpy(layer(hidden, targets, training=True))
    exact = to_numpy(layer(hidden, targets, training=False))
    assert_close(exact, _numpy_cross_entropy(hidden, targets, weights, bias))
    assert np.max(np.abs(sampled - exact)) < 0.05


def _tiny_language_model(seed=0, num_sampled=8):
    tied = TiedEmbedding(VOCABULARY, DIM, name="embedding")
    ids = keras.Input((None,), dtype="int32")
    targets = keras.Input((None,), dtype="int32")
    hidden = kzoo.layers.LSTM(DIM, return_sequences=True, name="lstm")(tied(ids))
    loss_layer = kzoo.layers.SampledSoftmax(tied, num_sampled=num_sampled, seed=seed)
    trainer = keras.Model([ids, targets], loss_layer(hidden, targets))
    language_model = keras.Model(ids, tied(hidden, reverse=True))
    return trainer, language_model, tied


def test_tiny_language_model_trains_with_tied_weights():
    rng = np.random.default_rng(0)
    start = rng.integers(0, VOCABULARY, size=(64, 1))
    stream = (start + np.arange(9)[None, :]) % VOCABULARY  # next id = id + 1
    x, y = stream[:, :-1].astype("int32"), stream[:, 1:].astype("int32")
    trainer, language_model, tied = _tiny_language_model()
    trainer.compile(keras.optimizers.Adam(0.05))
    before = trainer.evaluate([x, y], verbose=0)  # exact loss in inference
    embeddings_before = to_numpy(tied.embeddings).copy()
    trainer.fit([x, y], epochs=15, batch_size=16, verbose=0)
    after = trainer.evaluate([x, y], verbose=0)
    assert np.isfinite(after) and after < 0.5 * before
    assert np.all(np.isfinite(to_numpy(tied.embeddings)))
    assert np.max(np.abs(to_numpy(tied.embeddings) - embeddings_before)) > 1e-3
    # The exact softmax of the inference model scores the same loss.
    logits = to_numpy(language_model.predict(x, verbose=0))
    assert abs(np.mean(_cross_entropy_from_logits(logits, y)) - after) < 1e-3


def test_masked_tokens_do_not_count():
    hidden, targets, weights, bias = _problem(3)
    tied = TiedEmbedding(VOCABULARY, DIM)
    tied.build()
    tied.embeddings.assign(weights)
    tied.output_bias.assign(bias)
    layer = ss.SampledSoftmax(tied, num_sampled=5)
    mask = np.ones(targets.shape, bool)
    mask[0, 2:] = False
    losses = layer(hidden, targets, hidden_mask=mask, training=False)
    expected = _numpy_cross_entropy(hidden, targets, weights, bias) * mask
    assert_close(losses, expected)
    assert_close(layer.losses[0], expected.sum() / mask.sum())


def test_gradient_is_finite():
    hidden, targets, weights, bias = _problem(4)
    output = keras.layers.Dense(VOCABULARY)
    output.build((None, DIM))
    inputs = keras.Input((None, DIM))
    target_ids = keras.Input((None,), dtype="int32")
    model = keras.Model(
        [inputs, target_ids], ss.SampledSoftmax(output, num_sampled=4, seed=1)(inputs, target_ids)
    )
    model.compile(keras.optimizers.SGD(10.0))
    model.train_on_batch([hidden, targets])
    kernel = to_numpy(output.kernel)
    assert np.all(np.isfinite(kernel))


def test_config_round_trip_and_errors():
    output = keras.layers.Dense(VOCABULARY)
    layer = ss.SampledSoftmax(output, num_sampled=7, sampler="uniform", seed=3)
    clone = ss.SampledSoftmax.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert isinstance(clone.output_layer, keras.layers.Dense)
    with pytest.raises(ValueError, match="num_sampled"):
        ss.SampledSoftmax(output, num_sampled=0)
    with pytest.raises(ValueError, match="sampler"):
        ss.SampledSoftmax(output, sampler="zipf")
    with pytest.raises(ValueError, match="output_layer"):
        ss.SampledSoftmax("dense")
    softmax_dense = keras.layers.Dense(VOCABULARY, activation="softmax")
    softmax_dense.build((None, DIM))
    with pytest.raises(ValueError, match="logits"):
        ss.SampledSoftmax(softmax_dense)(ops.ones((1, 2, DIM)), ops.zeros((1, 2), "int32"))


def test_padding_mask_reaches_the_layer_in_a_model():
    ids = keras.Input((None,), dtype="int32")
    targets = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(VOCABULARY, DIM, mask_zero=True)
    hidden = kzoo.layers.LSTM(DIM, return_sequences=True)(embedding(ids))
    model = keras.Model(
        [ids, targets], ss.SampledSoftmax(embedding, num_sampled=4)(hidden, targets)
    )
    x = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 1]], "int32")
    losses = to_numpy(model([x, np.ones_like(x)], training=False))
    assert np.all(losses[0, 3:] == 0.0) and np.all(losses[0, :3] > 0.0)
    assert np.all(losses[1] > 0.0)
