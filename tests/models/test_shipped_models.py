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
# The same sentences as a user types them, for `translate`.
TRANSLATION_TEXTS = ["Tom está en la cocina.", "No sé dónde vive ella.", "¿Puedes ayudarme mañana?"]
# CoNLL-2003 tokenization (tokens separated by spaces), as the tagger was trained on.
NER_SENTENCES = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "The European Commission said on Thursday it disagreed with German advice to consumers to "
    "shun British lamb until scientists determine whether mad cow disease can be transmitted to "
    "sheep .",
    "Germany 's representative to the European Union 's veterinary committee Werner Zwingmann "
    "said on Wednesday consumers should buy sheepmeat from countries other than Britain until "
    "the scientific advice was clearer .",
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
    # The vocabularies and tokenization are inside the file (its preprocessor).
    model = load(os.path.join(SAVED, "translate_spa_eng.keras"))
    tokens, _ = model.generate(model.preprocessor(TRANSLATION_SOURCES), max_length=20)
    return {
        "greedy": [" ".join(model.preprocessor.target_tokens(row)) for row in tokens[:, 0]],
        "translate": model.translate(TRANSLATION_TEXTS),
    }


def ner_outputs():
    model = load(os.path.join(SAVED, "ner_crf.keras"))
    scores = keras.ops.convert_to_numpy(model(model.encode(NER_SENTENCES[:1])))
    return {"tags": model.predict(NER_SENTENCES), "emissions": scores[0, :9].tolist()}


OUTPUTS = {
    "char_lm_tinyshakespeare": char_lm_outputs,
    "word_lm_ptb_small": word_lm_outputs,
    "translate_spa_eng": translation_outputs,
    "ner_crf": ner_outputs,
}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_shipped_model_gives_recorded_outputs(name):
    with open(EXPECTED) as f:
        expected = json.load(f)[name]
    got = OUTPUTS[name]()
    if "greedy" in expected:
        assert got["greedy"] == expected["greedy"]
    if "tags" in expected:
        assert got["tags"] == expected["tags"]
    if "emissions" in expected:
        np.testing.assert_allclose(got["emissions"], expected["emissions"], atol=1e-4)
    if "translate" in expected:
        assert got["translate"] == expected["translate"]
    if "log_prob_of_next" in expected:
        np.testing.assert_allclose(got["log_prob_of_next"], expected["log_prob_of_next"], atol=1e-4)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record = {"backend": keras.backend.backend()}
    record.update({name: make() for name, make in OUTPUTS.items()})
    with open(EXPECTED, "w") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
    print(json.dumps(record, indent=1, ensure_ascii=False))
