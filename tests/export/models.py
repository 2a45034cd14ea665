"""Small functional models built from kzoo layers, and float64 references for them."""

import keras
import numpy as np

import kzoo
from tests.references import rnn_ref

VOCAB, CLASSES, LM_VOCAB = 300, 3, 40


def classifier(units=32, embed=32):
    """Embedding(mask_zero) -> Bidirectional(LSTM) -> Dense: the text classifier.

    With 32 units and features every LSTM gate matrix has at least 1024
    entries, the size from which LiteRT's dynamic-range quantization
    quantizes a weight.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCAB, embed, mask_zero=True)(ids)
    x = kzoo.layers.Bidirectional(kzoo.layers.LSTM(units), name="bilstm")(x)
    return keras.Model(ids, keras.layers.Dense(CLASSES, name="head")(x))


def language_model(units=16):
    """Embedding -> LSTM(return_sequences) -> Dense over the vocabulary."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(LM_VOCAB, 8)(ids)
    x = kzoo.layers.LSTM(units, return_sequences=True, name="lstm")(x)
    return keras.Model(ids, keras.layers.Dense(LM_VOCAB)(x))


def gru_regressor(features=3, units=8):
    series = keras.Input(shape=(None, features), name="series")
    x = kzoo.layers.GRU(units, name="gru")(series)
    return keras.Model(series, keras.layers.Dense(1)(x))


def tagger(units=8, tags=5):
    """Bidirectional LSTM and a go_backwards LSTM, both returning sequences, with masks."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=True)(ids)
    x = kzoo.layers.Bidirectional(kzoo.layers.LSTM(units, return_sequences=True))(x)
    x = kzoo.layers.LSTM(units, return_sequences=True, go_backwards=True)(x)
    return keras.Model(ids, keras.layers.Dense(tags)(x))


def randomize(model, seed=0, scale=0.5):
    """Uniform(-scale, scale) weights, so that no gate sits at its initial value."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.uniform(-scale, scale, w.shape).astype("float32"))
    return model


def padded_ids(rows, steps, vocab=VOCAB, seed=0):
    """Token ids with right padding, left padding, a hole and a full row (0 = padding)."""
    ids = np.random.default_rng(seed).integers(1, vocab, (rows, steps)).astype("int32")
    ids[0, steps - steps // 3 :] = 0
    ids[1, :2] = 0
    ids[2, steps // 2] = 0
    ids[3, 1:] = 0
    return ids


def weights(layer):
    return {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}


def classifier_reference(model, ids):
    """float64 NumPy forward pass of `classifier()` with Keras masking."""
    table = keras.ops.convert_to_numpy(model.layers[1].embeddings).astype(np.float64)
    x, mask = table[ids], ids != 0
    bi = model.get_layer("bilstm")
    finals = []
    for layer, backwards in ((bi.forward_layer, False), (bi.backward_layer, True)):
        zeros = [np.zeros((len(ids), layer.cell.units))] * 2
        outputs, _ = rnn_ref.run(
            rnn_ref.lstm_step, x, weights(layer.cell), zeros, mask, go_backwards=backwards
        )
        finals.append(outputs[:, -1])
    head = weights(model.get_layer("head"))
    return np.concatenate(finals, -1) @ head["kernel"] + head["bias"]
