"""kzoo.models.LanguageModel: equations, carried state, generation, bad input."""

import math
import os

import keras
import numpy as np
import pytest

from kzoo.layers import TiedEmbedding
from kzoo.models import LanguageModel
from kzoo.models.language_model import bptt_batches
from tests.harness import assert_close, to_numpy, weights_by_name
from tests.references import rnn_ref

CHARS = list("abcdefgh \n")


def small_model(**kwargs):
    options = dict(vocabulary=CHARS, embedding_dim=6, units=8, num_layers=2, seed=3)
    options.update(kwargs)
    return LanguageModel(**options)


def reference_logits(model, ids):
    """Float64 NumPy forward pass of the model's equations (no dropout)."""
    ids = np.asarray(ids)
    if model.tie_weights:
        table = to_numpy(model.embedding.embeddings).astype(np.float64)
        out_kernel, out_bias = table.T, to_numpy(model.embedding.output_bias)
    else:
        table = to_numpy(model.embedding.embeddings).astype(np.float64)
        out_kernel = to_numpy(model.output_projection.kernel)
        out_bias = to_numpy(model.output_projection.bias)
    x = table[ids]  # (batch, time, embedding_dim)
    steps = {"lstm": rnn_ref.lstm_step, "gru": rnn_ref.gru_step, "rnn": rnn_ref.simple_rnn_step}
    step = steps[model.cell_type]
    for layer in model.recurrent_layers:
        n_states = 2 if model.cell_type == "lstm" else 1  # gru, rnn: h only
        zeros = [np.zeros((ids.shape[0], model.units))] * n_states
        x, _ = rnn_ref.run(step, x, weights_by_name(layer.cell), zeros)
    return x @ np.asarray(out_kernel, np.float64) + np.asarray(out_bias, np.float64)


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    peak = logits.max(-1, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(-1, keepdims=True))


# === Equations ===


@pytest.mark.parametrize(
    "cell, tie",
    [("lstm", False), ("gru", False), ("rnn", False), ("lstm", True)],
    ids=["lstm", "gru", "rnn", "tied"],
)
def test_logits_match_float64_reference(cell, tie):
    model = small_model(cell_type=cell, tie_weights=tie, embedding_dim=8, dropout=0.3)
    ids = np.random.randint(0, len(CHARS), (3, 7))
    assert_close(model(ids, training=False), reference_logits(model, ids), what="logits")


def test_tied_embedding_reverse_is_transposed_matmul():
    layer = TiedEmbedding(11, 4)
    vectors = layer(np.array([[1, 5, 10]]))
    table = to_numpy(layer.embeddings)
    assert_close(vectors, table[[[1, 5, 10]]])
    layer.output_bias.assign(np.linspace(-1, 1, 11).astype("float32"))
    h = np.random.randn(2, 3, 4).astype("float32")
    expected = h.astype(np.float64) @ table.T.astype(np.float64) + np.linspace(-1, 1, 11)
    assert_close(layer(h, reverse=True), expected)
    with pytest.raises(ValueError, match="size 4"):
        layer(np.ones((2, 5), "float32"), reverse=True)


def test_tied_model_shares_one_matrix():
    tied, untied = small_model(tie_weights=True, embedding_dim=8), small_model(embedding_dim=8)
    v, e, h = len(CHARS), 8, 8
    lstm = 4 * (e * h + h * h + h) + 4 * (h * h + h * h + h)
    assert tied.count_params() == v * e + v + lstm
    assert untied.count_params() == v * e + h * v + v + lstm


# === Perplexity ===


def test_uniform_model_has_perplexity_equal_to_vocabulary_size():
    vocabulary_size = 37
    model = LanguageModel(vocabulary_size, embedding_dim=4, units=5, num_layers=1)
    model.output_projection.kernel.assign(np.zeros((5, vocabulary_size), "float32"))
    model.output_projection.bias.assign(np.zeros(vocabulary_size, "float32"))
    stream = np.random.randint(0, vocabulary_size, 300)
    result = model.evaluate_stream(stream, sequence_length=64, start_token_id=0)
    assert result["tokens"] == 300
    assert abs(result["perplexity"] - vocabulary_size) <= 1e-5 * vocabulary_size
    assert abs(result["bits_per_token"] - math.log2(vocabulary_size)) <= 1e-5
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    loss = float(to_numpy(loss_fn(stream[None, 1:], model(stream[None, :-1]))))
    assert abs(math.exp(loss) - vocabulary_size) <= 1e-4 * vocabulary_size


@pytest.mark.parametrize("batch_size", [1, 3])
def test_evaluate_stream_carries_state_across_chunks(batch_size):
    model = small_model(dropout=0.5)
    stream = np.random.randint(0, len(CHARS), 61)
    result = model.evaluate_stream(stream, batch_size=batch_size, sequence_length=7)
    # Reference: each contiguous part run as one sequence from a zero state.
    per_row = 60 // batch_size
    inputs = stream[:-1][: per_row * batch_size].reshape(batch_size, per_row)
    targets = stream[1:][: per_row * batch_size].reshape(batch_size, per_row)
    logp = log_softmax(reference_logits(model, inputs))
    expected = -np.take_along_axis(logp, targets[..., None], -1).mean()
    assert result["tokens"] == per_row * batch_size
    assert abs(result["loss"] - expected) <= 1e-5 * (1 + expected)


def test_evaluate_stream_rejects_bad_streams():
    model = small_model()
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        model.evaluate_stream([1, 2, 99])
    with pytest.raises(ValueError, match="fewer than batch_size"):
        model.evaluate_stream([1, 2, 3], batch_size=5)


# === Training with carried state ===


def test_bptt_batches_continue_rows_between_batches():
    x, y = bptt_batches(np.arange(50), batch_size=2, sequence_length=4)
    # rows are [0..24] and [25..49]; 6 windows of 4 fit in (25 - 1) tokens
    assert x.shape == (12, 4) and y.shape == (12, 4)
    np.testing.assert_array_equal(x[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(x[1], [25, 26, 27, 28])
    np.testing.assert_array_equal(x[2], [4, 5, 6, 7])
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ValueError, match="too short"):
        bptt_batches(np.arange(5), batch_size=2, sequence_length=4)


def test_stateful_model_continues_from_the_previous_window():
    stateful = small_model(stateful=True, batch_size=2)
    ids = np.random.randint(0, len(CHARS), (2, 10))
    first = to_numpy(stateful.predict_on_batch(ids[:, :6]))
    second = to_numpy(stateful.predict_on_batch(ids[:, 6:]))
    expected = reference_logits(stateful, ids)
    assert_close(np.concatenate([first, second], axis=1), expected, what="carried logits")
    stateful.reset_states()
    assert_close(stateful.predict_on_batch(ids[:, 6:]), reference_logits(stateful, ids[:, 6:]))


def test_save_stateless_gives_a_plain_model_with_the_same_weights(tmp_path):
    stateful = small_model(stateful=True, batch_size=2)
    path = os.path.join(tmp_path, "lm.keras")
    assert stateful.save_stateless(path) == "float32"
    loaded = keras.saving.load_model(path)
    assert not loaded.stateful and loaded.batch_size is None
    ids = np.random.randint(0, len(CHARS), (3, 7))  # any batch size now
    stateful.reset_states()
    assert_close(loaded(ids), reference_logits(stateful, ids), what="stateless copy logits")


def test_stateful_fit_lowers_the_loss():
    model = small_model(stateful=True, batch_size=2, dropout=0.1)
    model.compile(
        keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    stream = np.tile(np.arange(len(CHARS)), 20)
    x, y = bptt_batches(stream, batch_size=2, sequence_length=5)
    history = model.fit(x, y, batch_size=2, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert history[-1] < history[0] - 0.5, f"training did not lower the loss: {history}"


# === Config and saving ===


def test_config_round_trip_and_keras_file(tmp_path):
    model = small_model(cell_type="gru", tie_weights=True, embedding_dim=8, dropout=0.2)
    config = model.get_config()
    clone = LanguageModel.from_config(config)
    assert clone.get_config() == config
    path = os.path.join(tmp_path, "lm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, LanguageModel) and loaded.get_config() == config
    ids = np.random.randint(0, len(CHARS), (2, 9))
    assert_close(loaded(ids), to_numpy(model(ids)), what="reloaded logits")
    assert loaded.generate("abc", 12, seed=1) == model.generate("abc", 12, seed=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(vocabulary=None), "vocabulary_size"),
        (dict(vocabulary_size=3), "has 10 tokens"),
        (dict(vocabulary=["a", "b", "a"]), "repeated"),
        (dict(vocabulary=["ab", "c"]), "one character"),
        (dict(tie_weights=True, embedding_dim=5), "`units` must equal"),
        (dict(stateful=True), "batch_size"),
        (dict(cell_type="elman"), "cell_type"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_layers=0), "num_layers"),
        (dict(token_level="byte"), "token_level"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_model(**kwargs)


# === Generation ===


def step_by_step_logits(model, ids):
    ids = keras.ops.convert_to_tensor(np.asarray(ids, "int32"))
    cache = model.generation_cache(ids.shape[0])
    logits = []
    for index in range(1, ids.shape[1] + 1):
        step_logits, _, cache = model.generation_step(ids, cache, index)
        logits.append(to_numpy(step_logits))
    return np.stack(logits, axis=1)


@pytest.mark.parametrize("cell, tie", [("lstm", False), ("gru", True)], ids=["lstm", "gru-tied"])
def test_step_by_step_state_equals_rerunning_the_prefix(cell, tie):
    model = small_model(cell_type=cell, tie_weights=tie, embedding_dim=8)
    ids = np.random.randint(0, len(CHARS), (2, 9))
    assert_close(step_by_step_logits(model, ids), to_numpy(model(ids)), what="step logits")


@pytest.fixture(scope="module")
def generator():
    """One model shared by the generation tests (its compiled loops are reused)."""
    keras.utils.set_random_seed(7)
    return small_model(units=16, embedding_dim=16)


def test_greedy_generation_equals_argmax_over_the_full_prefix(generator):
    prompts = np.array([generator.encode("abc"), generator.encode("hh\n")])
    output = generator.generate(prompts, max_length=20, sampler="greedy")
    ids = prompts
    for _ in range(20 - 3):  # re-run the whole prefix for every new token
        next_ids = np.argmax(reference_logits(generator, ids)[:, -1], axis=-1)
        ids = np.concatenate([ids, next_ids[:, None]], axis=1)
    np.testing.assert_array_equal(output, ids)


def test_temperature_to_zero_equals_greedy():
    model = small_model(units=16)
    # Sharpen the untrained model so that no two leading logits are nearly tied.
    kernel = model.output_projection.kernel
    kernel.assign(keras.ops.copy(kernel) * 1000.0)
    greedy = model.generate(["ab", "h\n"], max_length=20, sampler="greedy")
    logits = np.sort(reference_logits(model, np.array([model.encode(t) for t in greedy])), -1)
    assert np.min(logits[:, 1:-1, -1] - logits[:, 1:-1, -2]) > 2e-3  # gap / T > 20
    cold = model.generate(["ab", "h\n"], 20, sampler="random", temperature=1e-4, seed=5)
    hot = model.generate(["ab", "h\n"], 20, sampler="random", temperature=5.0, seed=5)
    assert cold == greedy
    assert hot != greedy


def test_top_k_only_emits_tokens_among_the_k_most_likely(generator):
    model = generator
    k = 3
    prompts = np.random.randint(0, len(CHARS), (2, 2))
    output = model.generate(prompts, max_length=20, sampler="top_k", k=k, seed=2)
    np.testing.assert_array_equal(output[:, :2], prompts)
    logits = reference_logits(model, output)  # logits[:, t] predicts output[:, t + 1]
    top_k = np.argsort(-logits, axis=-1)[..., :k]
    generated = output[:, 2:]
    allowed = top_k[:, 1:-1]
    assert np.all((allowed == generated[..., None]).any(-1))
    # and it does not always pick the most likely one
    assert np.any(generated != top_k[:, 1:-1, 0])


def test_top_p_keeps_the_nucleus(generator):
    model = generator
    output = model.generate(np.zeros((2, 1), "int32"), 20, sampler="top_p", p=0.5, seed=4)
    logp = log_softmax(reference_logits(model, output))[:, :-1]
    probs = np.exp(logp)
    order = np.argsort(-probs, axis=-1)
    sorted_probs = np.take_along_axis(probs, order, -1)
    before = np.cumsum(sorted_probs, -1) - sorted_probs  # mass of the more likely tokens
    rank = np.argmax(order == output[:, 1:, None], axis=-1)
    assert np.all(np.take_along_axis(before, rank[..., None], -1) < 0.5 + 1e-5)


def test_generation_is_reproducible_with_a_seed(generator):
    model = generator
    first = model.generate("a", 20, sampler="random", seed=11)
    assert model.generate("a", 20, sampler="random", seed=11) == first
    assert model.generate("a", 20, sampler="random", seed=12) != first
    # without a seed the sampler's state moves on between calls
    assert model.generate("a", 20, sampler="random") != model.generate("a", 20, sampler="random")


def test_prompts_of_different_lengths_keep_their_tokens(generator):
    model = generator
    texts = model.generate(["a", "abcdef\n"], max_length=20, sampler="top_k", k=3, seed=0)
    assert [len(t) for t in texts] == [20, 20]
    assert texts[0].startswith("a") and texts[1].startswith("abcdef\n")
    single = model.generate("abcdef\n", max_length=20, sampler="greedy")
    batch = model.generate(["abcdef\n", "a"], max_length=20, sampler="greedy")
    assert batch[0] == single


def test_word_level_prompts_map_unknown_words_to_unk():
    model = LanguageModel(
        vocabulary=["<unk>", "<eos>", "the", "cat"],
        token_level="word",
        embedding_dim=4,
        units=4,
        num_layers=1,
    )
    assert model.encode("the dog cat") == [2, 0, 3]
    text = model.generate("the dog", max_length=6, seed=0)
    assert text.split()[:2] == ["the", "<unk>"] and len(text.split()) == 6


@pytest.mark.parametrize(
    "prompt, kwargs, message",
    [
        ("", {}, "Empty prompt"),
        ([], {}, "Empty prompt"),
        (["ab", ""], {}, "Empty prompt"),
        ("abz", {}, r"outside the model's vocabulary: \['z'\]"),
        ([1, 10], {}, r"in \[0, 10\)"),
        ("ab", dict(max_length=2), "must exceed the longest prompt"),
        ("ab", dict(sampler="top_k", k=0), "`k` must be an integer >= 1"),
        ("ab", dict(sampler="top_k", k=11), "at most the vocabulary size 10"),
        ("ab", dict(sampler="random", temperature=0.0), "temperature"),
        ("ab", dict(sampler="random", temperature=-1.0), "temperature"),
        ("ab", dict(sampler="top_p", p=0.0), r"`p` must be a number in \(0, 1\]"),
        ("ab", dict(sampler="nucleus"), "`sampler` must be one of"),
        ("ab", dict(sampler="beam", num_beams=11), "`num_beams` must be at most"),
        ("ab", dict(sampler="greedy", p=0.5), "takes the options"),
        ("ab", dict(seed="1"), "`seed` must be an int"),
    ],
)
def test_bad_generation_input_gives_a_clear_error(prompt, kwargs, message):
    model = small_model()
    kwargs = {"max_length": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        model.generate(prompt, **kwargs)


def test_text_prompt_needs_a_vocabulary():
    model = LanguageModel(12, embedding_dim=4, units=4, num_layers=1)
    with pytest.raises(ValueError, match="pass token ids"):
        model.generate("abc", max_length=8)
    assert model.generate([3, 4], max_length=8).shape == (8,)


def test_beam_generation_one_beam_is_greedy_and_n_best_is_ranked(generator):
    prompts = ["abc", "h\n"]
    greedy = generator.generate(prompts, max_length=12, sampler="greedy")
    assert generator.generate(prompts, 12, sampler="beam", num_beams=1) == greedy
    best = generator.generate(prompts, 12, sampler="beam", num_beams=4)
    n_best = generator.generate(prompts, 12, sampler="beam", num_beams=4, num_results=3)
    for prompt, one, three in zip(prompts, best, n_best):
        assert three[0] == one and len(set(three)) == 3
        assert all(text.startswith(prompt) and len(text) == 12 for text in three)
        ids = np.array([generator.encode(text) for text in three])
        logp = log_softmax(reference_logits(generator, ids))[:, len(prompt) - 1 : -1]
        scores = np.take_along_axis(logp, ids[:, len(prompt) :, None], -1).sum(axis=(1, 2))
        assert np.all(np.diff(scores) <= 1e-5), scores  # best first (no penalty: raw log-prob)
    ids = generator.generate([[1, 2]], 6, sampler="beam", num_beams=3, num_results=2)
    assert ids.shape == (1, 2, 6)


# === Task: compile defaults, summary, names, saved files ===


def test_compile_defaults_train_on_logits_and_report_perplexity():
    model = small_model()
    assert model.task == "generate"
    model.compile()
    assert model.loss.get_config()["from_logits"] is True
    ids = np.random.randint(0, len(CHARS), (4, 9))
    result = model.evaluate(ids[:, :-1], ids[:, 1:], return_dict=True, verbose=0)
    logp = log_softmax(reference_logits(model, ids[:, :-1]))
    expected = -np.take_along_axis(logp, ids[:, 1:, None], -1).mean()
    assert abs(result["loss"] - expected) <= 1e-4 * expected
    assert abs(result["perplexity"] - math.exp(expected)) <= 1e-4 * math.exp(expected)


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_summary_counts_each_parameter_once(tie):
    model = small_model(tie_weights=tie, embedding_dim=8)

    def counts():
        lines = []
        model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
        text = "\n".join(lines)
        total = int(text.split("Total params:")[1].split("(")[0].replace(",", ""))
        torch_total = None
        if keras.backend.backend() == "torch":  # what torch's module registry holds
            torch_total = sum(p.numel() for p in model.parameters())
        return total, model.count_params(), len(model.weights), torch_total

    v, e, h = len(CHARS), 8, 8
    lstm = 4 * (e * h + h * h + h) + 4 * (h * h + h * h + h)
    expected = v * e + v + lstm + (0 if tie else h * v)
    before = counts()
    assert before[:2] == (expected, expected)
    # Compiled loops, samplers and stateful twins are cached on the model and
    # must not show up in its parameters.
    model.generate("ab", max_length=6, sampler="beam", num_beams=2)
    model.evaluate_stream(np.arange(30) % 10, batch_size=2)
    assert counts() == before


def test_earlier_argument_names_are_read_from_configs():
    config = small_model(cell_type="gru").get_config()
    old = {k: v for k, v in config.items() if k not in ("units", "cell_type")}
    old.update(hidden_units=config["units"], cell="gru")
    model = LanguageModel.from_config(old)
    assert model.get_config() == config
    with pytest.raises(ValueError, match="both `hidden_units`"):
        LanguageModel.from_config({**config, "hidden_units": 8})


def test_vocabulary_travels_in_the_keras_file(tmp_path):
    model = small_model(token_level="word", vocabulary=["<unk>", "the", "cat", "sat"])
    path = os.path.join(tmp_path, "words.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.preprocessor.get_config() == model.preprocessor.get_config()
    assert loaded.encode("the dog sat") == [1, 0, 3]
    assert loaded.generate("the cat", max_length=5) == model.generate("the cat", max_length=5)


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow", reason="runs JAX or torch with TensorFlow blocked"
)
def test_generate_without_tensorflow():
    from tests.harness import run_without_tensorflow

    code = """
    from kzoo.models import LanguageModel
    model = LanguageModel(vocabulary=list("abc \\n"), embedding_dim=4, units=4, num_layers=1)
    greedy = model.generate("ab", max_length=8)
    assert model.generate("ab", 8, sampler="beam", num_beams=1) == greedy
    assert len(model.generate(["ab", "c"], 8, sampler="beam", num_results=2)[1]) == 2
    assert len(model.generate("ab", 8, sampler="top_p", p=0.9, seed=1)) == 8
    print("generated", repr(greedy))
    """
    result = run_without_tensorflow(code, keras.backend.backend())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "generated" in result.stdout
