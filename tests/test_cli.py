"""`python -m kzoo predict MODEL TEXT...`."""

import io
import os
import subprocess
import sys

import keras
import pytest

from kzoo.__main__ import main
from kzoo.models import TextClassifier, TextPipeline, WordTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def saved_pipeline(tmp_path):
    words = ["", "[UNK]", "good", "bad", "film"]
    classifier = TextClassifier(len(words), embedding_dim=4, units=3, pooling="mean", seed=1)
    pipeline = TextPipeline(WordTokenizer(words), classifier)
    path = str(tmp_path / "pipe.keras")
    pipeline.save(path)
    return path, pipeline


def test_predict_prints_probability_and_label(saved_pipeline, capsys):
    path, pipeline = saved_pipeline
    texts = ["good film", "", "Très bad — 映画"]
    assert main(["predict", path, *texts]) == 0
    lines = capsys.readouterr().out.strip("\n").split("\n")
    assert len(lines) == 3
    for line, text, p in zip(lines, texts, pipeline.predict(texts)):
        probability, label, preview = line.split("\t")
        assert float(probability) == pytest.approx(float(p), abs=1e-4)
        assert label == ("positive" if p > 0.5 else "negative")
        assert preview == text


def test_predict_reads_stdin(saved_pipeline, capsys, monkeypatch):
    path, _ = saved_pipeline
    monkeypatch.setattr(sys, "stdin", io.StringIO("good film\nbad\n"))
    assert main(["predict", path]) == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 2


def test_predict_reports_errors_without_traceback(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.keras"), "text"]) == 2
    assert "No saved model" in capsys.readouterr().err
    ids_model = TextClassifier(5, embedding_dim=2, units=2)
    path = str(tmp_path / "ids.keras")
    ids_model.save(path)
    assert main(["predict", path, "text"]) == 2
    assert "token ids" in capsys.readouterr().err


def test_python_dash_m_kzoo(saved_pipeline):
    path, pipeline = saved_pipeline
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "kzoo", "predict", path, "good film"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probability = float(proc.stdout.strip().split("\t")[0])
    assert probability == pytest.approx(float(pipeline.predict(["good film"])[0]), abs=1e-4)

    # The `kzoo` console script (when installed) with a text that is not UTF-8:
    # exit code 2 and one error line naming the byte offset, no traceback.
    script = os.path.join(os.path.dirname(sys.executable), "kzoo")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "kzoo"]
    bad = subprocess.run(
        [*command, "predict", path, "good", b"good \xff film"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    stderr = bad.stderr.decode(errors="replace")
    assert bad.returncode == 2, stderr[-3000:]
    assert (
        "predict: error: text argument 2 is not valid UTF-8: byte(s) ff at byte offset 5" in stderr
    )
    assert "Traceback" not in stderr and bad.stdout == b""
