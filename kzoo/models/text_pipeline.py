"""A tokenizer and any classifier on ids, saved together (e.g. an ensemble).

`kzoo.models.TextClassifier` holds its own preprocessor and is the task to
use for one recurrent classifier. `TextPipeline` pairs a tokenizer with any
Keras model from ids to probabilities, such as the averaging ensemble of
`recipes/imdb_ensemble.py`, and loads the files saved with it.
"""

import keras
import numpy as np

from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.task import Task
from kzoo.models.text_classifier.preprocessor import TextClassifierPreprocessor
from kzoo.utils.serialization import register_serializable
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import check_id_matrix, check_int


@register_serializable
class TextPipeline(Task, CheckedTokenInputs, keras.Model):
    """A `WordTokenizer` and a classifier on ids, saved together.

    The Keras model inside works on integer ids, so it runs on every backend;
    the string-to-ids step is plain Python (`WordTokenizer`) whose
    vocabulary is part of this model's config, so one `.keras` file holds
    everything. `predict` accepts raw strings; calling the pipeline
    (`pipeline(ids)`, `fit`, `evaluate`) works on ids, exactly like the
    wrapped classifier.

    Args:
        tokenizer: a `kzoo.preprocessing.WordTokenizer` (or its config dict).
        classifier: a Keras model from `(batch, time)` int ids to
            probabilities, e.g. a `kzoo.models.TextClassifier` or an average
            of several.
        bucket_width: `predict` pads each batch only to its longest text,
            rounded up to a multiple of this (fewer distinct shapes to
            compile); padding does not change the predictions.
        class_names: optional list of str, one label per class (default:
            `["negative", "positive"]` for one sigmoid output, else
            `["0", "1", ...]`).
        **kwargs: `keras.Model` arguments (`name`).

    Example:

    >>> pipe = kzoo.models.load("saved_models/imdb_bigru_ensemble.keras")
    >>> pipe.predict(["This movie was wonderful", "Dull and far too long."])
    array([0.97, 0.04], dtype=float32)
    """

    task = "classify"

    def __init__(self, tokenizer, classifier, bucket_width=32, class_names=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(tokenizer, TextClassifierPreprocessor):
            raise TypeError("`tokenizer` must be a WordTokenizer, not a preprocessor.")
        preprocessor = TextClassifierPreprocessor(tokenizer, bucket_width)
        if not isinstance(classifier, keras.Model):
            raise TypeError(f"`classifier` must be a Keras model. Received {type(classifier)}.")
        classifier_vocabulary = getattr(classifier, "vocabulary_size", None)
        if (
            classifier_vocabulary is not None
            and classifier_vocabulary < preprocessor.vocabulary_size
        ):
            raise ValueError(
                f"The tokenizer has {preprocessor.vocabulary_size} words but the classifier only "
                f"embeds {classifier_vocabulary} ids."
            )
        self.classifier = classifier
        untracked_cache(self, "parts").put("preprocessor", preprocessor)
        outputs = self.classifier.output_shape[-1]
        if class_names is None:
            class_names = ["negative", "positive"] if outputs == 1 else None
            class_names = class_names or [str(i) for i in range(outputs)]
        if not isinstance(class_names, (list, tuple)) or not all(
            isinstance(name, str) for name in class_names
        ):
            raise ValueError(f"`class_names` must be a list of str. Received: {class_names!r}")
        untracked_cache(self, "parts").put("class_names", tuple(class_names))
        self.built = True

    @property
    def preprocessor(self):
        return untracked_cache(self, "parts").get("preprocessor")

    @property
    def tokenizer(self):
        return self.preprocessor.tokenizer

    @property
    def bucket_width(self):
        return self.preprocessor.bucket_width

    @property
    def class_names(self):
        return list(untracked_cache(self, "parts").get("class_names"))

    @property
    def num_classes(self):
        outputs = getattr(self.classifier, "num_classes", None) or self.classifier.output_shape[-1]
        return max(outputs, 2)

    @property
    def vocabulary_size(self):
        """The number of ids the classifier embeds (the tokenizer's if it does not say)."""
        embedded = getattr(self.classifier, "vocabulary_size", None)
        return embedded or self.preprocessor.vocabulary_size

    def call(self, token_ids, training=False):
        return self.classifier(token_ids, training=training)

    def compile_defaults(self):
        outputs = self.classifier.output_shape[-1]
        loss = "binary_crossentropy" if outputs == 1 else "sparse_categorical_crossentropy"
        return {"optimizer": "adam", "loss": loss, "metrics": ["accuracy"]}

    def check_inputs(self, x):
        """Refuses concrete id arrays with ids outside `[0, vocabulary_size)`."""
        check_id_matrix(x, self.vocabulary_size, "x")

    def predict(self, x, batch_size=64, verbose=0, **kwargs):
        """Probabilities for raw texts (or for an int id array).

        Args:
            x: a str, or a list/tuple/1-D array of str (raw texts); or a 2-D
                int array of token ids in `[0, vocabulary_size)` (others raise
                a `ValueError`), passed to the classifier as is.
            batch_size: texts per forward pass.
            verbose: passed to `keras.Model.predict` for id arrays.

        Returns:
            For a binary classifier, `(n,)` float32 positive-class
            probabilities; else `(n, num_classes)`.
        """
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            self.check_inputs(x)
            return self.classifier.predict(x, batch_size=batch_size, verbose=verbose, **kwargs)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        fixed = getattr(self.classifier, "sequence_length", None)
        batches = self.preprocessor.batches(x, batch_size, fixed)
        outputs = self.classifier.output_shape[-1]
        if not batches.num_rows:
            probabilities = np.zeros((0, outputs), "float32")
        else:
            probabilities = batches.map_batches(self.classifier.predict_on_batch)
        probabilities = probabilities.astype("float32")
        return probabilities[:, 0] if outputs == 1 else probabilities

    def get_config(self):
        config = {
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "bucket_width": self.bucket_width,
            "class_names": self.class_names,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("tokenizer", "classifier"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
