"""The text classification task: a backbone, a dense head and a preprocessor."""

import keras
import numpy as np

from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.task import Task
from kzoo.models.text_classifier.backbone import TextClassifierBackbone
from kzoo.models.text_classifier.preprocessor import TextClassifierPreprocessor, is_text_input
from kzoo.utils.serialization import deserialize_component, register_serializable
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import check_id_matrix, check_int, check_rate, check_seed

# Arguments of the backbone that `TextClassifier(vocabulary_size, ...)` takes too
# (keyword arguments, passed on to `TextClassifierBackbone`).
BACKBONE_ARGUMENTS = (
    "embedding_dim",
    "cell_type",
    "units",
    "num_layers",
    "bidirectional",
    "dropout",
    "recurrent_dropout",
    "recurrent_weight_dropout",
    "embedding_dropout",
    "spatial_dropout",
    "word_type_dropout",
    "pooling",
    "attention_units",
    "sequence_length",
    "reverse",
)
# Names used by files saved before the renames (`from_config` accepts them).
OLD_NAMES = {"cell": "cell_type", "hidden_units": "head_units"}


@register_serializable
class TextClassifier(Task, CheckedTokenInputs, keras.Model):
    """Recurrent text classifier: raw text (or token ids) in, class probabilities out.

        z = backbone(ids)                          (embedding, RNNs, pooling)
        p = sigmoid(z W + b)  or  softmax(z W + b) (optionally after a ReLU layer)

    The task of `kzoo.models.text_classifier`: a `TextClassifierBackbone`
    (the network on ids), a dense head, and an optional
    `TextClassifierPreprocessor` (raw text to ids, its vocabulary saved in
    the `.keras` file). The model itself maps `(batch, time)` int ids (0 =
    padding) to probabilities: `(batch, 1)` positive-class probabilities when
    `num_classes == 2`, else `(batch, num_classes)`; `fit`, `evaluate` and
    `model(ids)` take ids. `predict` takes ids or raw texts.

    Build it from the backbone's arguments, `TextClassifier(20000,
    cell_type="lstm")`, or around a backbone, `TextClassifier(backbone=...)`.
    The head extends the backbone's functional graph, so the classifier is
    one flat functional model (each weight counted and saved once).

    Args:
        vocabulary_size, embedding_dim, cell_type, units, num_layers,
            bidirectional, dropout, recurrent_dropout,
            recurrent_weight_dropout, embedding_dropout, spatial_dropout,
            word_type_dropout, pooling, attention_units,
            sequence_length, reverse: the backbone's arguments (see
            `TextClassifierBackbone`), when `backbone` is not given.
        backbone: a `TextClassifierBackbone` (or another functional model
            from ids to `(batch, features)`), instead of the arguments above.
        num_classes: int >= 2; 2 gives one sigmoid output.
        head_units: size of an optional ReLU layer before the output (0: none).
        head_dropout: dropout rate on the pooled features (and on the ReLU
            layer's output).
        preprocessor: optional `TextClassifierPreprocessor` (or config dict):
            lets `predict` take raw texts.
        class_names: optional list of `num_classes` str, the label of each
            class (default `["0", "1", ...]`).
        seed: optional int seed of all dropout layers (the backbone's too when
            built from arguments).
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Example:

    >>> tokenizer = kzoo.preprocessing.WordTokenizer(vocabulary)
    >>> model = kzoo.models.TextClassifier(
    ...     tokenizer.vocabulary_size, cell_type="lstm", pooling=["max", "mean"],
    ...     preprocessor=TextClassifierPreprocessor(tokenizer),
    ...     class_names=["negative", "positive"])
    >>> model.compile()  # adam, binary cross-entropy on probabilities, accuracy
    >>> model.fit(x_ids, y, epochs=2)
    >>> model.predict(["A wonderful film.", "Dull."])  # (2, 1)
    >>> model.class_names
    ['negative', 'positive']
    """

    task = "classify"

    def __init__(
        self,
        vocabulary_size=None,
        *,
        backbone=None,
        num_classes=2,
        head_units=0,
        head_dropout=0.0,
        preprocessor=None,
        class_names=None,
        seed=None,
        **kwargs,
    ):
        seed = check_seed(seed)
        # The backbone's arguments come in through `kwargs`, next to `name`.
        backbone_arguments = {k: kwargs.pop(k) for k in BACKBONE_ARGUMENTS if k in kwargs}
        if backbone is None:
            if vocabulary_size is None:
                raise ValueError(
                    "Pass `vocabulary_size` (and the other backbone arguments) or a `backbone`."
                )
            backbone = TextClassifierBackbone(vocabulary_size, seed=seed, **backbone_arguments)
        else:
            if isinstance(backbone, dict):
                backbone = keras.saving.deserialize_keras_object(backbone)
            if vocabulary_size is not None or backbone_arguments:
                given = sorted(backbone_arguments) + ["vocabulary_size"] * (
                    vocabulary_size is not None
                )
                raise ValueError(
                    "Pass the backbone's arguments or a `backbone`, not both. Received a "
                    f"backbone and {given}."
                )
            if not isinstance(backbone, keras.Model) or len(backbone.inputs) != 1:
                raise TypeError(
                    "`backbone` must be a functional Keras model with one input "
                    f"(token ids). Received: {type(backbone).__name__}"
                )
        head_units = check_int(head_units, "head_units", minimum=0)
        head_dropout = check_rate(head_dropout, "head_dropout")
        num_classes = check_int(num_classes, "num_classes", minimum=2)
        preprocessor = deserialize_component(
            preprocessor, TextClassifierPreprocessor, "preprocessor"
        )
        if preprocessor is not None:
            embedded = getattr(backbone, "vocabulary_size", None)
            if embedded is not None and embedded < preprocessor.vocabulary_size:
                raise ValueError(
                    f"The preprocessor's tokenizer has {preprocessor.vocabulary_size} words "
                    f"but the backbone embeds only {embedded} ids."
                )
        if class_names is None:
            class_names = [str(i) for i in range(num_classes)]
        if (
            not isinstance(class_names, (list, tuple))
            or len(class_names) != num_classes
            or not all(isinstance(name, str) for name in class_names)
        ):
            raise ValueError(
                f"`class_names` must be a list of {num_classes} str (one per class). "
                f"Received: class_names={class_names!r}"
            )
        head_seed = seed if seed is not None else getattr(backbone, "seed", None)

        def seed_for(offset):
            return None if head_seed is None else head_seed + offset

        # === Functional model: the head extends the backbone's graph ===
        z = backbone.output  # (batch, features)
        if head_dropout > 0:
            z = keras.layers.Dropout(head_dropout, seed=seed_for(2), name="head_dropout")(z)
        if head_units:
            # Named "hidden", as before the rename, so older files load.
            z = keras.layers.Dense(head_units, activation="relu", name="hidden")(z)
            if head_dropout > 0:
                z = keras.layers.Dropout(head_dropout, seed=seed_for(3), name="hidden_dropout")(z)
        outputs = keras.layers.Dense(
            1 if num_classes == 2 else num_classes,
            activation="sigmoid" if num_classes == 2 else "softmax",
            dtype="float32",
            name="output",
        )(z)
        super().__init__(inputs=backbone.input, outputs=outputs, **kwargs)

        # === Config and parts ===
        # The backbone shares this model's layers: kept out of Keras's
        # tracking, so summary(), count_params() and saving see each once.
        untracked_cache(self, "parts").put("backbone", backbone)
        self.head_units = head_units
        self.head_dropout = head_dropout
        self.num_classes = num_classes
        self.seed = seed
        untracked_cache(self, "parts").put("class_names", tuple(class_names))
        untracked_cache(self, "parts").put("preprocessor", preprocessor)

    # ------------------------------------------------------------------ parts
    @property
    def backbone(self):
        """The `TextClassifierBackbone`: ids to pooled features (shares this model's layers)."""
        return untracked_cache(self, "parts").get("backbone")

    @property
    def preprocessor(self):
        """The `TextClassifierPreprocessor`, or `None` (then `predict` takes ids only)."""
        return untracked_cache(self, "parts").get("preprocessor")

    @property
    def class_names(self):
        """The label of each class, a list of `num_classes` str."""
        return list(untracked_cache(self, "parts").get("class_names"))

    @property
    def tokenizer(self):
        """The preprocessor's `WordTokenizer` (AttributeError without a preprocessor)."""
        if self.preprocessor is None:
            raise AttributeError(f"{self.name} has no preprocessor, hence no tokenizer.")
        return self.preprocessor.tokenizer

    @property
    def vocabulary_size(self):
        """The number of ids the backbone embeds (its first `Embedding`'s for other backbones)."""
        size = getattr(self.backbone, "vocabulary_size", None)
        if size is None:  # nested models (e.g. a backbone wrapped in a functional model) too
            embeddings = [
                layer
                for layer in self._flatten_layers(include_self=False, recursive=True)
                if isinstance(layer, keras.layers.Embedding)
            ]
            size = embeddings[0].input_dim if embeddings else None
        return size

    @property
    def sequence_length(self):
        return getattr(self.backbone, "sequence_length", None)

    # ------------------------------------------------------------------ task
    def compile_defaults(self):
        if self.num_classes == 2:
            loss = keras.losses.BinaryCrossentropy(from_logits=False)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
        return {"optimizer": "adam", "loss": loss, "metrics": ["accuracy"]}

    def check_inputs(self, x):
        """Refuses concrete ids outside `[0, vocabulary_size)` (see `predict`)."""
        if isinstance(x, dict):
            x = x.get("token_ids")
        if self.vocabulary_size is not None:  # a backbone without an embedding: nothing to bound
            check_id_matrix(x, self.vocabulary_size, "x")

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Class probabilities for raw texts or for token ids.

        Args:
            x: raw texts (a str, or a list/tuple/1-D array of str or UTF-8
                bytes), tokenized by the preprocessor; or `(batch, time)` int
                ids in `[0, vocabulary_size)` (others raise a `ValueError`,
                which no backend reports on its own), or a dataset of them.
            batch_size: texts (or rows) per forward pass (default 32).
            verbose, **kwargs: `keras.Model.predict` arguments, for ids.

        Returns:
            Float32 `(n, 1)` positive-class probabilities when
            `num_classes == 2`, else `(n, num_classes)`; row `i` for text `i`.
        """
        if not is_text_input(x):
            return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)
        if self.preprocessor is None:
            raise ValueError(
                f"{self.name} has no preprocessor, so `predict` takes token ids only. "
                "Build it with `preprocessor=TextClassifierPreprocessor(tokenizer)` to "
                "predict from raw text."
            )
        batches = self.preprocessor.batches(x, batch_size or 32, self.sequence_length)
        if not batches.num_rows:
            return np.zeros((0, self.output_shape[-1]), "float32")
        return batches.map_batches(self.predict_on_batch).astype("float32")

    # ------------------------------------------------------------------ config
    def get_config(self):
        preprocessor = self.preprocessor
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "head_units": self.head_units,
            "head_dropout": self.head_dropout,
            "seed": self.seed,
            "preprocessor": (
                None if preprocessor is None else keras.saving.serialize_keras_object(preprocessor)
            ),
            "class_names": self.class_names,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for old, new in OLD_NAMES.items():
            if old in config:
                config[new] = config.pop(old)
        return cls(**config)
