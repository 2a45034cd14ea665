"""The probabilities a saved IMDB classifier gives fixed texts, recorded to check every backend."""

import keras
import numpy as np

from kzoo.datasets.imdb import SAMPLE_TEXTS


def sample_probabilities(model):
    """`{"backend", "texts", "probabilities"}` of `model` on `SAMPLE_TEXTS` (JSON-ready).

    The `.expected.json` next to a shipped IMDB classifier:
    `tests/models/test_text_pipeline_cross_backend.py` loads the model on each
    backend and compares. `model` is a raw-text classifier (a `TextClassifier`
    with its preprocessor, `(n, 1)` out, or a `TextPipeline`, `(n,)` out).
    """
    texts = list(SAMPLE_TEXTS)
    probabilities = np.asarray(model.predict(texts)).reshape(len(texts), -1)[:, 0]
    return {
        "backend": keras.backend.backend(),
        "texts": texts,
        "probabilities": probabilities.tolist(),
    }
