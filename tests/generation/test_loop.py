"""kzoo.generation.generate_ids: the one compiled loop, on a model with context."""

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.generation import BeamSampler, GenerationLoop, generate_ids
from kzoo.utils.untracked import untracked_cache

VOCABULARY = 6


class MarkovModel(keras.Model):
    """Logits = table[previous token] + context bias: the contract in miniature.

    `generation_cache` encodes the context (one bias per row, like an encoder
    memory) into a dict cache whose `"bias"` entry never changes.
    """

    generation_static_keys = ("bias",)

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = table.shape[0]
        self.table = self.add_weight(
            shape=table.shape,
            initializer=keras.initializers.Constant(table),
            trainable=False,
            name="table",
        )
        self.encoder = keras.layers.Dense(table.shape[0], use_bias=False, name="encoder")
        self.encoder.build((None, 2))
        self.built = True

    def generation_cache(self, batch_size, context=None):
        if context is None:
            bias = ops.zeros((batch_size, self.vocabulary_size))
        else:
            bias = self.encoder(ops.cast(context, "float32"))  # (batch, vocabulary)
        return {"steps": ops.zeros((batch_size,), "int32"), "bias": bias}

    def generation_step(self, prompt, cache, index):
        previous = ops.take(prompt, index - 1, axis=1)  # (batch,)
        logits = ops.take(self.table, previous, axis=0) + cache["bias"]
        return logits, logits, {"steps": cache["steps"] + 1, "bias": cache["bias"]}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    table = np.log(np.random.dirichlet(np.ones(VOCABULARY), size=VOCABULARY)).astype("float32")
    return MarkovModel(table)


def table_of(model, context=None):
    table = keras.ops.convert_to_numpy(model.table).astype(np.float64)
    if context is None:
        return [table]
    kernel = keras.ops.convert_to_numpy(model.encoder.kernel).astype(np.float64)
    return [table + bias for bias in np.asarray(context, np.float64) @ kernel]


def greedy_reference(tables, prompts, length):
    rows = []
    for table, prompt in zip(tables * len(prompts) if len(tables) == 1 else tables, prompts):
        row = list(prompt)
        while len(row) < length:
            row.append(int(np.argmax(table[row[-1]])))
        rows.append(row)
    return np.array(rows)


def test_greedy_equals_the_argmax_reference(model):
    ids = np.zeros((3, 9), "int32")
    ids[:, 0] = [0, 2, 5]
    tokens, scores = generate_ids(model, ids, sampler="greedy")
    assert scores is None and tokens.shape == (3, 1, 9)
    np.testing.assert_array_equal(tokens[:, 0], greedy_reference(table_of(model), ids[:, :1], 9))


def test_context_is_encoded_inside_the_loop(model):
    context = np.array([[3.0, -2.0], [-4.0, 1.0]], "float32")
    ids = np.zeros((2, 8), "int32")
    tokens, _ = generate_ids(model, ids, sampler="greedy", context=context)
    expected = greedy_reference(table_of(model, context), [[0], [0]], 8)
    np.testing.assert_array_equal(tokens[:, 0], expected)
    beam, scores = generate_ids(model, ids, sampler="beam", num_beams=1, context=context)
    np.testing.assert_array_equal(beam[:, 0], expected)  # one beam is greedy, through the loop
    assert scores.shape == (2, 1)


def test_beam_n_best_through_the_loop(model):
    ids = np.zeros((2, 5), "int32")
    ids[1, :3] = [4, 1, 2]
    mask = np.zeros(ids.shape, bool)
    mask[0, 0] = True
    mask[1, :3] = True
    sampler = BeamSampler(num_beams=4, num_results=3)
    tokens, scores = generate_ids(model, ids, mask, sampler=sampler)
    direct_tokens, direct_scores = sampler(
        model.generation_step,
        ops.convert_to_tensor(ids),
        model.generation_cache(2),
        index=1,
        mask=ops.convert_to_tensor(mask),
    )
    np.testing.assert_array_equal(tokens, ops.convert_to_numpy(direct_tokens))
    np.testing.assert_allclose(scores, ops.convert_to_numpy(direct_scores), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_array_equal(tokens[1, :, :3], np.tile([4, 1, 2], (3, 1)))


def test_tokens_after_a_stop_token_become_padding(model):
    table = keras.ops.convert_to_numpy(model.table)
    stop = int(np.argmax(table[0]))  # greedy from 0 emits it at once
    ids = np.zeros((1, 6), "int32")
    tokens, _ = generate_ids(model, ids, stop_token_ids=stop, pad_token_id=5)
    np.testing.assert_array_equal(tokens[0, 0], [0, stop, 5, 5, 5, 5])


def test_seeds_reproduce_and_state_carries_on(model):
    ids = np.zeros((50, 6), "int32")

    def draw(seed):
        return generate_ids(model, ids, sampler="random", seed=seed)[0]

    first = draw(7)
    np.testing.assert_array_equal(draw(7), first)
    assert np.any(draw(8) != first)
    assert np.any(draw(None) != draw(None))


def test_loops_are_compiled_once_and_kept_untracked(model):
    weights = len(model.weights)
    ids = np.zeros((2, 6), "int32")
    for _ in range(2):
        generate_ids(model, ids, sampler="top_k", k=2, seed=1)
    loops = untracked_cache(model, "generation_loops")
    top_k_loops = [key for key in loops.keys() if type(key[0]).__name__ == "TopKSampler"]
    assert len(top_k_loops) == 1
    assert isinstance(loops.get(top_k_loops[0]), GenerationLoop)
    assert len(model.weights) == weights


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(token_ids=np.zeros((2,), "int32")), "must be a \\(batch, max_length\\)"),
        (dict(prompt_mask=np.zeros((2, 5), bool)), r"prompt_mask\[:, 0\]"),
        (dict(prompt_mask=np.ones((2, 4), bool)), "shape of `token_ids`"),
        (dict(token_ids=np.full((2, 5), 9)), r"in \[0, 6\)"),
        (dict(stop_token_ids=6), "stop_token_ids"),
        (dict(pad_token_id=-1), "pad_token_id"),
        (dict(seed="1"), "`seed` must be an int"),
        (dict(sampler="beam", num_beams=7), "`num_beams` must be at most the vocabulary size 6"),
        (dict(sampler="greedy", k=3), "takes the options"),
        (dict(sampler="nucleus"), "`sampler` must be one of"),
    ],
)
def test_bad_arguments_are_named(model, kwargs, message):
    arguments = dict(token_ids=np.zeros((2, 5), "int32"))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate_ids(model, **arguments)
