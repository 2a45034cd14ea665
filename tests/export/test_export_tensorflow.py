"""In-process exports under the TensorFlow backend: LiteRT, ONNX, SavedModel.

Each export is written once per module (conversion takes seconds) and the
tests run the files with the stock runtimes (ai_edge_litert, onnxruntime,
tf.saved_model) against Keras and float64 NumPy references.
"""

import keras
import numpy as np
import pytest

import kzoo
import kzoo.export
from kzoo.backend import BACKEND
from tests.export import models

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="in-process LiteRT/ONNX/SavedModel conversion needs the TensorFlow backend; "
    "JAX and PyTorch use the subprocess route (test_export_subprocess.py)",
)

FLOAT_ATOL = 1e-4


def keras_numpy(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def quantized_scale(model):
    """max |Keras output| on the default verification inputs of `kzoo.export`."""
    ids = kzoo.export.make_sample_inputs(model, 4, 12)[0]
    return np.abs(keras_numpy(model, ids)).max()


def run_rows(path, name, x):
    """Runs a static-batch-1 LiteRT file row by row."""
    return np.concatenate(
        [kzoo.export.run_litert(path, {name: x[i : i + 1]})["output_0"] for i in range(len(x))]
    )


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return models.randomize(models.classifier(), seed=1)


@pytest.fixture(scope="module")
def fused(classifier, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fused") / "classifier.tflite")
    return kzoo.export(classifier, path)


@pytest.fixture(scope="module")
def quantized(classifier, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("int8") / "classifier_int8.tflite")
    return kzoo.export(classifier, path, quantize="dynamic")


@pytest.fixture(scope="module")
def language_model():
    keras.utils.set_random_seed(0)
    return models.randomize(models.language_model(), seed=2)


def test_fused_litert_has_builtin_lstm_ops_only(fused):
    assert fused.ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2, fused.ops
    assert "WHILE" not in fused.ops
    assert kzoo.export.non_builtin_ops(fused.ops) == []
    assert kzoo.export.tflite_ops(fused.path) == fused.ops
    assert fused.batch_size == 1 and fused.inputs == {"ids": [1, None]}
    assert fused.max_abs_diff <= FLOAT_ATOL and fused.verified_rows == 4
    assert any("2 UNIDIRECTIONAL_SEQUENCE_LSTM op(s)" in note for note in fused.notes)


def test_fused_litert_matches_float64_reference_on_padded_rows(fused, classifier):
    ids = models.padded_ids(6, 11)
    expected = models.classifier_reference(classifier, ids)
    first = run_rows(fused.path, "ids", ids)
    np.testing.assert_allclose(first, expected, atol=FLOAT_ATOL, rtol=0)
    np.testing.assert_allclose(keras_numpy(classifier, ids), expected, atol=1e-5, rtol=0)
    # Every invoke() starts from zero state: reversed order gives the same rows.
    again = run_rows(fused.path, "ids", ids[::-1])[::-1]
    np.testing.assert_array_equal(again, first)
    # Another length in the same interpreter (dynamic time dimension).
    short = models.padded_ids(4, 5, seed=3)
    np.testing.assert_allclose(
        run_rows(fused.path, "ids", short),
        models.classifier_reference(classifier, short),
        atol=FLOAT_ATOL,
        rtol=0,
    )


def test_dynamic_range_quantization_size_and_accuracy(quantized, fused, classifier):
    assert quantized.float_size_bytes == fused.size_bytes
    assert quantized.size_bytes < 0.4 * quantized.float_size_bytes
    assert quantized.ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    assert kzoo.export.non_builtin_ops(quantized.ops) == []
    ids = models.padded_ids(8, 12, seed=4)
    expected = keras_numpy(classifier, ids)
    diff = np.abs(run_rows(quantized.path, "ids", ids) - expected).max()
    # The stated tolerance of quantized exports: 5% of the output range.
    assert 0 < diff <= 0.05 * (1 + np.abs(expected).max()), diff
    assert quantized.tolerance == pytest.approx(0.05 * (1 + quantized_scale(classifier)))


def test_fused_return_sequences_go_backwards_and_masks(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.randomize(models.tagger(), seed=5)
    report = kzoo.export(model, str(tmp_path / "tagger.tflite"), batch_size=2)
    assert report.ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 3, report.ops
    ids = models.padded_ids(4, 9, seed=6)
    got = np.concatenate(
        [kzoo.export.run_litert(report.path, {"ids": ids[i : i + 2]})["output_0"] for i in (0, 2)]
    )
    np.testing.assert_allclose(got, keras_numpy(model, ids), atol=FLOAT_ATOL, rtol=0)


def test_streaming_language_model_generates_like_keras(language_model, tmp_path):
    report = kzoo.export(language_model, str(tmp_path / "lm_step.tflite"), streaming=True)
    assert report.signature == "step"
    assert report.state_names == ["lstm_h", "lstm_c"]
    assert report.inputs == {"ids": [None, 1]}
    assert kzoo.export.non_builtin_ops(report.ops) == []
    interpreter = kzoo.export.litert_interpreter(report.path)
    # Greedy generation of 8 tokens for 3 prompts, step by step in LiteRT...
    ids = np.array([[3], [17], [29]], np.int32)
    state = {name: np.zeros((3, 16), np.float32) for name in report.state_names}
    tokens, logits = ids, []
    for _ in range(8):
        out = kzoo.export.run_litert(
            report.path, {"ids": tokens[:, -1:], **state}, "step", interpreter
        )
        state = {name: out[f"new_{name}"] for name in report.state_names}
        logits.append(out["output_0"][:, -1])
        tokens = np.concatenate([tokens, out["output_0"][:, -1:].argmax(-1).astype(np.int32)], 1)
    # ...equals Keras run on the whole generated sequence.
    expected = keras_numpy(language_model, tokens[:, :-1])
    np.testing.assert_allclose(np.stack(logits, 1), expected, atol=FLOAT_ATOL, rtol=0)
    assert np.array_equal(tokens[:, 1:], expected.argmax(-1))


def test_unrolled_litert_has_dynamic_batch(language_model, tmp_path):
    report = kzoo.export(
        language_model, str(tmp_path / "lm.tflite"), recurrent="unroll", max_length=6
    )
    assert "WHILE" not in report.ops and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in report.ops
    assert report.inputs == {"ids": [None, 6]}
    ids = np.random.default_rng(7).integers(0, models.LM_VOCAB, (5, 6)).astype("int32")
    got = kzoo.export.run_litert(report.path, {"ids": ids})["output_0"]
    np.testing.assert_allclose(got, keras_numpy(language_model, ids), atol=FLOAT_ATOL, rtol=0)


def test_gru_regressor_litert_loop_matches_float64_reference(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.randomize(models.gru_regressor(), seed=8)
    report = kzoo.export(model, str(tmp_path / "gru.tflite"), batch_size=3)
    assert report.ops.get("WHILE") == 1 and kzoo.export.non_builtin_ops(report.ops) == []
    x = np.random.default_rng(9).normal(size=(3, 10, 3)).astype("float32")
    got = kzoo.export.run_litert(report.path, {"series": x})["output_0"]
    gru = model.get_layer("gru")
    outputs, _ = models.rnn_ref.run(
        models.rnn_ref.gru_step, x, models.weights(gru.cell), [np.zeros((3, 8))]
    )
    dense = models.weights(model.layers[-1])
    expected = outputs[:, -1] @ dense["kernel"] + dense["bias"]
    np.testing.assert_allclose(got, expected, atol=FLOAT_ATOL, rtol=0)


def test_onnx_classifier_any_batch_and_length(classifier, tmp_path):
    report = kzoo.export(classifier, str(tmp_path / "classifier.onnx"))
    assert report.inputs == {"ids": [None, None]} and report.max_abs_diff <= FLOAT_ATOL
    for rows, steps in ((6, 11), (4, 4)):
        ids = models.padded_ids(rows, steps, seed=rows)
        got = kzoo.export.run_onnx(report.path, {"ids": ids})["output_0"]
        expected = models.classifier_reference(classifier, ids)
        np.testing.assert_allclose(got, expected, atol=FLOAT_ATOL, rtol=0)


def test_saved_model_classifier(classifier, tmp_path):
    report = kzoo.export(classifier, str(tmp_path / "classifier_savedmodel"))
    assert report.format == "tf_saved_model" and report.max_abs_diff <= FLOAT_ATOL
    ids = models.padded_ids(5, 7, seed=10)
    got = kzoo.export.run_artifact(report.path, "tf_saved_model", {"ids": ids})["output_0"]
    np.testing.assert_allclose(
        got, models.classifier_reference(classifier, ids), atol=FLOAT_ATOL, rtol=0
    )


def test_any_keras_model_exports(tmp_path):
    """A model of keras.layers recurrent layers only: the builtin WHILE route."""
    keras.utils.set_random_seed(0)
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=True)(ids)
    x = keras.layers.LSTM(8)(x)
    model = keras.Model(ids, keras.layers.Dense(2)(x))
    report = kzoo.export(model, str(tmp_path / "keras_lstm.tflite"))
    assert "WHILE" in report.ops and kzoo.export.non_builtin_ops(report.ops) == []
    assert report.max_abs_diff <= FLOAT_ATOL
    assert any("no fused LiteRT op" in note for note in report.notes), report.notes


def test_verification_catches_a_wrong_export(monkeypatch, tmp_path):
    from kzoo.export import _worker

    run = _worker.run

    def off_by_a_little(*args, **kwargs):
        return {k: v + 1e-3 for k, v in run(*args, **kwargs).items()}

    monkeypatch.setattr(_worker, "run", off_by_a_little)
    model = models.gru_regressor()
    with pytest.raises(kzoo.export.ExportVerificationError, match="differs from the Keras model"):
        kzoo.export(model, str(tmp_path / "gru_savedmodel"), format="tf_saved_model")
    assert not (tmp_path / "gru_savedmodel").exists()  # a rejected export is not written
    assert [p.name for p in tmp_path.iterdir()] == []


def test_fused_litert_refuses_another_batch_size(fused):
    """The interpreter alone fails with `RESHAPE ... != ...`; kzoo names the fixed batch."""
    assert (
        fused.summary().splitlines()[1].startswith("  FIXED BATCH: every call must feed exactly 1")
    )
    ids = models.padded_ids(4, 10)
    with pytest.raises(ValueError, match=r"fixed batch of 1 row\(s\).*but 4 row\(s\)"):
        kzoo.export.run_litert(fused.path, {"ids": ids})
    with pytest.raises(TypeError, match="takes int32 values"):
        kzoo.export.run_litert(fused.path, {"ids": ids[:1].astype("float32")})
