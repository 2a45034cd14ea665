import os

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.attention import BahdanauAttention, LuongAttention, masked_softmax
from tests.references.attention_ref import (
    bahdanau_ref,
    luong_ref,
    masked_softmax_ref,
)

ATOL = 1e-5
B, T, HQ, HK, UNITS = 3, 6, 5, 4, 7

# Row 0: all valid; row 1: leading padding; row 2: fully masked.
MASK = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=bool,
)


def _rand(*shape, scale=1.0):
    return np.asarray(np.random.randn(*shape) * scale, dtype="float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _randomize(layer):
    """Replaces every weight (including scale/bias inits) with random values."""
    layer.set_weights([_rand(*w.shape, scale=0.5) for w in layer.get_weights()])


def _weights_by_name(layer):
    return {w.name: _np(w) for w in layer.weights}


def _check_weights_valid(weights, mask):
    """Exactly zero on masked positions; rows sum to 1 if any position is valid."""
    mask = np.broadcast_to(mask, weights.shape)
    assert np.all(weights[~mask] == 0.0)
    sums = weights.sum(-1)
    valid_rows = mask.any(-1)
    np.testing.assert_allclose(sums[valid_rows], 1.0, atol=1e-5)
    np.testing.assert_array_equal(sums[~valid_rows], 0.0)


# --- masked softmax ----------------------------------------------------------


def test_masked_softmax_matches_reference_and_handles_full_masks():
    scores = _rand(B, 2, T, scale=3.0)
    mask = MASK[:, None, :]
    out = _np(masked_softmax(scores, mask))
    np.testing.assert_allclose(out, masked_softmax_ref(scores, mask), atol=ATOL)
    assert not np.isnan(out).any()
    _check_weights_valid(out, mask)
    np.testing.assert_array_equal(out[2], 0.0)


def test_masked_softmax_ignores_huge_masked_scores_and_accepts_01_masks():
    scores = _rand(B, T)
    scores[:, 0] = 1e30  # masked in rows 1 and 2; must not dominate or overflow
    scores[:, 1] = -1e30
    out = _np(masked_softmax(scores, MASK.astype("float32")))
    assert np.isfinite(out).all()
    expected = masked_softmax_ref(scores, MASK)
    np.testing.assert_allclose(out, expected, atol=ATOL)
    np.testing.assert_allclose(out[1, 2:].sum(), 1.0, atol=ATOL)


def test_masked_softmax_without_mask_is_softmax():
    scores = _rand(B, T)
    np.testing.assert_allclose(_np(masked_softmax(scores)), masked_softmax_ref(scores), atol=ATOL)


# --- Bahdanau -----------------------------------------------------------------


@pytest.mark.parametrize("normalize", [False, True])
def test_bahdanau_matches_reference(normalize):
    for query_rank in (2, 3):
        _check_bahdanau(normalize, query_rank)


def _check_bahdanau(normalize, query_rank):
    query = _rand(B, HQ) if query_rank == 2 else _rand(B, 3, HQ)
    memory = _rand(B, T, HK)
    layer = BahdanauAttention(UNITS, normalize=normalize)
    layer(query, memory, mask=MASK)
    _randomize(layer)
    w = _weights_by_name(layer)
    context, weights = layer(query, memory, mask=MASK)
    context, weights = _np(context), _np(weights)
    ref_context, ref_weights = bahdanau_ref(
        query,
        memory,
        MASK,
        w["query_kernel"],
        w["key_kernel"],
        w["score_vector"],
        g=w.get("score_scale"),
        b=w.get("score_bias"),
    )
    np.testing.assert_allclose(weights, ref_weights, atol=ATOL)
    np.testing.assert_allclose(context, ref_context, atol=ATOL)
    assert not np.isnan(context).any()
    mask = MASK if query_rank == 2 else MASK[:, None, :]
    _check_weights_valid(weights, mask)
    # Fully masked row: zero context.
    np.testing.assert_array_equal(context[2], 0.0)
    # The context is the weighted sum of the memory itself.
    np.testing.assert_allclose(
        context,
        np.einsum("b...t,btd->b...d", weights.astype("float64"), memory),
        atol=ATOL,
    )


def test_bahdanau_weight_names_shapes_and_initial_values():
    layer = BahdanauAttention(UNITS, normalize=True)
    layer(_rand(B, HQ), _rand(B, T, HK))
    shapes = {w.name: tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "query_kernel": (HQ, UNITS),
        "key_kernel": (HK, UNITS),
        "score_vector": (UNITS,),
        "score_scale": (),
        "score_bias": (UNITS,),
    }
    w = _weights_by_name(layer)
    np.testing.assert_allclose(w["score_scale"], np.sqrt(1.0 / UNITS), rtol=1e-6)
    np.testing.assert_array_equal(w["score_bias"], 0.0)
    plain = BahdanauAttention(UNITS)
    plain(_rand(B, HQ), _rand(B, T, HK))
    assert [w.name for w in plain.weights] == [
        "query_kernel",
        "key_kernel",
        "score_vector",
    ]


def test_bahdanau_normalized_score_is_invariant_to_the_norm_of_v():
    query, memory = _rand(B, HQ), _rand(B, T, HK)
    layer = BahdanauAttention(UNITS, normalize=True)
    _, before = layer(query, memory)
    layer.score_vector.assign(layer.score_vector * 5.0)
    _, after = layer(query, memory)
    np.testing.assert_allclose(_np(after), _np(before), atol=ATOL)


# --- Luong ----------------------------------------------------------------------


LUONG_CASES = [
    ("dot", None, HK),
    ("general", None, HQ),
    ("concat", UNITS, HQ),
]


@pytest.mark.parametrize("score,units,query_dim", LUONG_CASES)
def test_luong_matches_reference(score, units, query_dim):
    for scale in (False, True):
        for query_rank in (2, 3):
            _check_luong(score, units, query_dim, scale, query_rank)


def _check_luong(score, units, query_dim, scale, query_rank):
    shape = (B, query_dim) if query_rank == 2 else (B, 2, query_dim)
    query, memory = _rand(*shape), _rand(B, T, HK)
    layer = LuongAttention(units=units, score=score, scale=scale)
    layer(query, memory, mask=MASK)
    if layer.weights:
        _randomize(layer)
    w = _weights_by_name(layer)
    kernel = w.get("key_kernel", w.get("concat_kernel"))
    context, weights = layer(query, memory, mask=MASK)
    context, weights = _np(context), _np(weights)
    ref_context, ref_weights = luong_ref(
        query,
        memory,
        MASK,
        score,
        kernel=kernel,
        v=w.get("score_vector"),
        g=w.get("score_scale"),
    )
    np.testing.assert_allclose(weights, ref_weights, atol=ATOL)
    np.testing.assert_allclose(context, ref_context, atol=ATOL)
    mask = MASK if query_rank == 2 else MASK[:, None, :]
    _check_weights_valid(weights, mask)
    np.testing.assert_array_equal(context[2], 0.0)


def test_luong_weight_names_and_shapes():
    cases = [
        ({"score": "dot"}, {}),
        ({"score": "dot", "scale": True}, {"score_scale": ()}),
        ({"score": "general"}, {"key_kernel": (HK, HQ)}),
        (
            {"score": "concat", "units": UNITS},
            {"concat_kernel": (HQ + HK, UNITS), "score_vector": (UNITS,)},
        ),
    ]
    for kwargs, expected in cases:
        layer = LuongAttention(**kwargs)
        query_dim = HK if kwargs["score"] == "dot" else HQ
        layer(_rand(B, query_dim), _rand(B, T, HK))
        assert {w.name: tuple(w.shape) for w in layer.weights} == expected
        if "scale" in kwargs:
            np.testing.assert_array_equal(_np(layer.score_scale), 1.0)


# --- shared behaviour -------------------------------------------------------


def _all_layers():
    return [
        (BahdanauAttention(UNITS), HQ),
        (BahdanauAttention(UNITS, normalize=True), HQ),
        (LuongAttention(score="dot", scale=True), HK),
        (LuongAttention(score="general"), HQ),
        (LuongAttention(units=UNITS, score="concat"), HQ),
    ]


def test_batched_queries_equal_per_step_queries():
    for layer, query_dim in _all_layers():
        _batched_queries_equal_per_step_queries(layer, query_dim)


def _batched_queries_equal_per_step_queries(layer, query_dim):
    queries, memory = _rand(B, 4, query_dim), _rand(B, T, HK)
    context, weights = layer(queries, memory, mask=MASK)
    for step in range(4):
        c, w = layer(queries[:, step], memory, mask=MASK)
        np.testing.assert_allclose(_np(context)[:, step], _np(c), atol=ATOL)
        np.testing.assert_allclose(_np(weights)[:, step], _np(w), atol=ATOL)


def test_projected_keys_give_the_same_result():
    for layer, query_dim in _all_layers():
        _projected_keys_give_the_same_result(layer, query_dim)


def _projected_keys_give_the_same_result(layer, query_dim):
    query, memory = _rand(B, query_dim), _rand(B, T, HK)
    context, weights = layer(query, memory, mask=MASK)
    keys = layer.project_keys(memory)
    c, w = layer(query, memory, mask=MASK, projected_keys=keys)
    np.testing.assert_allclose(_np(c), _np(context), atol=ATOL)
    np.testing.assert_allclose(_np(w), _np(weights), atol=ATOL)


def test_padding_content_does_not_matter():
    for layer, query_dim in _all_layers():
        _padding_content_does_not_matter(layer, query_dim)


def _padding_content_does_not_matter(layer, query_dim):
    query, memory = _rand(B, query_dim), _rand(B, T, HK)
    other = memory.copy()
    other[~MASK] = 100.0
    c1, w1 = layer(query, memory, mask=MASK)
    c2, w2 = layer(query, other, mask=MASK)
    np.testing.assert_allclose(_np(c1), _np(c2), atol=ATOL)
    np.testing.assert_allclose(_np(w1), _np(w2), atol=ATOL)


def test_config_round_trip():
    for layer, query_dim in _all_layers():
        _config_round_trip(layer, query_dim)


def _config_round_trip(layer, query_dim):
    query, memory = _rand(B, query_dim), _rand(B, T, HK)
    context, weights = layer(query, memory, mask=MASK)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(query, memory, mask=MASK)
    clone.set_weights(layer.get_weights())
    c, w = clone(query, memory, mask=MASK)
    np.testing.assert_allclose(_np(c), _np(context), atol=ATOL)
    np.testing.assert_allclose(_np(w), _np(weights), atol=ATOL)
    # Registered under the "kzoo" package for deserialization by name.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config


def test_functional_model_shapes_and_keras_file_round_trip(tmp_path):
    query_in = keras.Input((3, HQ))
    memory_in = keras.Input((T, HK))
    mask_in = keras.Input((T,), dtype="bool")
    context, weights = BahdanauAttention(UNITS, normalize=True)(query_in, memory_in, mask=mask_in)
    assert tuple(context.shape) == (None, 3, HK)
    assert tuple(weights.shape) == (None, 3, T)
    model = keras.Model([query_in, memory_in, mask_in], [context, weights])
    data = [_rand(B, 3, HQ), _rand(B, T, HK), MASK]
    expected = [_np(x) for x in model(data)]
    path = os.path.join(tmp_path, "attention.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for got, want in zip(loaded(data), expected):
        np.testing.assert_allclose(_np(got), want, atol=ATOL)


def test_compute_output_shape():
    layer = LuongAttention(score="general")
    assert layer.compute_output_shape((None, HQ), (None, T, HK)) == (
        (None, HK),
        (None, T),
    )
    assert layer.compute_output_shape((2, 5, HQ), (2, None, HK)) == (
        (2, 5, HK),
        (2, 5, None),
    )


# --- errors -----------------------------------------------------------------


def test_mask_shape_must_match_memory():
    layer = BahdanauAttention(UNITS)
    with pytest.raises(ValueError, match=r"mask.*\(3, 6\).*\(3, 5\)"):
        layer(_rand(B, HQ), _rand(B, T, HK), mask=MASK[:, :5])
    with pytest.raises(ValueError, match="mask"):
        layer(_rand(B, HQ), _rand(B, T, HK), mask=MASK[:, None, :])
    # The symbolic (functional) path checks too.
    with pytest.raises(ValueError, match="mask"):
        BahdanauAttention(UNITS)(
            keras.Input((HQ,)), keras.Input((T, HK)), mask=keras.Input((T + 1,))
        )


def test_dot_score_needs_equal_widths():
    layer = LuongAttention(score="dot")
    with pytest.raises(ValueError, match=r"query_dim=5.*memory_dim=4"):
        layer(_rand(B, HQ), _rand(B, T, HK))


def test_rank_errors():
    cases = [
        ((B,), (B, T, HK), "query of rank"),
        ((B, 2, 2, HQ), (B, T, HK), "query of rank"),
        ((B, HQ), (B, HK), "memory of rank"),
        ((B, HQ), (B, 1, T, HK), "memory of rank"),
    ]
    for query_shape, memory_shape, match in cases:
        with pytest.raises(ValueError, match=match):
            BahdanauAttention(UNITS)(_rand(*query_shape), _rand(*memory_shape))


def test_width_changes_after_build_are_errors():
    layer = BahdanauAttention(UNITS)
    layer(_rand(B, HQ), _rand(B, T, HK))
    with pytest.raises(ValueError, match="memory_dim=4"):
        layer(_rand(B, HQ), _rand(B, T, HK + 1))
    with pytest.raises(ValueError, match="query_dim=5"):
        layer(_rand(B, HQ + 1), _rand(B, T, HK))
    with pytest.raises(ValueError, match="projected_keys"):
        layer(_rand(B, HQ), _rand(B, T, HK), projected_keys=_rand(B, T, UNITS + 1))


def test_project_keys_before_build_is_an_error():
    with pytest.raises(ValueError, match="no weights yet"):
        LuongAttention(score="general").project_keys(_rand(B, T, HK))


def test_bad_arguments():
    cases = [
        (lambda: BahdanauAttention(0), "units=0"),
        (lambda: BahdanauAttention(2.5), "units=2.5"),
        (lambda: BahdanauAttention(4, normalize="yes"), "normalize='yes'"),
        (lambda: LuongAttention(score="cosine"), "score='cosine'"),
        (lambda: LuongAttention(score="concat"), "units=None"),
        (lambda: LuongAttention(units=4, score="dot"), "units=4"),
        (lambda: LuongAttention(score="general", scale=1), "scale=1"),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match):
            make()
