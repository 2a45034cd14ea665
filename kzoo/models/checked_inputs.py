"""Models that check their inputs on the host before Keras compiles anything."""

import contextlib


def _value_or_none(variable):
    try:
        return variable.value
    except Exception:  # detached by a running JAX loop (its `_value` is None)
        return None


@contextlib.contextmanager
def variables_kept_on_error(model):
    """Puts `model`'s variable values back if the block raises.

    Keras's JAX `predict`/`evaluate`/`fit` detach the variables' values while
    their compiled function runs and reattach them only at the end; an error
    raised while tracing (a wrong input shape, a missing package) would leave
    every variable empty, so that each later call fails with "'NoneType'
    object is not callable". Only variables left without a value get the
    value they held before the call, so a variable that still has one (every
    variable on TensorFlow and PyTorch, whose training updates them in place)
    is never rolled back.

    An error raised after the compiled function ran (e.g. by a callback)
    comes when the values held before the call are gone: JAX donated their
    buffers to the function. The loop's latest state (`_jax_state`, the
    values Keras would reattach at the end) is put back first.
    """
    variables = list(model.variables)
    values = [_value_or_none(v) for v in variables]
    try:
        yield
    except BaseException:
        if getattr(model, "_jax_state", None) and not getattr(model, "_jax_state_synced", True):
            model.jax_state_sync()
            model._jax_state = None
        restored = False
        for variable, value in zip(variables, values):
            if value is not None and _value_or_none(variable) is None:
                variable.assign(value)
                restored = True
        if restored and hasattr(model, "_jax_state_synced"):
            # The values above are the model's state; nothing stale to sync.
            model._jax_state = None
            model._jax_state_synced = True
        raise


class CheckedInputs:
    """Mixin for `keras.Model` subclasses that check their inputs on the host.

    `predict`, `predict_on_batch`, `evaluate`, `test_on_batch` and `fit`
    check concrete inputs with `check_inputs(x)` (and targets with
    `check_targets(y)`, when given) before Keras compiles anything, and keep
    the model usable if Keras fails afterwards. Datasets, generators and
    direct calls (`model(x)`, symbolic tensors) are left to Keras.
    """

    def check_inputs(self, x):
        return None

    def _check_all(self, x, y, allow_none=True):
        if x is None:
            if allow_none:
                return  # e.g. `fit` evaluating its cached validation data
            raise ValueError(f"`x` must be the model's token ids. Received: x=None ({self.name}).")
        self.check_inputs(x)
        if y is not None:
            self.check_targets(y)

    def check_targets(self, y):
        return None

    def predict(self, x, *args, **kwargs):
        self._check_all(x, None, allow_none=False)
        with variables_kept_on_error(self):
            return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        self._check_all(x, None, allow_none=False)
        with variables_kept_on_error(self):
            return super().predict_on_batch(x)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_all(x, y)
        with variables_kept_on_error(self):
            return super().evaluate(x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        self._check_all(x, y)
        with variables_kept_on_error(self):
            return super().test_on_batch(x, y, *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_all(x, y)
        with variables_kept_on_error(self):
            return super().fit(x, y, *args, **kwargs)


class CheckedTokenInputs(CheckedInputs):
    """`CheckedInputs` for models on token ids: `check_inputs` refuses ids
    outside the vocabulary (with `check_token_ids` / `check_id_matrix`)."""

    def check_inputs(self, x):
        raise NotImplementedError
