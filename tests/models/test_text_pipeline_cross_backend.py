"""Saved text classifiers give the same probabilities on every Keras backend.

The shipped IMDB models (a `TextClassifier` and a `TextPipeline` ensemble) are
checked against the probabilities stored next to them (in this process, on the
backend of this test run), and freshly saved ones are loaded in one
subprocess per backend.
"""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kzoo.models
from kzoo.models import TextClassifier, TextPipeline, WordTokenizer
from kzoo.models.text_classifier import TextClassifierPreprocessor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(
    path
    for path in glob.glob(os.path.join(ROOT, "saved_models", "imdb_*.keras"))
    # Classifiers only: the review language model (imdb_lm*.keras) is checked in test_presets.py.
    if not path.endswith("_quick.keras") and not os.path.basename(path).startswith("imdb_lm")
)
BACKENDS = ("tensorflow", "jax", "torch")
ATOL = 1e-5

TEXTS = [
    "A wonderful film with great acting",
    "",
    "Awful.<br /><br />A boring plot, bad film.",
    "Très bien — 映画 ÉNORME 😀",
    "great " * 3000,
]

PREDICT = """
import json, sys
import kzoo.models
results = {}
for path, texts in json.loads(sys.argv[1]):
    results[path] = kzoo.models.load(path).predict(texts).reshape(len(texts), -1).tolist()
print("RESULT" + json.dumps(results))
"""


def expected_file(model_path):
    return model_path[: -len(".keras")] + ".expected.json"


def test_a_trained_imdb_model_is_shipped():
    assert SHIPPED, "saved_models/imdb_*.keras is missing"
    for path in SHIPPED:
        assert os.path.getsize(path) <= 10_000_000, path
        assert os.path.exists(expected_file(path)), path


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_model_predicts_stored_probabilities(path):
    with open(expected_file(path)) as f:
        expected = json.load(f)
    model = kzoo.models.load(path)
    assert model.task == "classify" and model.class_names == ["negative", "positive"]
    got = model.predict(expected["texts"])
    # A TextClassifier gives (n, 1), the TextPipeline ensemble (n,).
    assert got.shape == (
        (len(expected["texts"]),) + (() if isinstance(model, TextPipeline) else (1,))
    )
    np.testing.assert_allclose(got.reshape(-1), expected["probabilities"], atol=ATOL)
    positive, negative = model.predict(
        ["This movie was wonderful, a true masterpiece.", "A terrible, boring waste of time."]
    ).reshape(-1)
    assert positive > 0.5 > negative


WORDS = ["", "[UNK]", "wonderful", "film", "great", "acting", "awful", "boring", "plot"]


def small_classifier():
    return TextClassifier(
        len(WORDS),
        embedding_dim=6,
        units=5,
        cell_type="lstm",
        pooling=["last", "attention"],
        seed=7,
        preprocessor=TextClassifierPreprocessor(WordTokenizer(WORDS, sequence_length=50), 8),
    )


def small_pipeline():
    classifier = TextClassifier(len(WORDS), embedding_dim=6, units=5, pooling="mean", seed=8)
    return TextPipeline(WordTokenizer(WORDS, sequence_length=50), classifier, bucket_width=8)


@pytest.mark.cross_backend
def test_saved_pipelines_predict_the_same_on_every_backend(tmp_path):
    jobs, wanted = [], {}
    for name, model in (("classifier", small_classifier()), ("pipeline", small_pipeline())):
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        jobs.append((path, TEXTS))
        wanted[path] = model.predict(TEXTS).reshape(len(TEXTS), -1)
    for shipped in SHIPPED:
        with open(expected_file(shipped)) as f:
            expected = json.load(f)
        jobs.append((shipped, expected["texts"]))
        wanted[shipped] = np.array(expected["probabilities"]).reshape(-1, 1)
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
        proc = subprocess.run(
            [sys.executable, "-c", PREDICT, json.dumps(jobs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{backend}:\n{proc.stderr[-3000:]}"
        line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))
        results = json.loads(line[len("RESULT") :])
        for model_path, want in wanted.items():
            np.testing.assert_allclose(
                results[model_path], want, atol=ATOL, err_msg=f"{backend}: {model_path}"
            )
