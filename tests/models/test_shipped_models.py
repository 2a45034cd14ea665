"""The trained models in saved_models/ load and give the recorded outputs on every backend.

The expected outputs in `shipped_outputs.json` were recorded on the backend that trained
each model (JAX) with `python tests/models/test_shipped_models.py --record`; this file's
functions compute them, so recording and checking run the same code.
"""

import json
import os
import sys

import keras
import numpy as np
import pytest

from kzoo.models import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAVED = os.path.join(ROOT, "saved_models")
EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped_outputs.json")

TRANSLATION_SOURCES = [
    "tom está en la cocina .",
    "no sé dónde vive ella .",
    "¿ puedes ayudarme mañana ?",
]
CHAR_PROMPT = "ROMEO:"
WORD_PROMPT = "the company said"


def char_lm_outputs():
    model = load(os.path.join(SAVED, "char_lm_tinyshakespeare.keras"))
    ids = np.asarray(model.encode(CHAR_PROMPT + " and so"), "int32")[None]
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(model(ids), axis=-1))[0]
    return {
        "greedy": model.generate(CHAR_PROMPT, max_length=60, sampler="greedy"),
        "log_prob_of_next": [float(log_probs[t, i]) for t, i in enumerate(ids[0, 1:])],
    }


def word_lm_outputs():
    model = load(os.path.join(SAVED, "word_lm_ptb_small.keras"))
    return {"greedy": model.generate(WORD_PROMPT, max_length=12, sampler="greedy")}


def translation_outputs():
    stem = os.path.join(SAVED, "translate_spa_eng")
    model = load(stem + ".keras")
    with open(stem + "_vocab.json") as f:
        vocab = json.load(f)
    index = {w: i for i, w in enumerate(vocab["source"])}
    unk = vocab["source"].index("<unk>")
    rows = [[index.get(w, unk) for w in s.split()] for s in TRANSLATION_SOURCES]
    source = np.zeros((len(rows), max(map(len, rows))), "int32")
    for i, row in enumerate(rows):
        source[i, : len(row)] = row
    tokens = model.generate(source, max_length=20)
    return {"greedy": [" ".join(vocab["target"][t] for t in model.strip(row)) for row in tokens]}


OUTPUTS = {
    "char_lm_tinyshakespeare": char_lm_outputs,
    "word_lm_ptb_small": word_lm_outputs,
    "translate_spa_eng": translation_outputs,
}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_shipped_model_gives_recorded_outputs(name):
    with open(EXPECTED) as f:
        expected = json.load(f)[name]
    got = OUTPUTS[name]()
    assert got["greedy"] == expected["greedy"]
    if "log_prob_of_next" in expected:
        np.testing.assert_allclose(got["log_prob_of_next"], expected["log_prob_of_next"], atol=1e-4)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record = {"backend": keras.backend.backend()}
    record.update({name: make() for name, make in OUTPUTS.items()})
    with open(EXPECTED, "w") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
    print(json.dumps(record, indent=1, ensure_ascii=False))
