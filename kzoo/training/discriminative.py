"""Discriminative learning rates: one learning-rate factor per layer group."""

from collections.abc import Mapping, Sequence

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_number

_WRAPPERS = (keras.optimizers.LossScaleOptimizer,)


@register_serializable
class DiscriminativeOptimizer(keras.optimizers.Optimizer):
    """Runs one Keras optimizer with a learning rate per layer group (ULMFiT).

    The layers are split into groups from the bottom (group 0, e.g. the
    embedding) to the top (the classifier head). Group `g` of `G` learns at

        lr_g(t) = lr(t) * factors[g],   by default factors[g] = factor ** -(G - 1 - g)

    where `lr(t)` is the wrapped optimizer's learning rate (a float, settable
    by callbacks, or a schedule evaluated at this optimizer's `iterations`):
    with `factor=2.6` each group learns 2.6 times slower than the one above
    (Howard & Ruder, 2018). Each group keeps its own copy of the optimizer's
    state (moments, step count for the bias correction), as PyTorch's
    parameter groups do; the update rule is the wrapped optimizer's, so
    Adam's per-group rates really differ (scaling gradients would not do
    that).

    The optimizer also follows a changing set of trainable variables during
    `fit` (gradual unfreezing, `kzoo.training.GradualUnfreezing`) on every
    backend: it is built once on all variables of its groups, and each step
    updates those that are trainable at that time.

    `global_clipnorm` and `loss_scale_factor` of the wrapped optimizer act on
    all groups together; `gradient_accumulation_steps` is not supported.

    Args:
        optimizer: a `keras.optimizers.Optimizer` (or its name); its
            configuration is copied for every group and its learning rate is
            the top group's.
        layer_groups: list of groups, bottom first; a group is a layer, a
            layer name, or a list of them. A variable belongs to the group
            that names a layer on its path (`variable.path`, e.g.
            `"lstm_0/cell/kernel"`); see `kzoo.training.layer_groups` for
            the ULMFiT split of a model.
        factor: float >= 1, the ratio between neighbouring groups (2.6).
        factors: optional list of positive floats, one multiplier per group;
            replaces `factor`.
        name: optional optimizer name.

    Example:

    >>> groups = kzoo.training.layer_groups(classifier)
    >>> optimizer = kzoo.training.DiscriminativeOptimizer(
    ...     keras.optimizers.Adam(schedule, beta_1=0.7, beta_2=0.99), groups, factor=2.6)
    >>> classifier.compile(optimizer, "binary_crossentropy")

    Reference:
        Howard & Ruder, "Universal Language Model Fine-tuning for Text
        Classification", ACL 2018, https://arxiv.org/abs/1801.06146
    """

    def __init__(self, optimizer, layer_groups, factor=2.6, factors=None, name=None):
        optimizer = keras.optimizers.get(optimizer)
        if isinstance(optimizer, (DiscriminativeOptimizer, *_WRAPPERS)) or not isinstance(
            optimizer, keras.optimizers.Optimizer
        ):
            raise ValueError(
                "`optimizer` must be a plain Keras optimizer (Adam, SGD, ...). "
                f"Received: optimizer={optimizer!r}"
            )
        config = optimizer.get_config()
        if config.get("gradient_accumulation_steps"):
            raise ValueError(
                "DiscriminativeOptimizer does not support `gradient_accumulation_steps`. "
                f"Received: gradient_accumulation_steps={config['gradient_accumulation_steps']}"
            )
        groups = group_names(layer_groups)
        factor = check_number(factor, "factor", 1.0, float("inf"))
        if factors is None:
            factors = [factor ** -(len(groups) - 1 - g) for g in range(len(groups))]
        else:
            if not isinstance(factors, (list, tuple)) or len(factors) != len(groups):
                raise ValueError(
                    f"`factors` must be a list of {len(groups)} numbers, one per layer group. "
                    f"Received: factors={factors!r}"
                )
            factors = [check_number(f, "factors", 0.0, float("inf")) for f in factors]
            if min(factors) <= 0:
                raise ValueError(f"`factors` must be positive. Received: factors={factors!r}")
        learning_rate = config["learning_rate"]
        if isinstance(learning_rate, dict):
            learning_rate = keras.optimizers.schedules.deserialize(learning_rate)
        super().__init__(
            learning_rate=learning_rate,
            global_clipnorm=config.get("global_clipnorm"),
            loss_scale_factor=config.get("loss_scale_factor"),
            name=name,
        )
        self.wrapped_config = keras.optimizers.serialize(optimizer)
        self.layer_groups = groups
        self.factor = factor
        self.factors = [float(f) for f in factors]
        group_config = {
            **config,
            "global_clipnorm": None,  # clipped here, over all groups
            "loss_scale_factor": None,  # unscaled here
        }
        self.group_optimizers = [
            type(optimizer).from_config(
                {
                    **group_config,
                    "learning_rate": _GroupLearningRate(self, f),
                    "name": f"{self.name}_group_{g}",
                }
            )
            for g, f in enumerate(self.factors)
        ]

    # -- variables -----------------------------------------------------------

    def group_of(self, variable):
        """Index of the layer group `variable` belongs to (`ValueError` if none)."""
        parts = set(variable.path.split("/")[:-1])
        found = [g for g, names in enumerate(self.layer_groups) if parts.intersection(names)]
        if len(found) != 1:
            what = "no layer group names" if not found else f"layer groups {found} all name"
            raise ValueError(
                f"{what} a layer on the path of variable {variable.path!r}; every trainable "
                f"variable needs exactly one group. Layer groups: {self.layer_groups}"
            )
        return found[0]

    def build(self, variables):
        if self.built:
            return
        variables = list(variables)
        per_group = [[] for _ in self.layer_groups]
        for variable in variables:
            per_group[self.group_of(variable)].append(variable)
        for optimizer, group in zip(self.group_optimizers, per_group):
            optimizer.build(group)
        self._group_index = {
            self._var_key(v): g for g, group in enumerate(per_group) for v in group
        }
        super().build(variables)

    @property
    def variables(self):
        variables = self._variables[:]
        for optimizer in self.group_optimizers:
            variables.extend(optimizer.variables)
        return variables

    def set_weights(self, weights):
        if not self.built:
            raise ValueError(
                "Build the optimizer (`optimizer.build(trainable_variables)`) before "
                "`set_weights()`."
            )
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(
                f"The optimizer has {len(variables)} variables; received {len(weights)} weights."
            )
        for variable, weight in zip(variables, weights):
            variable.assign(weight)

    # -- updates -------------------------------------------------------------

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `trainable_variables`, build the optimizer "
                    "first: `optimizer.build(trainable_variables)`."
                )
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise ValueError(
                f"Received {len(grads)} gradients for {len(trainable_variables)} variables."
            )
        if not self.built:
            self.build(trainable_variables)
        unknown = [v.path for v in trainable_variables if self._var_key(v) not in self._group_index]
        if unknown:
            raise ValueError(
                f"{self.name} was built without the variables {unknown}. It must be built on "
                "every variable that will train: leave all layers trainable when `fit` "
                "starts (GradualUnfreezing freezes them after the optimizer is built)."
            )
        pairs = [(g, v) for g, v in zip(grads, trainable_variables) if g is not None]
        grads = [g for g, _ in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        if self.global_clipnorm is not None:
            grads = _clip_by_global_norm(grads, self.global_clipnorm)
        per_group = [([], []) for _ in self.layer_groups]
        for grad, (_, variable) in zip(grads, pairs):
            group_grads, group_variables = per_group[self._group_index[self._var_key(variable)]]
            group_grads.append(grad)
            group_variables.append(variable)
        for optimizer, (group_grads, group_variables) in zip(self.group_optimizers, per_group):
            if group_grads:
                optimizer.apply(group_grads, group_variables)
        self._iterations.assign_add(1)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """As `keras.optimizers.Optimizer.stateless_apply` (JAX's `fit`), for
        the variables trainable now: a subset of those it was built with, in
        the same order (the model's `trainable_variables`)."""
        if not self.built:
            raise ValueError(
                f"Build {self.name} (`optimizer.build(trainable_variables)`) before "
                "`stateless_apply`."
            )
        current = [v for v in self._trainable_variables if v.trainable]
        if len(current) != len(trainable_variables):
            raise ValueError(
                f"{self.name} received {len(trainable_variables)} trainable values, but "
                f"{len(current)} of the variables it was built with are trainable now."
            )
        mapping = list(zip(current, trainable_variables))
        mapping += list(zip(self.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.apply(grads, current)
        return (
            [scope.get_current_value(v) for v in current],
            [scope.get_current_value(v) for v in self.variables],
        )

    def finalize_variable_values(self, var_list):
        keys = {self._var_key(v) for v in var_list}
        for optimizer in self.group_optimizers:
            group = [v for v in optimizer._trainable_variables if self._var_key(v) in keys]
            if group:
                optimizer.finalize_variable_values(group)

    # -- config --------------------------------------------------------------

    def get_config(self):
        return {
            "optimizer": _plain(self.wrapped_config),
            "layer_groups": _plain(self.layer_groups),
            "factor": self.factor,
            "factors": list(self.factors),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)


class _GroupLearningRate:
    """The learning rate of one group: the wrapper's rate times a factor,
    read when the group's optimizer updates (so schedules and callbacks that
    set the wrapper's rate reach every group)."""

    def __init__(self, wrapper, factor):
        self.wrapper = wrapper
        self.factor = factor

    def __call__(self):
        return ops.multiply(ops.convert_to_tensor(self.wrapper.learning_rate), self.factor)


def group_names(layer_groups):
    if isinstance(layer_groups, (str, keras.layers.Layer)) or not layer_groups:
        raise ValueError(
            "`layer_groups` must be a non-empty list of groups (a layer, a layer name or "
            f"a list of them), bottom first. Received: layer_groups={layer_groups!r}"
        )
    groups, seen = [], set()
    for group in layer_groups:
        members = group if isinstance(group, (list, tuple)) else [group]
        names = []
        for member in members:
            name = member.name if isinstance(member, keras.layers.Layer) else member
            if not isinstance(name, str) or not name:
                raise ValueError(
                    "Every member of a layer group must be a layer or a layer name. "
                    f"Received: {member!r}"
                )
            if name in seen:
                raise ValueError(f"Layer {name!r} is in more than one layer group.")
            seen.add(name)
            names.append(name)
        if not names:
            raise ValueError("A layer group must name at least one layer.")
        groups.append(names)
    return groups


def _clip_by_global_norm(grads, clipnorm):
    norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads))
    scale = ops.minimum(1.0, clipnorm / ops.maximum(norm, 1e-12))
    return [g * ops.cast(scale, g.dtype) for g in grads]


def _plain(value):
    """Plain dicts and lists (TensorFlow wraps those set as attributes)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value
