"""Exports from a JAX or PyTorch process: TensorFlow runs in a subprocess.

`kzoo.export` saves the model as `.keras`, runs
`KERAS_BACKEND=tensorflow python -m kzoo.export` and compares the result
with the model in this process. The LiteRT and ONNX files are then run here
(ai_edge_litert and onnxruntime need no TensorFlow) against this backend's
outputs and float64 references.
"""

import importlib.util

import keras
import numpy as np
import pytest

import kzoo
import kzoo.export
from kzoo.backend import BACKEND
from tests.export import models

pytestmark = [
    pytest.mark.skipif(
        BACKEND == "tensorflow",
        reason="the subprocess route serves JAX/PyTorch processes; under TensorFlow the "
        "export runs in-process (test_export_tensorflow.py)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="the export subprocess needs TensorFlow installed",
    ),
]

FLOAT_ATOL = 1e-4


@pytest.fixture(scope="module")
def classifier_exports(tmp_path_factory):
    """The classifier exported to all three formats in one TensorFlow subprocess."""
    keras.utils.set_random_seed(0)
    model = models.randomize(models.classifier(), seed=11)
    folder = tmp_path_factory.mktemp("subprocess")
    targets = [str(folder / name) for name in ("classifier.tflite", "classifier.onnx", "saved")]
    return model, kzoo.export.export_many(model, targets)


def test_litert_from_this_backend(classifier_exports):
    model, (report, _, _) = classifier_exports
    assert "subprocess" in report.route and "python -m kzoo.export" in report.route
    assert report.ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    assert kzoo.export.non_builtin_ops(report.ops) == []
    assert report.max_abs_diff <= FLOAT_ATOL
    ids = models.padded_ids(5, 10, seed=12)
    got = np.concatenate(
        [kzoo.export.run_litert(report.path, {"ids": ids[i : i + 1]})["output_0"] for i in range(5)]
    )
    np.testing.assert_allclose(
        got, models.classifier_reference(model, ids), atol=FLOAT_ATOL, rtol=0
    )


def test_onnx_from_this_backend(classifier_exports):
    model, (_, report, _) = classifier_exports
    assert report.format == "onnx" and report.max_abs_diff <= FLOAT_ATOL
    ids = models.padded_ids(6, 9, seed=13)
    got = kzoo.export.run_onnx(report.path, {"ids": ids})["output_0"]
    np.testing.assert_allclose(
        got, models.classifier_reference(model, ids), atol=FLOAT_ATOL, rtol=0
    )


def test_saved_model_from_this_backend(classifier_exports):
    _, (_, _, report) = classifier_exports
    assert report.format == "tf_saved_model" and report.signature == "serving_default"
    assert "While" in report.ops
    assert report.max_abs_diff <= FLOAT_ATOL and report.verified_rows == 4


def test_streaming_litert_from_this_backend(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.randomize(models.language_model(), seed=14)
    report = kzoo.export(model, str(tmp_path / "lm_step.tflite"), streaming=True, chunk_length=2)
    assert report.state_names == ["lstm_h", "lstm_c"] and report.max_abs_diff <= FLOAT_ATOL
    ids = np.random.default_rng(15).integers(1, models.LM_VOCAB, (3, 6)).astype("int32")
    state = {name: np.zeros((3, 16), np.float32) for name in report.state_names}
    chunks = []
    for t in range(0, 6, 2):
        out = kzoo.export.run_litert(report.path, {"ids": ids[:, t : t + 2], **state}, "step")
        state = {name: out[f"new_{name}"] for name in report.state_names}
        chunks.append(out["output_0"])
    expected = keras.ops.convert_to_numpy(model(ids))
    np.testing.assert_allclose(np.concatenate(chunks, 1), expected, atol=FLOAT_ATOL, rtol=0)


def test_dict_input_tagger_from_this_backend(tmp_path):
    """A SequenceTagger (dict of three inputs, char CNN, BiLSTM) through the subprocess."""
    from kzoo.models import SequenceTagger

    tokens = ["EU rejects German call".split(), "Peter Blackburn".split()]
    words, chars = SequenceTagger.build_vocabularies(tokens)
    keras.utils.set_random_seed(0)
    tagger = SequenceTagger(
        words, ["O", "B-PER", "I-PER"], chars, word_dim=4, char_dim=3, char_units=3,
        max_word_length=5, lstm_units=4, decoder="crf", seed=0,
    )  # fmt: skip
    tagger = models.randomize(tagger, seed=16, scale=0.4)
    report = kzoo.export(tagger, str(tmp_path / "tagger.tflite"))
    assert "subprocess" in report.route
    assert sorted(report.inputs) == ["casing", "chars", "words"]
    assert report.ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    assert kzoo.export.non_builtin_ops(report.ops) == []
    assert report.max_abs_diff <= FLOAT_ATOL
    encoded = tagger.encode(tokens, length=6)
    got = kzoo.export.run_litert(report.path, {k: v[:1] for k, v in encoded.items()})
    expected = keras.ops.convert_to_numpy(tagger({k: v[:1] for k, v in encoded.items()}))
    np.testing.assert_allclose(got["output_0"], expected, atol=FLOAT_ATOL, rtol=0)
