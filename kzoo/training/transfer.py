"""Weight transfer from a pretrained language model into a classifier (ULMFiT)."""

import keras

from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.gru_cell import GRUCell
from kzoo.layers.lstm_cell import LSTMCell
from kzoo.layers.rnn import RNN
from kzoo.layers.simple_rnn_cell import SimpleRNNCell
from kzoo.training.unfreezing import RECURRENT, walk_layers

_CELL_KINDS = (LSTMCell, GRUCell, SimpleRNNCell)


def transfer_language_model_weights(language_model, classifier, backward_language_model=None):
    """Copies a language model's embedding and recurrent weights into a classifier.

    The first step of ULMFiT's classifier fine-tuning (Howard & Ruder,
    2018; Dai & Le, 2015): the classifier starts from the pretrained
    embedding matrix and the recurrent layers of the language model, its
    head from scratch. Layer `i` of the classifier receives layer `i` of the
    language model (a classifier with fewer recurrent layers takes the
    lowest ones). A bidirectional classifier layer receives the forward
    model in its forward layer and `backward_language_model` (a language
    model trained on reversed text with the same vocabulary) in its backward
    layer; without one its backward layers keep their initial weights.

    Both models must share the vocabulary (the same ids for the same
    tokens: build the classifier's tokenizer from the language model's
    vocabulary); sizes, cell kinds and shapes are checked, and nothing is
    copied when a check fails.

    Args:
        language_model: a built Keras model with an embedding layer (a layer
            with an `embeddings` weight, such as `TiedEmbedding` or
            `keras.layers.Embedding`) and kzoo recurrent layers, e.g.
            `kzoo.models.LanguageModel`.
        classifier: a built Keras model of the same kind of layers, e.g.
            `kzoo.models.TextClassifier`.
        backward_language_model: optional language model for the backward
            direction of a bidirectional classifier.

    Returns:
        list of `(source, target)` layer-name pairs that were copied, the
        embedding first.

    Example:

    >>> lm = kzoo.models.LanguageModel(vocabulary_size=30000, embedding_dim=400,
    ...                                units=400, num_layers=3, cell_type="lstm")
    >>> clf = kzoo.models.TextClassifier(30000, embedding_dim=400, cell_type="lstm",
    ...                                  units=400, num_layers=3, bidirectional=False)
    >>> kzoo.training.transfer_language_model_weights(lm, clf)
    """
    plan = _plan_embedding(language_model, classifier, backward_language_model)
    target_recurrent = _recurrent_layers(classifier)
    source_recurrent = _recurrent_layers(language_model)
    backward_recurrent = (
        None if backward_language_model is None else _recurrent_layers(backward_language_model)
    )
    if len(target_recurrent) > len(source_recurrent):
        raise ValueError(
            f"The classifier has {len(target_recurrent)} recurrent layers but the language "
            f"model only {len(source_recurrent)}; the classifier may have at most as many."
        )
    if backward_recurrent is not None and len(target_recurrent) > len(backward_recurrent):
        raise ValueError(
            f"The classifier has {len(target_recurrent)} recurrent layers but the backward "
            f"language model only {len(backward_recurrent)}."
        )
    for i, target in enumerate(target_recurrent):
        if isinstance(target, Bidirectional):
            plan.append(_plan_layer(source_recurrent[i], target.forward_layer, target.name))
            if backward_recurrent is not None:
                plan.append(_plan_layer(backward_recurrent[i], target.backward_layer, target.name))
        else:
            if backward_recurrent is not None:
                raise ValueError(
                    "`backward_language_model` needs a bidirectional classifier; recurrent "
                    f"layer {target.name!r} reads one direction."
                )
            plan.append(_plan_layer(source_recurrent[i], target, target.name))
    for _, _, pairs in plan:
        for source, target in pairs:
            # Through NumPy: on JAX the models must not share (donatable) buffers.
            target.assign(keras.ops.convert_to_numpy(source))
    return [(source, target) for source, target, _ in plan]


def _embedding(model, what):
    for layer in walk_layers(model):
        if isinstance(layer, RECURRENT):
            break
        if getattr(layer, "embeddings", None) is not None:
            return layer
    raise ValueError(
        f"The {what} has no embedding layer (a layer with `embeddings`) before its "
        "recurrent layers."
    )


def _recurrent_layers(model):
    return [layer for layer in walk_layers(model) if isinstance(layer, RECURRENT)]


def _plan_embedding(language_model, classifier, backward_language_model):
    source = _embedding(language_model, "language model")
    target = _embedding(classifier, "classifier")
    _check_shape(source.embeddings, target.embeddings, source.name, target.name)
    for model in (language_model, backward_language_model):
        vocabulary = getattr(model, "vocabulary", None)
        other = getattr(classifier, "vocabulary", None)
        if model is not None and vocabulary is not None and other is not None:
            if list(vocabulary) != list(other):
                raise ValueError(
                    "The language model and the classifier have different vocabularies; "
                    "the embedding rows would mean other tokens."
                )
    if backward_language_model is not None:
        backward = _embedding(backward_language_model, "backward language model")
        _check_shape(backward.embeddings, target.embeddings, backward.name, target.name)
    return [(source.name, target.name, [(source.embeddings, target.embeddings)])]


def _cell_kind(layer):
    if not isinstance(layer, RNN):
        return None
    return next((kind for kind in _CELL_KINDS if isinstance(layer.cell, kind)), None)


def _plan_layer(source, target, target_name):
    if isinstance(source, Bidirectional):
        raise ValueError(
            f"Language model layer {source.name!r} is bidirectional; a language model "
            "reads one direction (give a forward and a backward model instead)."
        )
    source_kind, target_kind = _cell_kind(source), _cell_kind(target)
    if source_kind is None or source_kind is not target_kind:
        raise ValueError(
            f"Cannot copy {source.name!r} ({type(source.cell).__name__}) into "
            f"{target.name!r} ({type(getattr(target, 'cell', target)).__name__}): the cells "
            "must be of the same kind (LSTM, GRU or simple RNN)."
        )
    names = [w.name for w in source.cell.weights]
    target_names = [w.name for w in target.cell.weights]
    if names != target_names:
        raise ValueError(
            f"{source.name!r} has cell weights {names} but {target.name!r} has "
            f"{target_names} (layer norm, bias or reset_after differ)."
        )
    pairs = list(zip(source.cell.weights, target.cell.weights))
    for a, b in pairs:
        _check_shape(a, b, f"{source.name}/{a.name}", f"{target_name}/{b.name}")
    return (source.name, target_name, pairs)


def _check_shape(source, target, source_name, target_name):
    if tuple(source.shape) != tuple(target.shape):
        raise ValueError(
            f"Shape mismatch: {source_name} has shape {tuple(source.shape)} but "
            f"{target_name} has shape {tuple(target.shape)} (vocabulary size, embedding size "
            "and units must match)."
        )
