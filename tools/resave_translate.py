"""Re-saves saved_models/translate_spa_eng.keras with its preprocessor inside.

The shipped file used to hold the network only: translating needed the
vocabularies in `translate_spa_eng_vocab.json` and the recipe's tokenizer. This
script rebuilds the model as a `Seq2Seq` whose config carries a
`Seq2SeqPreprocessor` (both vocabularies, the tokenization, and a casing table
learned from the English side of the corpus), copies the weights unchanged
(stored as float16, as before: they were float16 values already), checks that
the new file loads and gives the same weights and the same greedy ids as the
old one, and only then replaces the file (one rename; on any failure the old
file stays).

    KZOO_DATA_DIR=/work/shared/data KERAS_BACKEND=jax python tools/resave_translate.py

Running it again on the re-saved file rebuilds the same file (the vocabularies
are then read from the file itself when the JSON is gone).
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "saved_models", "translate_spa_eng.keras")
VOCABULARY = os.path.join(ROOT, "saved_models", "translate_spa_eng_vocab.json")
CHECK_SENTENCES = [
    "Tom está en la cocina.",
    "No sé dónde vive ella.",
    "¿Puedes ayudarme mañana?",
    "Me gusta leer libros en inglés.",
]


def vocabularies(model, path):
    """(source, target) vocabularies: the model's own, else the JSON beside it."""
    if model.preprocessor is not None:
        return model.preprocessor.source_vocabulary, model.preprocessor.target_vocabulary
    with open(path, encoding="utf-8") as f:
        vocabulary = json.load(f)
    return vocabulary["source"], vocabulary["target"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--vocabulary", default=VOCABULARY)
    args = parser.parse_args(argv)

    import keras

    from kzoo.datasets.spa_eng import load_pairs
    from kzoo.models import Seq2Seq, Seq2SeqPreprocessor, load
    from kzoo.models.saving import save_compact
    from kzoo.preprocessing.text import learn_casing
    from kzoo.utils import atomic_path

    old = load(args.model)
    if not isinstance(old, Seq2Seq):
        raise TypeError(f"{args.model} holds a {type(old).__name__}, not a Seq2Seq.")
    source_vocabulary, target_vocabulary = vocabularies(old, args.vocabulary)
    english = [english for english, _ in load_pairs()]
    preprocessor = Seq2SeqPreprocessor(
        source_vocabulary,
        target_vocabulary,
        lowercase=True,
        target_casing=learn_casing(english, target_vocabulary),
    )
    # The ids the old file produced, from the recipe's tokenization.
    source = preprocessor(CHECK_SENTENCES)
    expected, _ = old.generate(source, max_length=24)
    config = {
        **old.get_config(),
        "preprocessor": keras.saving.serialize_keras_object(preprocessor),
    }
    with atomic_path(args.model) as tmp:
        save_compact(old, tmp, weights_dtype="float16", config=config)
        new = load(tmp)
        for a, b in zip(old.weights, new.weights, strict=True):
            if a.path != b.path or not np.array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            ):
                raise AssertionError(f"weight {a.path} changed in the re-saved file")
        got, _ = new.generate(source, max_length=24)
        if not np.array_equal(got, expected):
            raise AssertionError("the re-saved model generates other ids")
        translations = new.translate(CHECK_SENTENCES)
    print(f"wrote {args.model} ({os.path.getsize(args.model) / 2**20:.1f} MB)")
    print(f"casing entries: {len(preprocessor.target_casing)}")
    for sentence, ids, translation in zip(CHECK_SENTENCES, expected[:, 0], translations):
        before = " ".join(preprocessor.target_tokens(ids))  # what the vocabulary JSON gave
        print(f"  {sentence}\n    before: {before}\n    after:  {translation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
