"""Re-saves saved_models/imdb_bigru.keras as a TextClassifier holding its preprocessor.

The file was written as a `TextPipeline` (a tokenizer around a
`TextClassifier`); since the text classifier became a task with its own
preprocessor, the shipped single model is one `TextClassifier`, so
`TextClassifier.from_preset("imdb_bigru")` and `predict(["text"])` work on it
directly. Same weights, same tokenizer, same bucket width: the script checks
that the new file gives the probabilities recorded in
`imdb_bigru.expected.json` (and the old file's, to 1e-6) before it replaces
the file atomically. Running it again on a re-saved file changes nothing.

    python tools/resave_imdb.py [saved_models/imdb_bigru.keras]

The ensemble (`imdb_bigru_ensemble.keras`) stays a `TextPipeline`: its
classifier averages two networks, which `TextClassifier` does not describe.
Refresh the preset hashes afterwards: `python tools/update_presets.py`.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kzoo.models  # noqa: E402
from kzoo.models.text_classifier import TextClassifier, TextClassifierPreprocessor  # noqa: E402
from kzoo.utils import save_model  # noqa: E402

CLASS_NAMES = ["negative", "positive"]


def resave(path):
    old = kzoo.models.load(path, compile=False)
    if isinstance(old, TextClassifier):
        print(f"{path} already holds a TextClassifier; nothing to do.")
        return False
    if not isinstance(old, kzoo.models.TextPipeline) or not isinstance(
        old.classifier, TextClassifier
    ):
        raise SystemExit(
            f"{path} holds a {type(old).__name__}, not a TextPipeline of a TextClassifier."
        )
    config = dict(
        old.classifier.get_config(),
        name=old.name,
        preprocessor=TextClassifierPreprocessor(old.tokenizer, bucket_width=old.bucket_width),
        class_names=CLASS_NAMES,
    )
    new = TextClassifier.from_config(config)
    new.set_weights(old.classifier.get_weights())

    with open(path[: -len(".keras")] + ".expected.json") as f:
        expected = json.load(f)
    texts = expected["texts"]
    got = new.predict(texts)[:, 0]
    np.testing.assert_allclose(got, old.predict(texts), atol=1e-6)
    np.testing.assert_allclose(got, expected["probabilities"], atol=1e-5)

    save_model(new, path)
    reloaded = kzoo.models.load(path, compile=False)
    assert isinstance(reloaded, TextClassifier)
    np.testing.assert_allclose(reloaded.predict(texts)[:, 0], got, atol=1e-6)
    print(f"Re-saved {path} as a TextClassifier ({os.path.getsize(path) / 1e6:.1f} MB).")
    return True


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    resave(
        sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "saved_models", "imdb_bigru.keras")
    )
