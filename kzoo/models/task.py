"""`Task`: the base of kzoo's task models (raw input in, raw output out).

A task is a `keras.Model` subclass that users train and call on raw data:
`TextClassifier`, `SequenceTagger`, `Seq2Seq`, `LanguageModel` and
`Forecaster`. `Task` is a mixin placed before `keras.Model` in the bases and
gives every task the same three things:

- a `task` class attribute naming what the model does (`"classify"`,
  `"tag"`, `"translate"`, `"generate"` or `"forecast"`), which the command
  line (`python -m kzoo predict`) dispatches on;
- `from_preset(name_or_path)`, which loads a shipped model by preset name
  (see `kzoo.models.list_presets()`) or a `.keras` file by path, and checks
  that it is an instance of the class it was called on;
- `compile()` with no arguments, which compiles with the task's defaults
  (`compile_defaults()`: a loss with the right `from_logits`, metrics), and
  a `compile_from_config` that lets `keras.saving.load_model(compile=True)`
  restore the settings a file was saved with (Keras skips a custom `compile`
  otherwise).
"""

import keras

TASKS = ("classify", "tag", "translate", "generate", "forecast")

# The value of a `compile()` argument that asks for the task's default.
AUTO = "auto"


class Task:
    """Mixin for kzoo task models: `task` name, `from_preset`, compile defaults.

    Subclasses put it first in their bases, set the `task` class attribute
    and override `compile_defaults()`:

    Example:

    ```python
    @register_serializable
    class Forecaster(Task, keras.Model):
        task = "forecast"

        def compile_defaults(self):
            return {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]}

    model = Forecaster.from_preset("forecast_airline")
    model.compile()  # adam, mse, mae
    model.compile(optimizer=keras.optimizers.SGD(0.1))  # loss and metrics: defaults
    ```

    Class attributes:
        task: what the model does, one of `"classify"`, `"tag"`,
            `"translate"`, `"generate"`, `"forecast"`; `None` on the mixin
            itself and on abstract intermediate classes.
    """

    task = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        task = cls.__dict__.get("task")
        if task is not None and task not in TASKS:
            raise ValueError(
                f"`{cls.__name__}.task` must be one of {list(TASKS)}. Received: task={task!r}"
            )

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, name_or_path, **kwargs):
        """Loads a shipped model by preset name, or a `.keras` file by path.

        A name is looked up in the preset registry (`kzoo.models.list_presets()`)
        and resolved to a local file whose sha256 is checked: the repository's
        `saved_models/`, else the user cache, else a download (see
        `kzoo.models.presets`). Anything else is read as a path.

        Args:
            name_or_path: a preset name such as `"imdb_bigru"`, or the path
                of a `.keras` file.
            **kwargs: passed to `kzoo.models.load` (`compile`, and for
                presets `cache_dir`, `base_url`).

        Returns:
            The model, an instance of this class.

        Raises:
            ValueError: an unknown preset name (the message lists the known
                ones), or a file that fails its sha256 check or cannot load.
            TypeError: the preset or file holds a model of another class.

        Example:

        >>> tagger = kzoo.models.SequenceTagger.from_preset("ner_crf")
        >>> tagger.tag(["EU rejects German call"])
        """
        from kzoo.models import loading, presets

        entry = presets.find_preset(name_or_path)
        if entry is not None and not _is_subclass_named(cls, entry.task_class):
            raise TypeError(
                f"The preset {entry.name!r} is a {entry.task_class}, not a {cls.__name__}. "
                f"Load it with `kzoo.models.{entry.task_class}.from_preset({entry.name!r})` "
                f"or `kzoo.models.from_preset({entry.name!r})`."
            )
        model = loading.load(name_or_path, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(
                f"{name_or_path!r} holds a {type(model).__name__}, not a {cls.__name__}. "
                f"Load it with `kzoo.models.load({name_or_path!r})`, or with "
                f"`{type(model).__name__}.from_preset` where that class is a kzoo task."
            )
        return model

    # ------------------------------------------------------------------ compile
    def compile_defaults(self):
        """The arguments `compile()` uses for those left at `"auto"`.

        Subclasses return a dict with any of the keys `optimizer`, `loss`,
        `metrics` (values as `keras.Model.compile` takes them). The loss must
        match the model's outputs: `from_logits=True` for a model that
        returns logits.

        Returns:
            A dict; the mixin's own is `{"optimizer": "adam"}`.
        """
        return {"optimizer": "adam"}

    def compile(self, optimizer=AUTO, loss=AUTO, *, metrics=AUTO, **kwargs):
        """Configures the model for training, with the task's defaults.

        Each of `optimizer`, `loss` and `metrics` left at `"auto"` takes its
        value from `compile_defaults()`; other arguments go to
        `keras.Model.compile` unchanged.

        Args:
            optimizer: an optimizer, its name, or `"auto"`.
            loss: a loss, its name, or `"auto"`.
            metrics: a list of metrics, or `"auto"`.
            **kwargs: further `keras.Model.compile` arguments
                (`loss_weights`, `weighted_metrics`, `run_eagerly`,
                `steps_per_execution`, `jit_compile`, `auto_scale_loss`).
        """
        chosen = {"optimizer": optimizer, "loss": loss, "metrics": metrics}
        if any(_is_auto(value) for value in chosen.values()):
            defaults = self.compile_defaults()
            unknown = sorted(set(defaults) - set(chosen))
            if unknown:
                raise ValueError(
                    f"`{type(self).__name__}.compile_defaults()` returned unknown key(s) "
                    f"{unknown}; expected only 'optimizer', 'loss', 'metrics'."
                )
            for name, value in chosen.items():
                if _is_auto(value):
                    chosen[name] = defaults.get(name, _FALLBACKS[name])
        super().compile(**chosen, **kwargs)

    def compile_from_config(self, config):
        """Compiles with the settings a saved file holds (`load_model(compile=True)`).

        Keras skips this step for models whose `compile` is overridden; a task
        restores the saved optimizer, loss and metrics.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)  # so its saved state can load


# What an "auto" argument becomes when `compile_defaults()` leaves it out.
_FALLBACKS = {"optimizer": "adam", "loss": None, "metrics": None}


def _is_auto(value):
    return isinstance(value, str) and value == AUTO


def _is_subclass_named(cls, class_name):
    """Whether the kzoo class called `class_name` is `cls` or one of its subclasses."""
    import kzoo.models

    registered = getattr(kzoo.models, class_name, None)
    if not isinstance(registered, type):
        return True  # unknown here: the check after loading decides
    return issubclass(registered, cls)
