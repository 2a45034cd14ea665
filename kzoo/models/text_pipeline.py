"""Raw text in, probabilities out: a tokenizer and a classifier in one model."""

import keras
import numpy as np

from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.tokenizer import WordTokenizer, check_texts
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_id_matrix, check_token_ids


@register_serializable
class TextPipeline(CheckedTokenInputs, keras.Model):
    """A `WordTokenizer` and a classifier on ids, saved together.

    The Keras model inside works on integer ids, so it runs on every backend;
    the string-to-ids step is plain Python (`WordTokenizer`) whose
    vocabulary is part of this model's config, so one `.keras` file holds
    everything. `predict` accepts raw strings.

    Calling the pipeline (`pipeline(ids)`, `fit`, `evaluate`) works on ids,
    exactly like the wrapped classifier.

    Args:
        tokenizer: a `WordTokenizer` (or its config dict).
        classifier: a Keras model from `(batch, time)` int ids to
            probabilities, e.g. a `kzoo.models.TextClassifier`.
        bucket_width: `predict` pads each batch only to its longest text,
            rounded up to a multiple of this (fewer distinct shapes to
            compile); padding does not change the predictions.
        **kwargs: `keras.Model` arguments (`name`).

    Example:

    >>> pipe = kzoo.models.load("saved_models/imdb_bigru.keras")
    >>> pipe.predict(["This movie was wonderful", "Dull and far too long."])
    array([0.97, 0.04], dtype=float32)
    """

    def __init__(self, tokenizer, classifier, bucket_width=32, **kwargs):
        super().__init__(**kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = WordTokenizer.from_config(tokenizer)
        if not isinstance(tokenizer, WordTokenizer):
            raise TypeError(
                f"`tokenizer` must be a kzoo.models.WordTokenizer. Received {type(tokenizer)}."
            )
        if not isinstance(classifier, keras.Model):
            raise TypeError(f"`classifier` must be a Keras model. Received {type(classifier)}.")
        classifier_vocabulary = getattr(classifier, "vocabulary_size", None)
        if classifier_vocabulary is not None and classifier_vocabulary < tokenizer.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size} words but the classifier only "
                f"embeds {classifier_vocabulary} ids."
            )
        if isinstance(bucket_width, bool) or not isinstance(bucket_width, int) or bucket_width < 1:
            raise ValueError(f"`bucket_width` must be a positive int. Received {bucket_width!r}.")
        self.tokenizer = tokenizer
        self.classifier = classifier
        self.bucket_width = bucket_width
        self.built = True

    @property
    def num_classes(self):
        return getattr(self.classifier, "num_classes", None) or self.classifier.output_shape[-1]

    def call(self, token_ids, training=False):
        return self.classifier(token_ids, training=training)

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
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer):
            self.check_inputs(x)
            return self.classifier.predict(x, batch_size=batch_size, verbose=verbose, **kwargs)
        texts = check_texts(x)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int. Received {batch_size!r}.")
        sequences = self.tokenizer.encode(texts)
        probabilities = self.predict_ids(sequences, batch_size=batch_size)
        if probabilities.shape[-1] == 1:
            return probabilities[:, 0]
        return probabilities

    @property
    def vocabulary_size(self):
        """The number of ids the classifier embeds (the tokenizer's if it does not say)."""
        return getattr(self.classifier, "vocabulary_size", None) or self.tokenizer.vocabulary_size

    def check_inputs(self, x):
        """Refuses concrete id arrays with ids outside `[0, vocabulary_size)`.

        Used by `predict` on id arrays and by `evaluate`/`predict_on_batch`,
        which take ids only.
        """
        check_id_matrix(x, self.vocabulary_size, "x")

    def predict_ids(self, sequences, batch_size=64):
        """Runs the classifier on unpadded id arrays, batching similar lengths.

        Returns `(len(sequences), outputs)` float32 probabilities in input order.
        """
        outputs = self.classifier.output_shape[-1]
        result = np.zeros((len(sequences), outputs), dtype="float32")
        order = np.argsort([len(ids) for ids in sequences], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            longest = max([len(sequences[i]) for i in rows] + [1])
            length = -(-longest // self.bucket_width) * self.bucket_width
            fixed = getattr(self.classifier, "sequence_length", None)
            if fixed is not None:
                length = fixed
            batch = WordTokenizer.pad([sequences[i] for i in rows], length)
            check_token_ids(batch, self.vocabulary_size, "sequences")
            probabilities = self.classifier.predict_on_batch(batch)
            result[rows] = keras.ops.convert_to_numpy(probabilities)
        return result

    def get_config(self):
        config = {
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "bucket_width": self.bucket_width,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("tokenizer", "classifier"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
