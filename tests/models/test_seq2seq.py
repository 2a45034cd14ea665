"""Seq2Seq: network against NumPy, generation through kzoo.generation, raw-text translation."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.losses import MaskedSequenceLoss
from kzoo.metrics.sequence import MaskedTokenAccuracy
from kzoo.models import Seq2Seq, Seq2SeqBackbone, Seq2SeqPreprocessor
from tests.harness import run_without_tensorflow
from tests.models.test_shipped_models import TRANSLATION_TEXTS

ATOL = 1e-5
PAD, START, END = 0, 1, 2
SRC_VOCAB, TGT_VOCAB, EMB, UNITS = 11, 9, 5, 6
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Row 0 full, row 1 padded after 3 tokens, row 2 after 1 token.
SOURCE = np.array([[4, 5, 6, 7, 8], [9, 3, 4, 0, 0], [5, 0, 0, 0, 0]], "int32")
DECODER_IN = np.array([[1, 3, 4, 5], [1, 6, 7, 0], [1, 8, 0, 0]], "int32")

PAIRS = [
    ("Tom está en casa.", "Tom is at home."),
    ("¿Dónde está Tom?", "Where is Tom?"),
    ("Creo que no sé.", "I think I don't know."),
    ("Mary está aquí.", "Mary is here."),
    ("¿Está Tom en casa?", "Is Tom at home?"),
]


def _np(x, dtype=None):
    """Any tensor or variable (torch ones may require grad) as a NumPy array."""
    if not isinstance(x, (np.ndarray, list, tuple, float, int)):
        x = ops.convert_to_numpy(x)
    return np.asarray(x, dtype)


def _sharpen(model):
    # Larger weights make attention and predictions far from uniform.
    for w in model.weights:
        if "bias" not in w.path:
            w.assign(_np(w) * 2.0)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    m = Seq2Seq(SRC_VOCAB, TGT_VOCAB, embedding_dim=EMB, units=UNITS, seed=1, name="s2s")
    m.build()
    _sharpen(m)
    return m


@pytest.fixture(scope="module")
def translator():
    keras.utils.set_random_seed(4)
    preprocessor = Seq2SeqPreprocessor.from_pairs(PAIRS, 14, 12)
    m = Seq2Seq(preprocessor=preprocessor, embedding_dim=EMB, units=UNITS, name="translator")
    m.build()
    _sharpen(m)
    return m


# --- NumPy references --------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x, mask=None):
    x = np.where(mask, x, -np.inf) if mask is not None else x
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_decoder(model, memory, mask, states, tokens):
    """Luong decoder with input feeding, general score and LSTM cell, float64."""
    w = {v.path.split("/", 1)[1]: _np(v, "float64") for v in model.weights}
    kernel = w["attention_decoder_cell/decoder_cell/kernel"]
    recurrent = w["attention_decoder_cell/decoder_cell/recurrent_kernel"]
    bias = w["attention_decoder_cell/decoder_cell/bias"]
    key_kernel = w["attention_decoder_cell/attention/key_kernel"]
    attention_kernel = w["attention_decoder_cell/attention_kernel"]
    embedding = w["target_embedding/embeddings"]
    h, c, previous = (_np(s, "float64") for s in states)
    memory = _np(memory, "float64")
    keys = memory @ key_kernel  # (batch, time, units)
    logits, alignments = [], []
    for t in range(tokens.shape[1]):
        x = np.concatenate([embedding[tokens[:, t]], previous], -1)
        z = x @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=-1)  # Keras gate order
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        weights = _softmax(np.einsum("bu,btu->bt", h, keys), mask)
        context = np.einsum("bt,btd->bd", weights, memory)
        previous = np.tanh(np.concatenate([h, context], -1) @ attention_kernel)
        logits.append(previous @ w["projection/kernel"] + w["projection/bias"])
        alignments.append(weights)
    return np.stack(logits, 1), np.stack(alignments, 1)


def greedy_by_hand(model, source, steps):
    """Greedy decoding with `decode_step` in a Python loop, pad after the end."""
    memory, mask, states = model.encode(source)
    constants = model.decoder_constants(memory, mask)
    previous = np.full((len(source),), model.start_token_id, "int32")
    tokens = [previous]
    for _ in range(steps):
        logits, states = model.decode_step(previous, states, constants)
        previous = np.argmax(_np(logits), -1).astype("int32")
        tokens.append(previous)
    tokens = np.stack(tokens, 1)
    ended = np.cumsum(tokens[:, 1:] == model.end_token_id, axis=1)
    after_end = np.concatenate([np.zeros_like(ended[:, :1]), ended[:, :-1]], 1) > 0
    tokens[:, 1:][after_end] = model.pad_token_id
    return tokens


def log_probs(model, sources, tokens):
    """Teacher-forced log P(tokens[i, 1:] | sources[i]) up to and including the end
    token, and that length, for every row (one batched call)."""
    logits = _np(model((sources, tokens[:, :-1]))).astype("float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    results = []
    for row, sequence in zip(log_p, tokens):
        total, length = 0.0, 0
        for t, token in enumerate(sequence[1:]):
            total += row[t, token]
            length += 1
            if token == model.end_token_id:
                break
        results.append((total, length))
    return results


# --- network ------------------------------------------------------------------


def test_decoder_matches_numpy_loop(model):
    memory, mask, states = model.encode(SOURCE)
    np.testing.assert_array_equal(_np(mask), SOURCE != PAD)
    expected, expected_alignments = numpy_decoder(model, memory, _np(mask), states, DECODER_IN)
    logits = _np(model((SOURCE, DECODER_IN)))
    diff = np.abs(logits - expected).max()
    assert diff < ATOL, f"largest difference {diff}"
    alignments = model.attention_weights(SOURCE, DECODER_IN)
    np.testing.assert_allclose(alignments, expected_alignments, atol=ATOL)
    # Padded source positions get no attention at all.
    assert np.all(alignments[~np.broadcast_to((SOURCE != PAD)[:, None], alignments.shape)] == 0)


def test_memory_mask_is_honoured(model):
    """Extra padding columns change neither the logits nor the generated ids."""
    longer = np.concatenate([SOURCE, np.zeros((3, 3), "int32")], axis=1)
    a = _np(model((SOURCE, DECODER_IN)))
    b = _np(model((longer, DECODER_IN)))
    np.testing.assert_allclose(a, b, atol=ATOL)
    np.testing.assert_array_equal(
        model.generate(SOURCE, max_length=6)[0], model.generate(longer, max_length=6)[0]
    )


def test_scheduled_sampling_ratio_zero_feeds_predictions():
    keras.utils.set_random_seed(5)
    m = Seq2Seq(SRC_VOCAB, TGT_VOCAB, EMB, UNITS, teacher_forcing_ratio=0.0, seed=2)
    m.build()
    logits = _np(m((SOURCE, DECODER_IN), training=True))
    memory, mask, states = m.encode(SOURCE)
    constants = m.decoder_constants(memory, mask)
    previous = DECODER_IN[:, 0]
    expected = []
    for _ in range(DECODER_IN.shape[1]):
        step, states = m.decode_step(previous, states, constants)
        expected.append(_np(step))
        previous = np.argmax(expected[-1], -1).astype("int32")
    np.testing.assert_allclose(logits, np.stack(expected, 1), atol=ATOL)
    # Evaluation always uses teacher forcing.
    teacher = _np(m((SOURCE, DECODER_IN), training=False))
    assert np.abs(teacher - logits).max() > 1e-3


def test_summary_counts_each_parameter_once(model):
    """The decoder cell is tracked once (under the decoder), so the rows of
    `summary()` add up to the model's parameter count."""
    assert sum(layer.count_params() for layer in model.layers) == model.count_params()
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    assert f"{model.count_params():,}" in "\n".join(lines)


def test_masked_sequence_loss_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5)).astype("float32")
    y = np.array([[3, 4, 2, 0], [1, 2, 0, 0]])
    loss = float(MaskedSequenceLoss(pad_token_id=0)(y, logits))
    log_p = logits - np.log(np.exp(logits.astype("float64")).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    expected = -(picked * (y != 0)).sum() / (y != 0).sum()
    assert abs(loss - expected) < ATOL
    with pytest.raises(ValueError, match="pad_token_id"):
        MaskedSequenceLoss(pad_token_id=-1)


def test_masked_token_accuracy_skips_padding():
    logits = np.zeros((2, 3, 4), "float32")
    logits[0, :, 1] = 1.0  # predicts 1, 1, 1
    logits[1, :, 3] = 1.0  # predicts 3, 3, 3
    y = np.array([[1, 2, 0], [3, 0, 0]])  # 3 real tokens, 2 right
    metric = MaskedTokenAccuracy(pad_token_id=0)
    metric.update_state(y, logits)
    assert abs(float(metric.result()) - 2 / 3) < 1e-6
    metric.update_state(y, logits, sample_weight=np.array([0.0, 1.0]))  # row 1 only: 1/1
    assert abs(float(metric.result()) - 3 / 4) < 1e-6


# --- generation ---------------------------------------------------------------


def test_greedy_generate_matches_hand_loop_and_one_beam(model):
    tokens, scores = model.generate(SOURCE, max_length=6)
    assert tokens.shape == (3, 1, 6) and scores is None
    np.testing.assert_array_equal(tokens[:, 0], greedy_by_hand(model, SOURCE, 5))
    beam, beam_scores = model.generate(SOURCE, max_length=6, sampler="beam", num_beams=1)
    assert beam.shape == (3, 1, 6) and beam_scores.shape == (3, 1)
    np.testing.assert_array_equal(beam, tokens)
    # Chunked calls give the same ids.
    np.testing.assert_array_equal(model.generate(SOURCE, max_length=6, batch_size=2)[0], tokens)


def test_beam_scores_are_the_model_log_probabilities(model):
    """Each n-best hypothesis's score is its teacher-forced log-probability under
    the GNMT length penalty, so the encoder memory shared between beams (static
    cache entries) and the reordered decoder states are right."""
    alpha = 0.6
    tokens, scores = model.generate(
        SOURCE, max_length=7, sampler="beam", num_beams=3, num_results=3, length_penalty=alpha
    )
    assert tokens.shape == (3, 3, 7) and scores.shape == (3, 3)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    greedy = greedy_by_hand(model, SOURCE, 6)
    rows = np.concatenate([np.repeat(SOURCE, 3, axis=0), SOURCE])
    sequences = np.concatenate([tokens.reshape(9, 7), greedy])
    results = log_probs(model, rows, sequences)
    penalized = np.array([total / ((5.0 + length) / 6.0) ** alpha for total, length in results])
    np.testing.assert_allclose(scores.reshape(-1), penalized[:9], atol=1e-4)
    # The best beam is at least as likely (penalized) as greedy search's output.
    assert np.all(scores[:, 0] >= penalized[9:] - 1e-5)


# --- preprocessing and raw text -------------------------------------------------


def test_preprocessor_vocabularies_ids_and_config():
    pre = Seq2SeqPreprocessor.from_pairs(PAIRS, 14, 12)
    assert pre.source_vocabulary[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    # Most frequent first: "está" (4), then "tom" (3) on the Spanish side.
    assert pre.source_vocabulary[4:6] == ["está", "tom"]
    assert len(pre.source_vocabulary) == 14 and len(pre.target_vocabulary) == 12
    assert pre.target_casing["tom"] == "Tom" and pre.target_casing["i"] == "I"
    (source, decoder_in), target = pre(["¿Dónde está Tom?", "Nada"], ["Where is Tom?", "x"])
    index = {w: i for i, w in enumerate(pre.source_vocabulary)}
    np.testing.assert_array_equal(
        source,
        [[index["¿"], index["dónde"], index["está"], index["tom"], index["?"]], [3, 0, 0, 0, 0]],
    )
    assert decoder_in.shape == target.shape == (2, 5)
    assert decoder_in[0, 0] == pre.start_token_id and decoder_in[1, 0] == pre.start_token_id
    assert pre.target_tokens(target[0]) == ["where", "is", "tom", "?"]
    assert pre.decode(decoder_in[0].tolist() + [pre.end_token_id]) == "Where is Tom?"
    assert target[1, 1] == pre.end_token_id  # "x" is unknown: <unk>, </s>
    clone = Seq2SeqPreprocessor.from_config(json.loads(json.dumps(pre.get_config())))
    assert clone.get_config() == pre.get_config()


def test_translate_raw_to_raw_is_decoded_greedy(translator):
    pre = translator.preprocessor
    texts = ["¿Dónde está Tom?", "", "Tom está en casa, no sé."]
    got = translator.translate(texts)
    assert isinstance(got, list) and len(got) == 3 and got[1] == ""
    source = pre([texts[0], texts[2]])
    tokens = greedy_by_hand(translator, source, 24)
    assert [got[0], got[2]] == [pre.decode(row) for row in tokens]
    assert translator.translate(texts[0]) == got[0]
    # A single beam is greedy search; wider beams return decoded n-best heads.
    assert translator.translate(texts, sampler="beam", num_beams=1) == got
    beam = translator.translate(texts, sampler="beam", num_beams=3, length_penalty=0.0)
    ids, _ = translator.generate(source, max_length=25, sampler="beam", num_beams=3)
    assert [beam[0], beam[2]] == [pre.decode(row) for row in ids[:, 0]]


def test_fit_with_compile_defaults_and_save_load(translator, tmp_path):
    keras.utils.set_random_seed(6)
    m = Seq2Seq(
        preprocessor=translator.preprocessor,
        embedding_dim=EMB,
        units=UNITS,
        cell_type="gru",
        attention="bahdanau",
    )
    m.compile(optimizer=keras.optimizers.Adam(0.05))  # loss: the task's default
    assert isinstance(m.loss, MaskedSequenceLoss) and m.loss.pad_token_id == PAD
    x, y = m.preprocessor([s for s, _ in PAIRS], [t for _, t in PAIRS])
    history = m.fit(x, y, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert 0.0 <= history["token_accuracy"][-1] <= 1.0
    path = str(tmp_path / "s2s.keras")
    m.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is Seq2Seq and loaded.get_config() == m.get_config()
    np.testing.assert_allclose(_np(loaded(x)), _np(m(x)), atol=ATOL)
    # The preprocessor came back too: raw text -> decoded greedy ids.
    texts = [s for s, _ in PAIRS]
    expected = greedy_by_hand(loaded, loaded.preprocessor(texts, length=8), 24)
    assert loaded.translate(texts) == [loaded.preprocessor.decode(row) for row in expected]


def test_backbone_alone_has_no_task_api():
    backbone = Seq2SeqBackbone(SRC_VOCAB, TGT_VOCAB, EMB, UNITS)
    assert _np(backbone((SOURCE, DECODER_IN))).shape == (3, 4, TGT_VOCAB)
    assert not hasattr(backbone, "translate")
    # A config from before the preprocessor existed (files saved by older kzoo) still loads.
    legacy = {k: v for k, v in backbone.get_config().items() if k != "preprocessor"}
    assert Seq2Seq.from_config(legacy).preprocessor is None


# --- bad input ------------------------------------------------------------------


def test_bad_inputs(model, translator):
    memory, mask, _ = model.encode(SOURCE)
    with pytest.raises(ValueError, match="memory_mask"):
        model.decoder_constants(memory, np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="source_ids"):
        model.encode(SOURCE[0])
    with pytest.raises(ValueError, match="units"):
        Seq2Seq(5, 5, units=7, bidirectional=True)
    with pytest.raises(ValueError, match="preprocessor"):
        model.translate(["hola"])
    with pytest.raises(ValueError, match="num_beams"):
        translator.translate(["hola"], num_beams=3)
    with pytest.raises(ValueError, match="num_results"):
        translator.translate(["hola"], sampler="beam", num_results=2)
    with pytest.raises(ValueError, match="max_length"):
        model.generate(SOURCE, max_length=1)
    with pytest.raises(ValueError, match="source_vocab_size"):
        Seq2Seq(99, preprocessor=translator.preprocessor)
    with pytest.raises(ValueError, match="end_token_id"):
        Seq2Seq(preprocessor=translator.preprocessor, end_token_id=5)
    with pytest.raises(ValueError, match="source_vocab_size"):
        Seq2Seq()
    with pytest.raises(TypeError, match="preprocessor"):
        Seq2Seq(preprocessor=["<pad>"])
    with pytest.raises(ValueError, match="special tokens"):
        Seq2SeqPreprocessor(["<pad>", "<unk>", "a"], ["<pad>", "<s>", "<unk>", "b"])
    with pytest.raises(ValueError, match="same id"):
        Seq2SeqPreprocessor(["<unk>", "<pad>"], ["<pad>", "<s>", "</s>", "<unk>"])
    with pytest.raises(ValueError, match="duplicate"):
        Seq2SeqPreprocessor(["<pad>", "<unk>", "a", "a"], ["<pad>", "<s>", "</s>", "<unk>"])


# --- the shipped model without TensorFlow -----------------------------------------


def test_shipped_model_translates_without_tensorflow():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("the TensorFlow backend needs TensorFlow; this checks jax and torch")
    with open(os.path.join(ROOT, "tests", "models", "shipped_outputs.json")) as f:
        expected = json.load(f)["translate_spa_eng"]["translate"]
    code = f"""
import json
import kzoo.models
model = kzoo.models.load("saved_models/translate_spa_eng.keras")
print(json.dumps(model.translate({TRANSLATION_TEXTS!r})))
"""
    result = run_without_tensorflow(code, backend, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
