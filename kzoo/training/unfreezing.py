"""Layer groups of a recurrent model and gradual unfreezing (ULMFiT)."""

import keras

from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.rnn import RNN
from kzoo.training.discriminative import group_names
from kzoo.utils.validation import check_units

RECURRENT = (RNN, Bidirectional)


def walk_layers(model):
    """The layers of `model` in order, nested models opened (not their layers' sublayers)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and not isinstance(layer, RECURRENT):
            yield from walk_layers(layer)
        else:
            yield layer


def layer_groups(model):
    """ULMFiT's layer groups of a recurrent model, bottom first, as layer names.

    The layers with weights before the first recurrent layer (the
    embedding) form group 0, each recurrent layer (or `Bidirectional`
    wrapper) its own group, and the layers after the last one (pooling,
    dense head) the top group. Layers with weights between two recurrent
    layers join the group below them.

    Args:
        model: a built Keras model with kzoo recurrent layers (for example a
            `TextClassifier` or a `LanguageModel`), nested models included.

    Returns:
        list of lists of layer names, for `DiscriminativeOptimizer` and
        `GradualUnfreezing`.

    Example:

    >>> kzoo.training.layer_groups(classifier)
    [['embedding'], ['lstm_0'], ['lstm_1'], ['attention_pooling', 'output']]
    """
    layers = list(walk_layers(model))
    positions = [i for i, layer in enumerate(layers) if isinstance(layer, RECURRENT)]
    if not positions:
        raise ValueError(
            f"Model {model.name!r} has no kzoo recurrent layer; layer groups are "
            "the embedding, each recurrent layer and the head."
        )
    first, last = positions[0], positions[-1]
    groups = [[layer.name for layer in layers[:first] if layer.trainable_weights]]
    for layer in layers[first : last + 1]:
        if isinstance(layer, RECURRENT):
            groups.append([layer.name])
        elif layer.trainable_weights:
            groups[-1].append(layer.name)
    groups.append([layer.name for layer in layers[last + 1 :] if layer.trainable_weights])
    return [group for group in groups if group]


class GradualUnfreezing(keras.callbacks.Callback):
    """Unfreezes a model's layer groups one at a time, from the top (ULMFiT).

    In the first `epochs_per_group` epochs only the top group trains; each
    following block of `epochs_per_group` epochs unfreezes the next group
    down, until all train. The choice depends on the epoch index only, so a
    run resumed by `BackupAndRestore` (or started with `initial_epoch`)
    continues where it was. Freezing sets `layer.trainable`; the compiled
    train function is rebuilt when the set changes.

    The optimizer must know every variable that will train: leave all
    layers trainable until `fit` starts (Keras builds the optimizer on the
    trainable variables before the first epoch) and use an optimizer that
    follows a changing set of trainable variables on every backend,
    `kzoo.training.DiscriminativeOptimizer` (with `factor=1.0` for one
    learning rate).

    Args:
        layer_groups: list of groups, bottom first (layer names or layers,
            or lists of them), e.g. `kzoo.training.layer_groups(model)`.
        epochs_per_group: positive int, epochs between two unfreezings.

    Attributes:
        unfrozen: how many groups (from the top) train in the current epoch.

    Example:

    >>> groups = kzoo.training.layer_groups(classifier)
    >>> classifier.compile(kzoo.training.DiscriminativeOptimizer("adam", groups), loss)
    >>> classifier.fit(x, y, epochs=4, callbacks=[kzoo.training.GradualUnfreezing(groups)])
    """

    def __init__(self, layer_groups, epochs_per_group=1):
        super().__init__()
        self.layer_groups = group_names(layer_groups)
        self.epochs_per_group = check_units(epochs_per_group, "epochs_per_group")
        self.unfrozen = None

    def _layers(self):
        by_name = {layer.name: layer for layer in walk_layers(self.model)}
        missing = [name for group in self.layer_groups for name in group if name not in by_name]
        if missing:
            raise ValueError(
                f"GradualUnfreezing: the model has no layers named {missing}. "
                f"Layers: {sorted(by_name)}"
            )
        return [[by_name[name] for name in group] for group in self.layer_groups]

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.unfrozen = None

    def on_epoch_begin(self, epoch, logs=None):
        groups = self._layers()
        unfrozen = min(len(groups), 1 + epoch // self.epochs_per_group)
        if unfrozen == self.unfrozen:
            return
        changed = False
        for g, layers in enumerate(groups):
            trainable = g >= len(groups) - unfrozen
            for layer in layers:
                if layer.trainable != trainable:
                    layer.trainable = trainable
                    changed = True
        self.unfrozen = unfrozen
        if changed:
            # The compiled step holds the set of trainable variables.
            self.model.make_train_function(force=True)
