"""CRF layer and its loss: numbers against a float64 brute-force reference."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.crf import CRF
from tests.conftest import BACKEND
from tests.references import crf_ref

TOL = dict(rtol=1e-5, atol=1e-5)


def _np(x):
    return ops.convert_to_numpy(x)


def _random_crf(num_tags, rng, scale=1.0):
    crf = CRF(num_tags)
    crf.build((None, None, num_tags))
    for w in (crf.transitions, crf.start_scores, crf.end_scores):
        w.assign((scale * rng.normal(size=w.shape)).astype("float32"))
    return crf


def _params(crf):
    return [_np(w) for w in (crf.transitions, crf.start_scores, crf.end_scores)]


# Every mask of 4 steps: right/left padding, holes, single steps, empty rows.
ALL_MASKS = np.array(list(itertools.product([0, 1], repeat=4)), bool)  # (16, 4)


@pytest.mark.parametrize("num_tags", [1, 2, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_log_likelihood_matches_enumeration(num_tags, masked):
    rng = np.random.default_rng(num_tags + 10 * masked)
    batch, time = 16, 4
    crf = _random_crf(num_tags, rng)
    e = rng.normal(size=(batch, time, num_tags)).astype("float32")
    tags = rng.integers(0, num_tags, size=(batch, time))
    mask = ALL_MASKS if masked else None
    got = _np(crf.log_likelihood(e, tags, mask))
    want = crf_ref.log_likelihood(e, tags, mask, *_params(crf))
    np.testing.assert_allclose(got, want, **TOL)


def test_path_score_and_log_partition_match_enumeration():
    rng = np.random.default_rng(5)
    crf = _random_crf(3, rng)
    e = rng.normal(size=(16, 4, 3)).astype("float32")
    tags = rng.integers(0, 3, size=(16, 4))
    params = _params(crf)
    score = [
        crf_ref.path_score(e[b][m], list(tags[b][m]), *params) for b, m in enumerate(ALL_MASKS)
    ]
    log_z = np.array(score) - crf_ref.log_likelihood(e, tags, ALL_MASKS, *params)
    np.testing.assert_allclose(_np(crf.path_score(e, tags, ALL_MASKS)), score, **TOL)
    np.testing.assert_allclose(_np(crf.log_partition(e, ALL_MASKS)), log_z, **TOL)


def test_probabilities_sum_to_one():
    rng = np.random.default_rng(3)
    time, k = 3, 3
    crf = _random_crf(k, rng)
    e = rng.normal(size=(1, time, k)).astype("float32")
    paths = np.array(list(itertools.product(range(k), repeat=time)))
    ll = _np(crf.log_likelihood(np.repeat(e, len(paths), 0), paths))
    np.testing.assert_allclose(np.exp(ll).sum(), 1.0, **TOL)


@pytest.mark.parametrize("num_tags", [1, 2, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_viterbi_matches_enumeration(num_tags, masked):
    rng = np.random.default_rng(100 + num_tags + 10 * masked)
    batch, time = 16, 4
    crf = _random_crf(num_tags, rng)
    e = rng.normal(size=(batch, time, num_tags)).astype("float32")
    mask = ALL_MASKS if masked else None
    tags, best = crf.viterbi_decode(e, mask, return_scores=True)
    want_tags, want_best = crf_ref.best_path(e, mask, *_params(crf))
    assert _np(tags).dtype == np.int32
    np.testing.assert_array_equal(_np(tags), want_tags)
    np.testing.assert_allclose(_np(best), want_best, **TOL)


def test_call_decodes_at_inference():
    rng = np.random.default_rng(6)
    crf = _random_crf(3, rng)
    e = rng.normal(size=(16, 4, 3)).astype("float32")
    want, _ = crf_ref.best_path(e, ALL_MASKS, *_params(crf))
    np.testing.assert_array_equal(_np(crf(e, mask=ALL_MASKS)), want)
    np.testing.assert_array_equal(_np(crf(e, mask=ALL_MASKS, training=False)), want)


def test_padding_does_not_change_results():
    """One sequence, then padded on the right, the left and both sides."""
    rng = np.random.default_rng(7)
    k, n, pad = 3, 4, 3
    crf = _random_crf(k, rng)
    e = rng.normal(size=(1, n, k)).astype("float32")
    tags = rng.integers(0, k, size=(1, n))
    ll = _np(crf.log_likelihood(e, tags))
    path, best = crf.viterbi_decode(e, return_scores=True)

    offsets = [0, pad, 1]  # right, left, both
    # Large junk at padded steps would change every number if it leaked in.
    e_pad = (10 * rng.normal(size=(3, n + pad, k))).astype("float32")
    tags_pad = np.full((3, n + pad), -1)  # out-of-range labels at padding are fine
    mask = np.zeros((3, n + pad), bool)
    for row, left in enumerate(offsets):
        e_pad[row, left : left + n] = e[0]
        tags_pad[row, left : left + n] = tags[0]
        mask[row, left : left + n] = True

    np.testing.assert_allclose(
        _np(crf.log_likelihood(e_pad, tags_pad, mask)), np.repeat(ll, 3), **TOL
    )
    path_pad, best_pad = crf.viterbi_decode(e_pad, mask, return_scores=True)
    path_pad = _np(path_pad)
    for row, left in enumerate(offsets):
        np.testing.assert_array_equal(path_pad[row, left : left + n], _np(path)[0])
    np.testing.assert_array_equal(path_pad[~mask], 0)
    np.testing.assert_allclose(_np(best_pad), np.repeat(_np(best), 3), **TOL)


def test_keras_mask_is_used():
    rng = np.random.default_rng(11)
    k = 3
    crf = _random_crf(k, rng)
    x = rng.normal(size=(4, 5, k)).astype("float32")
    x[0, 3:] = 0.0
    x[2, :2] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    inputs = keras.Input((None, k))
    outputs = crf(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, outputs)
    want, _ = crf_ref.best_path(x, mask, *_params(crf))
    np.testing.assert_array_equal(_np(model(x)), want)


# torch.compile (Inductor) needs minutes on a small CPU for this graph.
_SLOW_JIT = [pytest.mark.large] if BACKEND == "torch" else []


@pytest.mark.parametrize(
    "jit_compile",
    ["auto", pytest.param(True, marks=_SLOW_JIT)],
)
def test_compiled_decode(jit_compile):
    """`predict` runs the decode in a tf.function / XLA / jax.jit / torch.compile."""
    rng = np.random.default_rng(12)
    k = 3
    crf = _random_crf(k, rng)
    inputs = keras.Input((None, k))
    model = keras.Model(inputs, crf(keras.layers.Masking(0.0)(inputs)))
    model.compile(jit_compile=jit_compile)
    x = rng.normal(size=(16, 4, k)).astype("float32")
    x[~ALL_MASKS] = 0.0
    want, _ = crf_ref.best_path(x, ALL_MASKS, *_params(crf))
    got = model.predict(x, batch_size=16, verbose=0)
    np.testing.assert_array_equal(got, want)


def test_call_decodes_in_training_too():
    """The training loss is `negative_log_likelihood`; `call` always decodes."""
    rng = np.random.default_rng(13)
    crf = _random_crf(2, rng)
    e = rng.normal(size=(2, 3, 2)).astype("float32")
    mask = np.array([[1, 1, 0], [0, 1, 1]], bool)
    want, _ = crf_ref.best_path(e, mask, *_params(crf))
    np.testing.assert_array_equal(_np(crf(e, mask=mask, training=True)), want)


def test_input_validation():
    with pytest.raises(ValueError, match="num_tags"):
        CRF(0)
    with pytest.raises(ValueError, match="num_tags"):
        CRF(2.5)
    crf = CRF(3)
    e = np.zeros((2, 4, 3), "float32")
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        crf.viterbi_decode(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"num_tags=3.*\(2, 4, 5\)"):
        crf.viterbi_decode(np.zeros((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"mask.*\(2, 5\)"):
        crf.viterbi_decode(e, np.ones((2, 5), bool))
    with pytest.raises(ValueError, match=r"tags.*\(2, 3\)"):
        crf.log_likelihood(e, np.zeros((2, 3), "int32"))
    bad = np.zeros((2, 4), "int32")
    bad[1, 2] = 3
    with pytest.raises(ValueError, match=r"\[3\]"):
        crf.log_likelihood(e, bad)
    bad[1, 2] = -1
    with pytest.raises(ValueError, match=r"\[-1\]"):
        crf.log_likelihood(e, bad)
    # Out-of-range labels are allowed where the mask is off.
    mask = np.ones((2, 4), bool)
    mask[1, 2] = False
    assert np.isfinite(_np(crf.log_likelihood(e, bad, mask))).all()
    with pytest.raises(ValueError, match="num_tags=3"):
        crf(keras.Input((None, 4)))


def test_config_round_trip():
    crf = CRF(
        4,
        transitions_initializer=keras.initializers.RandomNormal(stddev=0.3),
        boundary_initializer="ones",
        transitions_regularizer=keras.regularizers.L2(0.01),
        name="my_crf",
    )
    config = crf.get_config()
    clone = CRF.from_config(config)
    assert clone.get_config() == config
    assert clone.num_tags == 4 and clone.name == "my_crf"
    clone.build((None, None, 4))
    np.testing.assert_allclose(_np(clone.start_scores), np.ones(4))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(crf))
    assert isinstance(restored, CRF) and restored.get_config() == config


# ------------------------------------------------------------------- the loss


def test_negative_log_likelihood_matches_enumeration():
    """Mean of -log p(y | e) over the rows with a valid step (brute force over
    every tag path), with per-row weights; all-padding rows do not count."""
    rng = np.random.default_rng(1)
    k = 3
    crf = _random_crf(k, rng)
    e = rng.normal(size=(16, 4, k)).astype("float32")
    tags = rng.integers(0, k, size=(16, 4))
    w = rng.uniform(0.5, 2.0, size=16).astype("float32")
    ll = crf_ref.log_likelihood(e, tags, ALL_MASKS, *_params(crf))  # row 0 is empty
    rows = ALL_MASKS.any(axis=1).sum()
    got = _np(crf.negative_log_likelihood(e, tags, ALL_MASKS))
    np.testing.assert_allclose(got, -ll.sum() / rows, **TOL)
    got = _np(crf.negative_log_likelihood(e, tags, ALL_MASKS, sample_weight=w))
    np.testing.assert_allclose(got, -(w * ll).sum() / rows, **TOL)
    got = _np(crf.negative_log_likelihood(e, tags))
    np.testing.assert_allclose(
        got, -crf_ref.log_likelihood(e, tags, None, *_params(crf)).mean(), **TOL
    )
    empty = np.zeros((2, 4), bool)
    assert _np(crf.negative_log_likelihood(e[:2], tags[:2], empty)) == 0.0
    with pytest.raises(ValueError, match="sample_weight"):
        crf.negative_log_likelihood(e, tags, ALL_MASKS, sample_weight=np.ones((16, 4)))


def test_crf_traces_with_unknown_batch_and_time_on_tensorflow():
    """`tf.function` with relaxed shapes (as `fit` retraces for new lengths)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function input signatures exist on the TensorFlow backend only")
    import tensorflow as tf

    crf = CRF(4)
    crf.build((None, None, 4))
    specs = [
        tf.TensorSpec((None, None, 4)),
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None), tf.bool),
    ]

    @tf.function(input_signature=specs)
    def traced(emissions, tags, mask):
        with tf.GradientTape() as tape:
            log_likelihood = crf.log_likelihood(emissions, tags, mask)
            total = tf.reduce_sum(log_likelihood)
        gradient = tape.gradient(total, crf.transitions)
        gradient = tf.convert_to_tensor(gradient)  # the gathers give IndexedSlices
        return log_likelihood, gradient, crf.viterbi_decode(emissions, mask)

    rng = np.random.default_rng(0)
    emissions = rng.standard_normal((3, 5, 4)).astype("float32")
    tags = rng.integers(0, 4, (3, 5)).astype("int32")
    mask = np.ones((3, 5), bool)
    mask[1, 3:] = False
    log_likelihood, gradient, decoded = traced(emissions, tags, mask)
    np.testing.assert_allclose(
        log_likelihood, ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask)), atol=1e-5
    )
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0
    np.testing.assert_array_equal(
        decoded, ops.convert_to_numpy(crf.viterbi_decode(emissions, mask))
    )
