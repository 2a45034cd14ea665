"""Exports, the command lines and model loading under bad inputs and failures.

- A rejected export (verification failure) leaves the previous file or
  SavedModel folder at its path byte for byte, and no temporary files.
- Models that cannot be exported (Seq2Seq, TextPipeline, unbuilt models) say
  what to export instead.
- The LiteRT/ONNX runners refuse inputs the file cannot take (a fixed batch
  fed another row count, wrong rank, floats for token ids) naming both sides.
- `kzoo.models.load`, `kzoo.export` and the runners name the problem of every
  damaged file: missing, a folder, empty, truncated, another format.
- `python -m kzoo`, `kzoo` and `python -m kzoo.export` exit with a documented
  code and one error line, never a traceback (unless `--debug`); the CLI and
  `TextPipeline.predict` accept and refuse the same (UTF-8) texts.

Exports run in-process under TensorFlow and through the TensorFlow subprocess
under JAX and PyTorch; the verification runs in this process either way.
"""

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import kzoo
import kzoo.export
import kzoo.models
from kzoo.__main__ import main as kzoo_main
from kzoo.export import api
from kzoo.export.__main__ import main as export_main
from kzoo.models import (
    Forecaster,
    LanguageModel,
    Seq2Seq,
    SequenceTagger,
    TextClassifier,
    TextPipeline,
    WordTokenizer,
)
from tests.export import models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
HAS_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
needs_tensorflow = pytest.mark.skipif(
    not HAS_TENSORFLOW, reason="exports need TensorFlow (in-process or in the subprocess)"
)


def leftovers(folder):
    """Temporary outputs of atomic writes left in `folder`."""
    return [name for name in os.listdir(folder) if ".tmp-" in name or ".old-" in name]


def tree_bytes(path):
    """`{relative path: bytes}` of a file or of every file under a folder."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {"": f.read()}
    result = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                result[os.path.relpath(full, path)] = f.read()
    return result


def subprocess_env(backend=None):
    env = dict(os.environ, KERAS_BACKEND=backend or keras.backend.backend())
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


# --- atomic, verified exports ---------------------------------------------------


@pytest.fixture(scope="module")
def rejected_export(tmp_path_factory):
    """One `export_many` over three existing outputs whose second is rejected by verification.

    The first (a fixed-batch LiteRT file) and third (ONNX) pass and replace
    their old files; the second (a SavedModel folder) fails its comparison.
    """
    if not HAS_TENSORFLOW:
        pytest.skip("exports need TensorFlow (in-process or in the subprocess)")
    folder = tmp_path_factory.mktemp("rejected")
    litert, saved, onnx = (str(folder / n) for n in ("m.tflite", "saved", "m.onnx"))
    for path in (litert, onnx):
        with open(path, "wb") as f:
            f.write(b"previous export")
    os.makedirs(os.path.join(saved, "variables"))
    for name, data in (("saved_model.pb", b"old graph"), ("variables/x", b"old weights")):
        with open(os.path.join(saved, name), "wb") as f:
            f.write(data)
    before = {path: tree_bytes(path) for path in (litert, saved, onnx)}
    keras.utils.set_random_seed(0)
    model = models.gru_regressor()
    compare, calls = api._compare, []

    def compare_failing_second(expected, actual):
        calls.append(1)
        worst, agreement = compare(expected, actual)
        return (worst + 1.0 if len(calls) == 2 else worst), agreement

    api._compare = compare_failing_second
    try:
        with pytest.raises(kzoo.export.ExportVerificationError) as error:
            kzoo.export.export_many(
                model, [{"path": litert, "batch_size": 2}, saved, onnx], sample_inputs=None
            )
    finally:
        api._compare = compare
    return {
        "model": model,
        "folder": str(folder),
        "paths": (litert, saved, onnx),
        "before": before,
        "error": str(error.value),
    }


def test_rejected_export_keeps_the_previous_folder(rejected_export):
    _, saved, _ = rejected_export["paths"]
    assert tree_bytes(saved) == rejected_export["before"][saved]
    assert "was not written" in rejected_export["error"]
    assert repr(saved) in rejected_export["error"]
    assert leftovers(rejected_export["folder"]) == []


def test_accepted_targets_replace_their_files(rejected_export):
    litert, _, onnx = rejected_export["paths"]
    for path in (litert, onnx):
        assert tree_bytes(path) != rejected_export["before"][path]
        assert f"Targets written: ['{litert}', '{onnx}']" in rejected_export["error"]
    assert kzoo.export.tflite_ops(litert)


@needs_tensorflow
def test_subprocess_timeout_is_reported_and_keeps_the_old_file(tmp_path):
    if keras.backend.backend() == "tensorflow":
        pytest.skip("under TensorFlow the export runs in-process, without a subprocess timeout")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match=r"did not finish within timeout=0.01 s"):
        kzoo.export(models.gru_regressor(), str(path), timeout=0.01)
    assert path.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_export_refuses_unusable_targets(tmp_path):
    model = models.gru_regressor()
    (tmp_path / "folder.tflite").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        kzoo.export(model, str(tmp_path / "folder.tflite"))
    (tmp_path / "file_savedmodel").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="a file exists there"):
        kzoo.export(model, str(tmp_path / "file_savedmodel"))
    user_folder = tmp_path / "photos"
    user_folder.mkdir()
    (user_folder / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(FileExistsError, match="holds no SavedModel"):
        kzoo.export(model, str(user_folder))
    assert (user_folder / "cat.jpg").read_bytes() == b"meow"
    (tmp_path / "plain_file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        kzoo.export(model, str(tmp_path / "plain_file" / "m.onnx"))
    with pytest.raises(TypeError, match="`path` must be a str"):
        kzoo.export(model, None)
    for atol in (-1.0, float("nan"), "1e-3"):
        with pytest.raises(ValueError, match="`atol` must be"):
            kzoo.export(model, str(tmp_path / "m.onnx"), atol=atol)
    with pytest.raises(ValueError, match="its own path"):
        kzoo.export.export_many(model, [str(tmp_path / "a.onnx"), str(tmp_path / "a.onnx")])
    assert leftovers(tmp_path) == []


def test_export_refuses_sample_inputs_that_do_not_fit(tmp_path):
    model = models.gru_regressor()
    x = np.zeros((4, 6, 3), "float32")
    cases = [
        ([x, x], "one array per model input"),
        ([x[:0]], "at least one row"),
        ([x[0]], r"must have shape \(None, None, 3\)"),
    ]
    for sample_inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            kzoo.export(model, str(tmp_path / "m.onnx"), sample_inputs=sample_inputs)
    ids = np.ones((2, 5), "int32")
    with pytest.raises(ValueError, match="multiple of chunk_length=2"):
        kzoo.export(models.language_model(), str(tmp_path / "s.tflite"), streaming=True,
                    chunk_length=2, sample_inputs=[ids])  # fmt: skip
    assert os.listdir(tmp_path) == []


# --- what can be exported --------------------------------------------------------


def seq2seq():
    return Seq2Seq(20, 20, embedding_dim=4, units=4, seed=0)


def pipeline():
    words = ["", "[UNK]", "good", "bad"]
    return TextPipeline(WordTokenizer(words), TextClassifier(4, embedding_dim=2, units=2))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize(
    "build,message",
    [
        (seq2seq, r"keras.Model\(\[source, target\], s2s\(\(source, target\)\)\)"),
        (pipeline, r"kzoo.export\(pipeline.classifier, path\)"),
        (lambda: keras.Sequential([keras.layers.Dense(2)]), r"keras.Input\(shape=...\)"),
        (Subclassed, r"keras.Model\(x, model\(x\)\)"),
    ],
)
def test_models_without_inputs_say_what_to_export(build, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        kzoo.export(build(), str(tmp_path / "m.onnx"))
    with pytest.raises(ValueError, match=message):
        kzoo.export(build(), str(tmp_path / "m.onnx"), verify=False)
    assert leftovers(tmp_path) == []


def test_every_functional_builder_is_exportable():
    """The check passes the builders the export docs list as exportable."""
    tokens = [["EU", "rejects"], ["Peter"]]
    words, chars = SequenceTagger.build_vocabularies(tokens)
    tagger = SequenceTagger(words, ["O", "B-PER"], chars, word_dim=2, char_dim=2, char_units=2,
                            max_word_length=4, lstm_units=2, decoder="crf", seed=0)  # fmt: skip
    exportable = [
        TextClassifier(10, embedding_dim=2, units=2),
        LanguageModel(vocabulary=list("ab "), embedding_dim=2, units=2),
        tagger,
        tagger.decoding_model(6),
        Forecaster(window=4, horizon=1, units=2),
        pipeline().classifier,
    ]
    # The Seq2Seq scorer view (on JAX the attention layer meets symbolic dimensions here).
    s2s = seq2seq()
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    exportable.append(keras.Model([source, target], s2s((source, target))))
    for model in exportable:
        api.check_exportable(model)


# --- runners: fixed batch and input checks -----------------------------------------


@pytest.mark.skipif(not HAS_LITERT, reason="running .tflite files needs ai-edge-litert")
def test_fixed_batch_litert_refuses_other_row_counts(rejected_export):
    litert, _, _ = rejected_export["paths"]
    x = np.random.default_rng(0).normal(size=(3, 5, 3)).astype("float32")
    for rows in (1, 3):
        with pytest.raises(ValueError, match=rf"fixed batch of 2 row\(s\).*but {rows} row\(s\)"):
            kzoo.export.run_litert(litert, {"series": x[:rows]})
    expected = keras.ops.convert_to_numpy(rejected_export["model"](x[:2]))
    got = kzoo.export.run_litert(litert, {"series": x[:2]})["output_0"]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    with pytest.raises(ValueError, match="has rank 3"):
        kzoo.export.run_litert(litert, {"series": x[:2, :, 0]})
    with pytest.raises(ValueError, match=r"axis 2: 4 != 3"):
        kzoo.export.run_litert(litert, {"series": np.zeros((2, 5, 4), "float32")})
    with pytest.raises(ValueError, match=r"missing \['series'\], unknown \['ids'\]"):
        kzoo.export.run_litert(litert, {"ids": x[:2]})
    with pytest.raises(ValueError, match="not 'step'"):
        kzoo.export.run_litert(litert, {"series": x[:2]}, signature="step")


def test_fixed_batch_is_printed_in_the_report():
    report = api.ExportReport(
        path="m.tflite", format="litert", route="in-process", signature="serving_default",
        inputs={"ids": [4, None]}, state_names=[], ops={}, size_bytes=10, batch_size=4,
    )  # fmt: skip
    assert "FIXED BATCH: every call must feed exactly 4 row(s)" in report.summary()
    report.batch_size = None
    assert "FIXED BATCH" not in report.summary()


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime")
def test_onnx_runner_checks_inputs(rejected_export):
    _, _, onnx = rejected_export["paths"]
    x = np.zeros((3, 5, 3), "float32")
    assert kzoo.export.run_onnx(onnx, {"series": x})["output_0"].shape == (3, 1)
    with pytest.raises(ValueError, match="has rank 3"):
        kzoo.export.run_onnx(onnx, {"series": x[0]})
    with pytest.raises(TypeError, match="must be a dict"):
        kzoo.export.run_onnx(onnx, [x])


def test_float_ids_are_refused():
    from kzoo.export.runtime import _check_feed

    with pytest.raises(TypeError, match="takes int32 values"):
        _check_feed("m.tflite", "serving_default", "ids", np.ones((1, 3)), [1, -1], np.int32)
    _check_feed("m.tflite", "serving_default", "ids", np.ones((1, 3), "int64"), [1, -1], np.int32)


# --- damaged and wrong files --------------------------------------------------------


def damaged_files(folder, good_keras):
    """`{name: path}` of files that are not a usable `.keras` model."""
    data = open(good_keras, "rb").read()
    files = {
        "missing": os.path.join(folder, "missing.keras"),
        "folder": os.path.join(folder, "folder.keras"),
    }
    os.makedirs(files["folder"])
    contents = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "text": b"this is a text file\n",
        "tflite": b"\x18\x00\x00\x00TFL3" + bytes(40),
    }
    for name, content in contents.items():
        files[name] = os.path.join(folder, f"{name}.keras")
        with open(files[name], "wb") as f:
            f.write(content)
    # A bit flipped inside the stored config: a zip whose CRC check fails.
    crc = bytearray(data)
    start = data.index(b'"class_name"')
    crc[start + 2] ^= 0x01
    files["crc"] = os.path.join(folder, "crc.keras")
    with open(files["crc"], "wb") as f:
        f.write(bytes(crc))
    files["no_config"] = os.path.join(folder, "no_config.keras")
    with zipfile.ZipFile(files["no_config"], "w") as archive:
        archive.writestr("readme.txt", "hello")
    return files


EXPECTED_LOAD_ERRORS = {
    "missing": (FileNotFoundError, "does not exist"),
    "folder": (IsADirectoryError, "is a folder"),
    "empty": (ValueError, r"is empty \(0 bytes\)"),
    "truncated": (ValueError, "not a zip archive|truncated or corrupt"),
    "text": (ValueError, "truncated or corrupt"),
    "tflite": (ValueError, "it is a .tflite file"),
    "crc": (ValueError, "fails its CRC check"),
    "no_config": (ValueError, "no 'config.json'"),
}


@pytest.fixture
def bad_keras_files(tmp_path):
    good = str(tmp_path / "good.keras")
    models.gru_regressor().save(good)
    return damaged_files(str(tmp_path / "bad"), good), good


def test_load_names_the_problem_of_each_damaged_file(bad_keras_files):
    files, good = bad_keras_files
    for name, path in files.items():
        error_type, message = EXPECTED_LOAD_ERRORS[name]
        with pytest.raises(error_type, match=message) as error:
            kzoo.models.load(path)
        assert "File not found" not in str(error.value), name
        assert os.path.basename(path) in str(error.value), name
        with pytest.raises(error_type, match=message):
            kzoo.export(path, path + ".onnx", verify=False)
    saved_model = os.path.dirname(good) + "/sm"
    os.makedirs(saved_model)
    open(os.path.join(saved_model, "saved_model.pb"), "wb").close()
    with pytest.raises(IsADirectoryError, match="tf.saved_model.load"):
        kzoo.models.load(saved_model)
    h5 = good.replace(".keras", ".h5")
    shutil.copy(good, h5)
    with pytest.raises(ValueError, match="Expected a `.keras` model file"):
        kzoo.models.load(h5)
    assert kzoo.models.load(good).count_params() == models.gru_regressor().count_params()


def test_runners_name_the_problem_of_each_damaged_file(tmp_path):
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "folder.tflite").mkdir()
    (tmp_path / "zip.tflite").write_bytes(b"PK\x03\x04" + bytes(20))
    cases = {
        "empty.tflite": (ValueError, "is empty"),
        "folder.tflite": (IsADirectoryError, "is a folder"),
        "zip.tflite": (ValueError, "zip archive"),
        "missing.tflite": (FileNotFoundError, "No .tflite file"),
    }
    for name, (error_type, message) in cases.items():
        with pytest.raises(error_type, match=message):
            kzoo.export.tflite_ops(tmp_path / name)
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\x01 not a protobuf" * 10)
    with pytest.raises(ValueError, match="is empty"):
        kzoo.export.run_onnx(tmp_path / "empty.onnx", {})
    with pytest.raises(FileNotFoundError, match="No an .onnx file|No .*onnx"):
        kzoo.export.run_onnx(tmp_path / "missing.onnx", {})
    with pytest.raises(IsADirectoryError):
        kzoo.export.run_onnx(tmp_path / "folder.tflite", {})
    if importlib.util.find_spec("onnxruntime") is not None:
        with pytest.raises(ValueError, match="onnxruntime cannot load"):
            kzoo.export.run_onnx(tmp_path / "garbage.onnx", {})
    from kzoo.export.runtime import run_saved_model

    with pytest.raises(FileNotFoundError, match="No SavedModel folder"):
        run_saved_model(tmp_path / "empty.onnx", {})
    with pytest.raises(ValueError, match="without 'saved_model.pb'"):
        run_saved_model(tmp_path / "folder.tflite", {})


# --- python -m kzoo.export ----------------------------------------------------------


def test_export_cli_exit_codes_and_messages(bad_keras_files, tmp_path, capsys):
    files, good = bad_keras_files
    for name, path in files.items():
        assert export_main([path, str(tmp_path / "out.onnx")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("python -m kzoo.export: error: "), err
        assert "Traceback" not in err and os.path.basename(path) in err, name
    assert export_main([good, str(tmp_path / "out.pb"), "--format", "litert"]) == 2
    assert "'.tflite' file" in capsys.readouterr().err
    assert export_main([good, str(tmp_path / "o.tflite"), "--batch-size", "0"]) == 2
    assert "--batch-size must be a positive int" in capsys.readouterr().err
    assert export_main([good, str(tmp_path / "o.tflite"), "--import", "no_such_module"]) == 2
    assert "cannot import" in capsys.readouterr().err
    assert export_main([files["text"], str(tmp_path / "o.onnx"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        export_main([good, str(tmp_path / "o.tflite"), "--format", "coreml"])
    assert exit_.value.code == 2
    assert leftovers(tmp_path) == []


@needs_tensorflow
def test_export_cli_verification_failure_exits_1(tmp_path, capsys, monkeypatch):
    good = str(tmp_path / "model.keras")
    models.gru_regressor().save(good)
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    monkeypatch.setattr(api, "FLOAT_ATOL", -1.0)  # no export can meet it
    assert export_main([good, str(out)]) == 1
    err = capsys.readouterr().err
    assert "differs from the Keras model" in err and "Traceback" not in err
    assert out.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_export_cli_in_a_process(tmp_path):
    """`python -m kzoo.export` on a missing file: exit 2, one error line, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "kzoo.export", str(tmp_path / "nope.keras"), "o.tflite"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "error: No saved model at" in proc.stderr and "nope.keras" in proc.stderr


# --- python -m kzoo predict and TextPipeline.predict -------------------------------


@pytest.fixture
def saved_pipeline(tmp_path):
    words = ["", "[UNK]", "good", "bad", "film"]
    model = TextPipeline(
        WordTokenizer(words), TextClassifier(len(words), embedding_dim=4, units=3, seed=1)
    )
    path = str(tmp_path / "pipe.keras")
    model.save(path)
    return path, model


INVALID_UTF8 = b"good \xff film"  # 0xff never occurs in UTF-8; byte offset 5


def test_cli_and_predict_refuse_the_same_invalid_utf8(saved_pipeline, capsys, monkeypatch):
    path, model = saved_pipeline
    with pytest.raises(ValueError, match="position 5"):
        model.predict([b"good film", INVALID_UTF8])
    # argv as Python receives it (undecodable bytes as surrogate escapes).
    assert kzoo_main(["predict", path, "good", os.fsdecode(INVALID_UTF8)]) == 2
    captured = capsys.readouterr()
    assert "text argument 2 is not valid UTF-8: byte(s) ff at byte offset 5" in captured.err
    assert captured.out == ""  # nothing predicted
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"good\n" + INVALID_UTF8)))
    assert kzoo_main(["predict", path]) == 2
    assert "line 2 of standard input is not valid UTF-8" in capsys.readouterr().err


def test_cli_and_predict_agree_on_valid_utf8_bytes(saved_pipeline, capsys, monkeypatch):
    path, model = saved_pipeline
    texts = ["good film", "Très bad — 映画", "bad\tfilm"]
    raw = b"\n".join(text.encode() for text in texts) + b"\r\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert kzoo_main(["predict", path]) == 0
    lines = capsys.readouterr().out.strip("\n").split("\n")
    expected = model.predict([text.encode() for text in texts])
    assert len(lines) == 3
    for line, p in zip(lines, expected):
        assert float(line.split("\t")[0]) == pytest.approx(float(p), abs=1e-4)


def test_cli_errors_have_exit_codes_and_no_traceback(saved_pipeline, tmp_path, capsys):
    path, _ = saved_pipeline
    files = damaged_files(str(tmp_path / "bad"), path)
    for name, bad in files.items():
        assert kzoo_main(["predict", bad, "text"]) == 2, name
        err = capsys.readouterr().err
        assert "error: " in err and "Traceback" not in err and os.path.basename(bad) in err
    ids_model = str(tmp_path / "ids.keras")
    TextClassifier(5, embedding_dim=2, units=2).save(ids_model)
    assert kzoo_main(["predict", ids_model, "text"]) == 2
    assert "takes token ids" in capsys.readouterr().err
    assert kzoo_main(["predict", path, "text", "--batch-size", "0"]) == 2
    assert "--batch-size must be a positive int" in capsys.readouterr().err
    assert kzoo_main(["predict", files["empty"], "x", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        kzoo_main(["train", path])
    assert exit_.value.code == 2
