"""kzoo.generation: keras-hub samplers by name, checks, and a fake `next`."""

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.generation import SAMPLER_NAMES, BeamSampler, check_sampler, get_sampler

# One fixed distribution over 8 tokens, most likely first: token 3, then 0, 6, ...
LOGITS = np.log(np.array([0.25, 0.02, 0.03, 0.4, 0.05, 0.08, 0.12, 0.05]))
RANKED = np.argsort(-LOGITS)


def fake_next(logits_by_index=None):
    """A keras-hub `next`: fixed logits; the cache counts the steps taken."""

    def next_fn(prompt, cache, index):
        batch = ops.shape(prompt)[0]
        if logits_by_index is None:
            logits = ops.broadcast_to(ops.convert_to_tensor(LOGITS, "float32"), (batch, 8))
        else:  # logits that change with the position
            table = ops.convert_to_tensor(logits_by_index, "float32")
            logits = ops.broadcast_to(ops.take(table, index, axis=0), (batch, 8))
        return logits, None, (cache[0] + 1,)

    return next_fn


def run_sampler(sampler, batch=1, length=2, logits_by_index=None):
    prompt = ops.zeros((batch, length), "int32")
    mask = np.zeros((batch, length), bool)
    mask[:, 0] = True
    output = sampler(
        fake_next(logits_by_index),
        prompt,
        cache=(ops.zeros((batch,), "int32"),),
        index=1,
        mask=ops.convert_to_tensor(mask),
    )
    return keras.ops.convert_to_numpy(output)[:, 1:]


def test_names_build_the_keras_hub_samplers():
    from keras_hub import samplers

    classes = {
        "greedy": samplers.GreedySampler,
        "random": samplers.RandomSampler,
        "top_k": samplers.TopKSampler,
        "top_p": samplers.TopPSampler,
    }
    assert set(SAMPLER_NAMES) == set(classes) | {"beam"}
    assert type(get_sampler("temperature")) is samplers.RandomSampler  # earlier name
    beam = get_sampler("beam", num_beams=3, length_penalty=0.6, num_results=2)
    assert type(beam) is BeamSampler
    assert (beam.num_beams, beam.length_penalty, beam.num_results) == (3, 0.6, 2)
    for name, cls in classes.items():
        assert type(get_sampler(name)) is cls
    sampler = get_sampler("top_p", p=0.3, k=4, temperature=0.7, seed=9)
    assert (sampler.p, sampler.k, sampler.temperature, sampler.seed) == (0.3, 4, 0.7, 9)
    instance = samplers.TopKSampler(k=2)
    assert get_sampler(instance) is instance


def test_greedy_takes_the_argmax_at_every_step():
    table = np.random.randn(6, 8)
    output = run_sampler(get_sampler("greedy"), batch=2, length=6, logits_by_index=table)
    np.testing.assert_array_equal(output, np.tile(np.argmax(table[1:], -1), (2, 1)))


def test_temperature_near_zero_equals_greedy():
    table = np.random.randn(12, 8)
    greedy = run_sampler(get_sampler("greedy"), batch=3, length=12, logits_by_index=table)
    cold = get_sampler("random", temperature=1e-4, seed=1)
    np.testing.assert_array_equal(
        run_sampler(cold, batch=3, length=12, logits_by_index=table), greedy
    )


def test_temperature_sampling_follows_the_tempered_softmax():
    temperature = 2.0
    draws = run_sampler(get_sampler("random", temperature=temperature, seed=3), batch=4000)
    expected = np.exp(LOGITS / temperature) / np.exp(LOGITS / temperature).sum()
    frequencies = np.bincount(draws.ravel(), minlength=8) / draws.size
    # 4000 draws: the standard error of each frequency is below 0.008
    np.testing.assert_allclose(frequencies, expected, atol=0.03)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_never_leaves_the_k_most_likely(k):
    draws = run_sampler(get_sampler("top_k", k=k, seed=k), batch=500)
    assert set(np.unique(draws)) == set(RANKED[:k])


def test_top_p_samples_from_the_nucleus():
    # cumulative sorted probabilities: 0.40, 0.65, 0.77, 0.85, ... -> p = 0.6 keeps 2 tokens
    draws = run_sampler(get_sampler("top_p", p=0.6, seed=1), batch=500)
    assert set(np.unique(draws)) == set(RANKED[:2])
    draws = run_sampler(get_sampler("top_p", p=1.0, seed=1), batch=2000)
    assert set(np.unique(draws)) == set(range(8))


def test_equal_seeds_give_equal_draws():
    first = run_sampler(get_sampler("random", seed=7), batch=50, length=5)
    again = run_sampler(get_sampler("random", seed=7), batch=50, length=5)
    other = run_sampler(get_sampler("random", seed=8), batch=50, length=5)
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sampler="nucleus"), "`sampler` must be one of"),
        (dict(sampler="greedy", k=3), r"takes the options \[.temperature.\], not \[.k.\]"),
        (dict(sampler="top_k", p=0.5), r"not \[.p.\]"),
        (dict(sampler="beam", temperature=0.5), r"not \[.temperature.\]"),
        (dict(sampler="beam", num_beams=0), "`num_beams` must be an int >= 1"),
        (dict(sampler="top_k", k=0), "`k` must be an integer >= 1"),
        (dict(sampler="top_k", k=2.5), "`k` must be an integer >= 1"),
        (dict(sampler="top_p", p=1.5), r"`p` must be a number in \(0, 1\]"),
        (dict(sampler="top_p", p=0.5, k=0), "`k` must be an integer >= 1"),
        (dict(sampler="random", temperature=0), "temperature"),
        (dict(sampler="random", temperature=-0.5), "temperature"),
        (dict(sampler="greedy", temperature=float("nan")), "temperature"),
    ],
)
def test_bad_settings_are_rejected_before_sampling(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_sampler(**kwargs)


def test_check_sampler_rejects_instances_that_cannot_work():
    from keras_hub import samplers

    with pytest.raises(ValueError, match="at most the vocabulary size 8"):
        check_sampler(samplers.TopKSampler(k=9), vocabulary_size=8)
    with pytest.raises(ValueError, match="temperature"):
        check_sampler(samplers.RandomSampler(temperature=0.0))
    with pytest.raises(ValueError, match="keras_hub.samplers.Sampler"):
        check_sampler("top_k")
    with pytest.raises(ValueError, match="`num_beams` must be at most the vocabulary size 3"):
        check_sampler(BeamSampler(num_beams=4), vocabulary_size=3)
    with pytest.raises(ValueError, match="num_results"):
        check_sampler(samplers.BeamSampler(num_beams=2, return_all_beams=True))
    with pytest.raises(ValueError, match="apply only to a sampler given by name"):
        get_sampler(BeamSampler(), num_beams=3)


def test_missing_keras_hub_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` now fails
    with pytest.raises(ImportError, match=r'pip install "kzoo\[hub\]"'):
        get_sampler("top_k")
    assert isinstance(get_sampler("beam"), BeamSampler)  # beam search does not need it
