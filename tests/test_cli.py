"""`python -m kzoo predict MODEL_OR_PRESET INPUT...` and `python -m kzoo presets`."""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kzoo.__main__ import main
from kzoo.models import TextClassifier, TextPipeline, WordTokenizer
from tests.models.test_presets import PROMPTS, SENTENCES, SOURCES, TEXTS, _recorded, _series

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


# --- every task, through presets -------------------------------------------------------


def _cli_json(argv, capsys):
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _forecast_csv(name, folder):
    values, dates = _series(name)
    path = os.path.join(folder, f"{name}.csv")
    with open(path, "w", encoding="utf-8") as f:
        if dates is None:
            f.write("value\n" + "".join(f"{float(v)!r}\n" for v in values))
        else:
            f.write(
                "month,passengers\n" + "".join(f"{d},{float(v)!r}\n" for d, v in zip(dates, values))
            )
    return path


@pytest.mark.parametrize(
    "name",
    [
        "imdb_bigru",
        "ner_crf",
        "translate_spa_eng",
        "char_lm_tinyshakespeare",
        "forecast_airline",
        "forecast_sine",
    ],
)
def test_predict_runs_every_task_from_its_preset(name, capsys, tmp_path):
    """`python -m kzoo predict PRESET ... --json` gives the task API's recorded outputs."""
    recorded = _recorded()
    assert name in recorded, (
        f"tests/models/preset_outputs.json has no recorded outputs for {name!r}: "
        f"record them with: KERAS_BACKEND=jax python tests/models/test_presets.py --record {name}"
    )
    expected = recorded[name]
    if name.startswith("forecast"):
        document = _cli_json(["predict", name, _forecast_csv(name, tmp_path), "--column",
                              "-1"], capsys)  # fmt: skip
        (result,) = document["results"]
        np.testing.assert_allclose(result["forecast"], expected["forecast"], rtol=1e-4)
        values, dates = _series(name)
        if dates is not None:  # the steps are the dates after the series
            assert result["steps"][0] > dates[-1] and len(result["steps"]) == len(
                result["forecast"]
            )
        return
    if name == "char_lm_tinyshakespeare":
        prompt, length = PROMPTS[name]
        document = _cli_json(["predict", name, prompt, "--max-length", str(length)], capsys)
        assert [r["text"] for r in document["results"]] == [expected["greedy"]]
        return
    inputs = {"imdb_bigru": TEXTS, "ner_crf": SENTENCES, "translate_spa_eng": SOURCES}[name]
    document = _cli_json(["predict", name, *inputs], capsys)
    results = document["results"]
    assert [r["text"] for r in results] == inputs
    if name == "imdb_bigru":
        got = [r["probability"] for r in results]
        np.testing.assert_allclose(got, np.ravel(expected["probabilities"]), rtol=1e-4, atol=1e-5)
        assert [r["label"] for r in results] == ["positive" if p > 0.5 else "negative"
                                                 for p in np.ravel(expected["probabilities"])]  # fmt: skip
    elif name == "ner_crf":
        assert [r["tags"] for r in results] == expected["tags"]
        assert main(["predict", name, SENTENCES[0]]) == 0  # text output: token/TAG pairs
        pairs = capsys.readouterr().out.split()
        assert [p.rsplit("/", 1)[1] for p in pairs] == expected["tags"][0]
    else:
        assert [r["translation"] for r in results] == expected["greedy"]


def test_presets_command_and_options_of_other_tasks(capsys, tmp_path):
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    for name in ("imdb_bigru", "ner_crf", "forecast_airline", "word_lm_ptb_small"):
        assert name in listing
    rows = json.loads(main(["presets", "--json"]) == 0 and capsys.readouterr().out)
    assert {row["name"]: row["task"] for row in rows}["forecast_sine"] == "forecast"
    csv_path = _forecast_csv("forecast_sine", tmp_path)
    assert main(["predict", "forecast_sine", csv_path, "--num-beams", "4"]) == 2
    assert "--num-beams applies to translate and generate models" in capsys.readouterr().err
    assert main(["predict", "forecast_sine", csv_path, "--column", "price"]) == 2
    assert "has no column 'price'" in capsys.readouterr().err
    assert main(["predict", "no_such_preset", "x"]) == 2
    assert "Unknown preset 'no_such_preset'. Known presets:" in capsys.readouterr().err


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow", reason="runs JAX or torch with TensorFlow blocked"
)
def test_predict_without_tensorflow(tmp_path):
    """The CLI, presets and raw-in/raw-out tasks run with TensorFlow unimportable."""
    from tests.harness import run_without_tensorflow

    csv_path = _forecast_csv("forecast_airline", tmp_path)
    code = f"""
    from kzoo.__main__ import main
    assert main(["presets"]) == 0
    assert main(["predict", "forecast_airline", {csv_path!r}]) == 0
    assert main(["predict", "ner_crf", "Peter Blackburn lives in Paris"]) == 0
    print("cli ok")
    """
    result = run_without_tensorflow(code, keras.backend.backend(), cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "cli ok" in result.stdout and "Peter/B-PER Blackburn/I-PER" in result.stdout
    assert "1960-01\t" in result.stdout  # the month after the series
