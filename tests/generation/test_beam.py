"""kzoo.generation.BeamSampler against exact answers on constructed Markov chains."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.generation import BeamSampler, get_sampler, length_penalty

EPS = 1e-6


def chain(rows):
    """Log-probabilities of a Markov chain: row i is p(next | previous = i)."""
    probs = np.asarray(rows, np.float64) + EPS
    return np.log(probs / probs.sum(-1, keepdims=True))


def markov_next(table, static_bias=False):
    """A keras-hub `next`: logits = table[previous token]; the cache counts steps."""
    table = ops.convert_to_tensor(table, "float32")

    def next_fn(prompt, cache, index):
        previous = ops.take(prompt, index - 1, axis=1)  # (batch,)
        logits = ops.take(table, previous, axis=0)
        if static_bias:
            logits = logits + cache["bias"]
            return logits, logits, {"steps": cache["steps"] + 1, "bias": cache["bias"]}
        return logits, logits, (cache[0] + 1,)

    return next_fn


def run(sampler, table, prompts, length, stop=None, **kwargs):
    """Runs `sampler` on prompts (list of id lists) padded to `length`."""
    ids = np.zeros((len(prompts), length), "int32")
    mask = np.zeros((len(prompts), length), bool)
    for r, row in enumerate(prompts):
        ids[r, : len(row)], mask[r, : len(row)] = row, True
    output = sampler(
        markov_next(table),
        ops.convert_to_tensor(ids),
        cache=(ops.zeros((len(prompts),), "int32"),),
        index=1,
        mask=ops.convert_to_tensor(mask),
        stop_token_ids=stop,
        **kwargs,
    )
    return keras.tree.map_structure(keras.ops.convert_to_numpy, output)


def log_prob(table, sequence, start=1):
    return sum(table[a, b] for a, b in zip(sequence[start - 1 : -1], sequence[start:]))


def test_length_penalty_is_the_gnmt_formula():
    lengths = np.array([0, 1, 4, 17])
    for alpha in (0.0, 0.6, 2.0):
        expected = ((5.0 + lengths) / 6.0) ** alpha
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(length_penalty(lengths, alpha)), expected, rtol=1e-6
        )


def test_one_beam_is_greedy_search():
    table = np.log(np.random.dirichlet(np.ones(7), size=7))
    prompts = [[0], [3], [5]]
    tokens, scores = run(BeamSampler(num_beams=1), table, prompts, length=9)
    greedy = run(get_sampler("greedy"), table, prompts, length=9)
    np.testing.assert_array_equal(tokens[:, 0], greedy)
    for row, first in zip(greedy, prompts):  # argmax reference
        expected = [first[0]]
        for _ in range(8):
            expected.append(int(np.argmax(table[expected[-1]])))
        np.testing.assert_array_equal(row, expected)
    np.testing.assert_allclose(scores[:, 0], [log_prob(table, row) for row in greedy], rtol=1e-5)


def test_beam_finds_the_better_sequence_that_greedy_misses():
    # From 0, token 1 is likelier (0.6) but leads to a flat distribution
    # (best 0.33); token 2 (0.4) leads to 3 with 0.97: 0.388 > 0.198.
    table = chain(
        [
            [0, 0.6, 0.4, 0, 0],
            [0.01, 0.33, 0.33, 0.33, 0],
            [0, 0, 0, 0.97, 0.03],
            [0.25, 0.25, 0.25, 0.25, 0],
            [0.25, 0.25, 0.25, 0.25, 0],
        ]
    )
    greedy = run(get_sampler("greedy"), table, [[0]], length=3)[0]
    tokens, scores = run(BeamSampler(num_beams=2), table, [[0]], length=3)
    assert greedy[1] == 1
    np.testing.assert_array_equal(tokens[0, 0], [0, 2, 3])
    assert scores[0, 0] > log_prob(table, greedy) + 0.5
    np.testing.assert_allclose(scores[0, 0], log_prob(table, [0, 2, 3]), rtol=1e-5)


def test_n_best_equals_the_exhaustive_top_n_best_first():
    # With num_beams >= vocabulary size, two steps of beam search are exact.
    vocabulary, n = 4, 4
    table = np.log(np.random.dirichlet(np.ones(vocabulary), size=vocabulary))
    tokens, scores = run(BeamSampler(num_beams=4, num_results=n), table, [[1]], length=3)
    every = sorted(
        ((log_prob(table, (1, a, b)), (1, a, b)) for a, b in itertools.product(range(4), repeat=2)),
        reverse=True,
    )
    assert np.all(np.diff(scores[0]) <= 0)  # best first
    np.testing.assert_allclose(scores[0], [score for score, _ in every[:n]], rtol=1e-5)
    np.testing.assert_array_equal(tokens[0], [seq for _, seq in every[:n]])


@pytest.mark.parametrize("alpha, winner", [(0.0, [0, 4, 0, 0]), (2.0, [0, 1, 4, 0])])
def test_length_penalty_decides_between_finished_hypotheses(alpha, winner):
    # 4 ends a hypothesis. [0, 4]: p = 0.5 (one token); [0, 1, 4]: p = 0.45
    # (two tokens). Raw log-probability prefers the short one; alpha = 2
    # divides by ((5 + |Y|) / 6)^2 and prefers the long one.
    table = chain(
        [
            [0, 0.5, 0, 0, 0.5],
            [0, 0, 0.1, 0, 0.9],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.2, 0.2, 0.2, 0.2, 0.2],
        ]
    )
    sampler = BeamSampler(num_beams=2, length_penalty=alpha, num_results=2)
    tokens, scores = run(sampler, table, [[0]], length=4, stop=[4])
    np.testing.assert_array_equal(tokens[0, 0], winner)  # padded with 0 after the end
    for row, score in zip(tokens[0], scores[0]):
        generated = list(row[1:])
        length = generated.index(4) + 1
        sequence = [0] + generated[:length]
        expected = log_prob(table, sequence) / ((5.0 + length) / 6.0) ** alpha
        np.testing.assert_allclose(score, expected, rtol=1e-5)


def test_rows_with_longer_prompts_keep_them_and_decode_as_alone():
    table = np.log(np.random.dirichlet(np.ones(6), size=6))
    prompts = [[2], [1, 4, 3], [5, 5]]
    sampler = BeamSampler(num_beams=3, num_results=2)
    tokens, scores = run(sampler, table, prompts, length=7)
    for r, prompt in enumerate(prompts):
        alone_tokens, alone_scores = run(sampler, table, [prompt], length=7)
        np.testing.assert_array_equal(tokens[r, :, : len(prompt)], [prompt, prompt])
        np.testing.assert_array_equal(tokens[r], alone_tokens[0])
        np.testing.assert_allclose(scores[r], alone_scores[0], rtol=1e-5)
        # prompt tokens are given, not scored
        np.testing.assert_allclose(
            scores[r, 0], log_prob(table, tokens[r, 0], start=len(prompt)), rtol=1e-5
        )


def test_static_cache_entries_are_shared_not_reordered():
    table = np.log(np.random.dirichlet(np.ones(5), size=5))
    bias = np.random.randn(2, 5).astype("float32") * 3  # per row, like an encoder memory
    prompt = ops.convert_to_tensor(np.array([[0, 0, 0, 0], [1, 0, 0, 0]], "int32"))

    def search(static_keys):
        cache = {"steps": ops.zeros((2,), "int32"), "bias": ops.convert_to_tensor(bias)}
        sampler = BeamSampler(num_beams=3, num_results=3)
        tokens, scores = sampler(
            markov_next(table, static_bias=True), prompt, cache, 1, static_keys=static_keys
        )
        return ops.convert_to_numpy(tokens), ops.convert_to_numpy(scores)

    shared, reordered = search(("bias",)), search(())
    np.testing.assert_array_equal(shared[0], reordered[0])
    np.testing.assert_allclose(shared[1], reordered[1], rtol=1e-6)
    for r in range(2):  # the bias of row r, not of another row, was used
        logits = table + bias[r]  # row a: logits after token a
        normalized = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        expected = log_prob(normalized, shared[0][r, 0])
        np.testing.assert_allclose(shared[1][r, 0], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="not in the cache"):
        search(("memory",))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_beams=0), "`num_beams` must be an int >= 1"),
        (dict(num_beams=2.0), "`num_beams` must be an int"),
        (dict(num_beams=2, num_results=3), "at most `num_beams`"),
        (dict(length_penalty=-0.1), "length_penalty"),
        (dict(length_penalty=float("inf")), "length_penalty"),
        (dict(length_penalty=True), "length_penalty"),
    ],
)
def test_bad_beam_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BeamSampler(**kwargs)


def test_config_round_trip():
    sampler = BeamSampler(num_beams=5, length_penalty=0.6, num_results=3)
    clone = BeamSampler.from_config(sampler.get_config())
    assert clone.get_config() == sampler.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
    assert isinstance(restored, BeamSampler) and restored.get_config() == sampler.get_config()
