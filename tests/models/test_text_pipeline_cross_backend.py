"""Saved text pipelines give the same probabilities on every Keras backend.

The shipped IMDB model is checked against the probabilities stored next to it
(in this process, on the backend of this test run), and a freshly saved
pipeline is loaded in one subprocess per backend.
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(
    path
    for path in glob.glob(os.path.join(ROOT, "saved_models", "imdb_*.keras"))
    if not path.endswith("_quick.keras")
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
    results[path] = kzoo.models.load(path).predict(texts).tolist()
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
    got = model.predict(expected["texts"])
    assert got.shape == (len(expected["texts"]),)
    np.testing.assert_allclose(got, expected["probabilities"], atol=ATOL)
    positive, negative = model.predict(
        ["This movie was wonderful, a true masterpiece.", "A terrible, boring waste of time."]
    )
    assert positive > 0.5 > negative


def small_pipeline():
    words = ["", "[UNK]", "wonderful", "film", "great", "acting", "awful", "boring", "plot"]
    classifier = TextClassifier(
        len(words), embedding_dim=6, units=5, cell="lstm", pooling=["last", "attention"], seed=7
    )
    return TextPipeline(WordTokenizer(words, sequence_length=50), classifier, bucket_width=8)


@pytest.mark.cross_backend
def test_saved_pipelines_predict_the_same_on_every_backend(tmp_path):
    path = str(tmp_path / "pipeline.keras")
    pipeline = small_pipeline()
    pipeline.save(path)
    jobs = [(path, TEXTS)]
    wanted = {path: pipeline.predict(TEXTS)}
    for shipped in SHIPPED:
        with open(expected_file(shipped)) as f:
            expected = json.load(f)
        jobs.append((shipped, expected["texts"]))
        wanted[shipped] = np.array(expected["probabilities"])
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
