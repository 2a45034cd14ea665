"""Optional dependencies: import them with an error that names the kzoo extra.

kzoo needs only Keras and NumPy; features built on other packages import them
when used, through `require`, so that a missing package is reported as

    ImportError: keras_hub samplers need the package 'keras_hub', which
    is not installed. Install it with: pip install "kzoo[hub]"

instead of a bare `ModuleNotFoundError` from deep inside the call. The extras
are those of `pyproject.toml` (`[project.optional-dependencies]`).
"""

import importlib

# pyproject.toml's extras and the import names each one provides.
EXTRAS = {
    "tensorflow": ("tensorflow",),
    "jax": ("jax",),
    "torch": ("torch",),
    "hub": ("keras_hub",),
    "export": ("tensorflow", "ai_edge_litert", "tf2onnx", "onnx", "onnxruntime"),
    "recipes": ("keras_hub", "matplotlib", "sacrebleu", "seqeval"),
}


def require(module, extra, feature=None):
    """Imports and returns `module`, or raises an ImportError naming the extra.

    Args:
        module: the import name, e.g. `"keras_hub"` or
            `"ai_edge_litert.interpreter"`.
        extra: the kzoo extra that installs it (a key of
            `[project.optional-dependencies]`: "hub", "export", "recipes",
            "tensorflow", "jax", "torch").
        feature: optional name of what needs it, for the message (e.g.
            `"beam search with keras_hub samplers"`).

    Returns:
        The imported module.

    Raises:
        ValueError: `extra` is not one of kzoo's extras, or `module` is not
            a package that `extra` installs.
        ModuleNotFoundError: the module is not installed (its `name` is the missing
            top-level package); the message says `pip install "kzoo[<extra>]"`.
            Errors raised while importing an installed module propagate as
            they are.

    Example:

    >>> keras_hub = require("keras_hub", extra="hub")
    """
    if not isinstance(module, str) or not module:
        raise TypeError(f"`module` must be a non-empty str. Received: module={module!r}")
    if extra not in EXTRAS:
        raise ValueError(f"`extra` must be one of {sorted(EXTRAS)}. Received: extra={extra!r}")
    top = module.split(".")[0]
    if top not in EXTRAS[extra]:
        raise ValueError(
            f"The extra {extra!r} installs {list(EXTRAS[extra])}, not {top!r}. "
            f"Received: module={module!r}, extra={extra!r}"
        )
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        # Only a missing package is "not installed"; a module that is present
        # but fails inside its own imports reports its own error.
        if error.name is None or error.name.split(".")[0] != top:
            raise
        if feature:
            message = f"{feature} needs the package {top!r}, which is not installed."
        else:
            message = f"The package {top!r} (to import {module!r}) is not installed."
        raise ModuleNotFoundError(
            f'{message} Install it with: pip install "kzoo[{extra}]"',
            name=top,
        ) from error
