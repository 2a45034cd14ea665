"""Every model builder of `kzoo.models` exports to LiteRT, ONNX and SavedModel.

Small random-weight instances of each builder are exported with
`verify=True` (the export is reloaded with the stock runtime and compared
with Keras on padded sample inputs, within 1e-4), and the LiteRT files must
hold builtin ops only. The models that are not plain functions of their
inputs (the Seq2Seq teacher-forced scorer) are exported through a
functional view built on `keras.Input`s, the route the docs show.
"""

import keras
import numpy as np
import pytest

import kzoo
import kzoo.export
from kzoo.backend import BACKEND
from kzoo.export._layout import structured_inputs
from kzoo.models import Forecaster, LanguageModel, Seq2Seq, SequenceTagger, TextClassifier
from tests.export import models

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="in-process LiteRT/ONNX/SavedModel conversion needs the TensorFlow backend; "
    "JAX and PyTorch use the subprocess route (test_export_subprocess.py)",
)

FLOAT_ATOL = 1e-4
TOKENS = [
    "EU rejects German call to boycott British lamb .".split(),
    "Peter Blackburn".split(),
    "BRUSSELS 1996-08-22".split(),
]
TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]


def text_classifier():
    return TextClassifier(60, embedding_dim=8, units=6, cell_type="lstm", pooling=["max", "mean"])


def gru_text_classifier():
    return TextClassifier(60, embedding_dim=8, units=6, cell_type="gru", bidirectional=False)


def language_model():
    return LanguageModel(vocabulary=list("abcdefgh \n"), embedding_dim=6, units=8)


def sequence_tagger(decoder):
    words, chars = SequenceTagger.build_vocabularies(TOKENS)
    return SequenceTagger(
        words,
        TAGS,
        chars,
        word_dim=6,
        char_dim=4,
        char_units=4,
        max_word_length=6,
        lstm_units=5,
        decoder=decoder,
        seed=0,
    )


def forecaster(strategy):
    return Forecaster(window=12, horizon=3, num_covariates=2, strategy=strategy, units=6, seed=0)


def seq2seq_scorer():
    """The teacher-forced Seq2Seq as a functional model of (source, decoder input)."""
    model = Seq2Seq(40, 30, embedding_dim=6, units=8, attention="luong", seed=0)
    source = keras.Input((None,), dtype="int32", name="source_ids")
    target = keras.Input((None,), dtype="int32", name="decoder_input_ids")
    return keras.Model([source, target], model((source, target)))


BUILDERS = {
    "text_classifier_bilstm": text_classifier,
    "text_classifier_gru": gru_text_classifier,
    "language_model": language_model,
    "sequence_tagger_crf": lambda: sequence_tagger("crf"),
    "sequence_tagger_softmax": lambda: sequence_tagger("softmax"),
    "sequence_tagger_viterbi_decoding": lambda: sequence_tagger("crf").decoding_model(16),
    "forecaster_direct": lambda: forecaster("direct"),
    "forecaster_autoregressive": lambda: forecaster("autoregressive"),
    "seq2seq_teacher_forced": seq2seq_scorer,
}


# The CRF's Viterbi loops are `keras.ops.scan`s, which TensorFlow builds from
# TensorList ops; tf2onnx has no ONNX conversion for those.
NO_ONNX = {"sequence_tagger_viterbi_decoding": "tf2onnx cannot convert TensorList ops"}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def exported(request, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = models.randomize(BUILDERS[request.param](), seed=5, scale=0.4)
    folder = tmp_path_factory.mktemp(request.param)
    names = ["model.tflite", "saved"] + ([] if request.param in NO_ONNX else ["model.onnx"])
    targets = [str(folder / name) for name in names]
    return request.param, model, kzoo.export.export_many(model, targets)


def test_every_format_matches_keras(exported):
    name, _, reports = exported
    formats = ["litert", "tf_saved_model"] + ([] if name in NO_ONNX else ["onnx"])
    assert [r.format for r in reports] == formats
    for report in reports:
        assert report.verified_rows >= 2, (name, report.summary())
        assert report.max_abs_diff <= FLOAT_ATOL, (name, report.summary())


def test_litert_has_builtin_ops_only(exported):
    name, _, reports = exported
    litert = reports[0]
    assert litert.ops, name
    assert kzoo.export.non_builtin_ops(litert.ops) == [], (name, litert.ops)
    assert kzoo.export.tflite_ops(litert.path) == litert.ops


def test_lstm_layers_become_fused_ops_or_loops(exported):
    """Plain kzoo LSTMs become fused ops; layers the op cannot express stay WHILE loops."""
    name, model, reports = exported
    lstms = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, kzoo.layers.LSTM) and layer.cell.__class__ is kzoo.layers.LSTMCell
    ]
    # The fused op returns no final states: encoders with return_state loop.
    fusable = [layer for layer in lstms if not layer.return_state]
    ops = reports[0].ops
    if fusable:
        assert ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM", 0) >= 1, (name, ops)
    else:
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops and "WHILE" in ops, (name, ops)


def test_onnx_runs_other_batch_sizes_and_lengths(exported):
    name, model, reports = exported
    if name in NO_ONNX:
        pytest.skip(f"{name}: no ONNX export ({NO_ONNX[name]})")
    onnx = reports[2]
    inputs = kzoo.export.make_sample_inputs(model, 5, 9, seed=7)
    outputs = model(structured_inputs(model, inputs))
    expected = [np.asarray(keras.ops.convert_to_numpy(y)) for y in keras.tree.flatten(outputs)]
    feed = dict(zip(onnx.inputs, inputs))
    actual = kzoo.export.run_onnx(onnx.path, feed)
    for i, y in enumerate(expected):
        np.testing.assert_allclose(actual[f"output_{i}"], y, atol=FLOAT_ATOL, rtol=0)
