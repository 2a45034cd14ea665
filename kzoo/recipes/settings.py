"""A recipe's settings: one dataclass, every field a command-line flag.

A recipe declares its settings once, as a dataclass with defaults for a full
run and a dict of the values `--quick` changes. `parse_settings` turns every
field into a flag (`embedding_dim` -> `--embedding-dim`) whose help shows
the full-run and quick defaults, adds the flags every recipe shares and
returns the resolved settings. Precedence: a flag given on the command line,
then `--set KEY=VALUE`, then the quick value (with `--quick`), then the
dataclass default.

Shared flags: `--quick`, `--seed`, `--name`, `--output-dir`,
`--resume/--no-resume`, `--publish`, `--set KEY=VALUE` (repeatable).
"""

import argparse
import dataclasses
import os
import shlex
import sys
import types
import typing

import keras

_NONE_WORDS = ("none", "null")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The flags every recipe shares, resolved.

    Attributes:
        quick: whether this is a smoke run (`--quick`).
        seed: the random seed of the run.
        output_dir: where the run writes (`runs/<recipe>/<name>` unless
            `--output-dir` says otherwise).
        resume: whether an interrupted run in `output_dir` is continued.
        publish: whether the final files are copied into `saved_models/`.
    """

    quick: bool
    seed: int
    output_dir: str
    resume: bool
    publish: bool


def setting(default, help, **metadata):
    """A settings-dataclass field: its default, help text and limits in one call.

    Args:
        default: the full run's value.
        help: the flag's help text.
        **metadata: `min`, `max`, `choices` (checked when parsing) or any
            other key the recipe reads itself.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class Settings:
    ...     units: int = setting(64, "GRU width", min=1)
    """
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def marked_settings(settings, mark):
    """The settings whose field metadata sets `mark`, as keyword arguments.

    Args:
        settings: an instance of a recipe's settings dataclass.
        mark: a metadata key, e.g. `"model"` for the fields declared
            `setting(..., model=True)`: those passed to the model as they are.

    Returns:
        A dict `{field name: value}`, in the order of the fields.

    Example:

    >>> tagger = SequenceTagger(words, tags, **marked_settings(settings, "model"))
    """
    if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
        raise TypeError(f"`settings` must be a dataclass instance. Received: {settings!r}")
    return {
        field.name: getattr(settings, field.name)
        for field in dataclasses.fields(settings)
        if field.metadata.get(mark)
    }


def command_line(recipe, argv=None):
    """The shell command that runs `recipes/<recipe>.py` with `argv` on this backend.

    For model cards and logs: `KERAS_BACKEND=jax python recipes/ner.py --quick`,
    each argument quoted for the shell where it needs it.

    Args:
        recipe: the recipe's name, e.g. `"ner"`.
        argv: its arguments (default: `sys.argv[1:]`, the running script's).

    Returns:
        The command, a string.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    words = [f"KERAS_BACKEND={keras.backend.backend()}", "python", f"recipes/{recipe}.py"]
    return shlex.join([*words, *argv])


def _flag(name):
    return "--" + name.replace("_", "-")


def _describe(value):
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    return str(value)


def _converter(field, hint):
    """A function str -> value for the field's type, with clear errors."""
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else str
        origin = typing.get_origin(hint)
    item = typing.get_args(hint)[0] if origin in (tuple, list) else None
    base = item if item is not None else hint
    metadata = field.metadata

    def convert_one(text):
        if base is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        try:
            value = base(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"expected {getattr(base, '__name__', base)}, got {text!r}"
            ) from None
        low, high = metadata.get("min"), metadata.get("max")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text!r}")
        if "choices" in metadata and value not in metadata["choices"]:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(map(str, metadata['choices']))}; got {text!r}"
            )
        return value

    def convert(text):
        if optional and text.strip().lower() in _NONE_WORDS:
            return None
        if item is not None:
            return origin(convert_one(part) for part in text.replace(",", " ").split())
        return convert_one(text)

    return convert


def parse_settings(settings_class, quick=None, argv=None, recipe=None, description=None):
    """Parses the command line of a recipe into its settings and run options.

    Args:
        settings_class: a dataclass; each field needs a default, and may carry
            `metadata={"help": ..., "min": ..., "max": ..., "choices": ...}`.
            A field named `seed`, if any, is the run's seed.
        quick: dict of field name -> value used with `--quick`.
        argv: the arguments (default: `sys.argv[1:]`).
        recipe: the recipe's name, for the default output folder
            `runs/<recipe>/<name>`.
        description: the `--help` text.

    Returns:
        `(settings, options)`: an instance of `settings_class` and a
        `RunOptions`.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class Settings:
    ...     units: int = dataclasses.field(default=64, metadata={"help": "GRU width", "min": 1})
    ...     epochs: int = 3
    >>> settings, run = parse_settings(Settings, quick={"epochs": 1}, argv=["--quick"])
    >>> settings.epochs, run.quick
    (1, True)
    """
    if not dataclasses.is_dataclass(settings_class):
        raise TypeError(f"`settings_class` must be a dataclass. Received: {settings_class!r}")
    quick = dict(quick or {})
    fields = {f.name: f for f in dataclasses.fields(settings_class)}
    unknown = sorted(set(quick) - set(fields))
    if unknown:
        raise ValueError(f"`quick` names settings that do not exist: {unknown}.")
    hints = typing.get_type_hints(settings_class)
    converters = {name: _converter(f, hints.get(name, str)) for name, f in fields.items()}

    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = parser.add_argument_group("every recipe")
    shared.add_argument(
        "--quick", action="store_true", help="a smoke run: tiny model, small data, minutes"
    )
    if "seed" not in fields:
        shared.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    shared.add_argument(
        "--name",
        default=None,
        help="run name: the output folder is runs/<recipe>/<name> "
        "(default: <backend>[-quick]-seed<seed>)",
    )
    shared.add_argument("--output-dir", default=None, help="write here instead of runs/...")
    shared.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue an interrupted run found in the output folder (default: yes)",
    )
    shared.add_argument(
        "--publish",
        action="store_true",
        help="also copy the final model, card and plots into saved_models/",
    )
    shared.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any setting by its name, e.g. --set units=128 (repeatable)",
    )
    own = parser.add_argument_group("settings (full run / --quick)")
    for name, field in fields.items():
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if default is dataclasses.MISSING:
            raise ValueError(f"Setting {name!r} of {settings_class.__name__} needs a default.")
        shown = f"default: {_describe(default)}"
        if name in quick:
            shown += f"; --quick: {_describe(quick[name])}"
        help_text = field.metadata.get("help", name.replace("_", " "))
        own.add_argument(
            _flag(name),
            dest=name,
            type=converters[name],
            default=None,
            metavar=name.upper(),
            help=f"{help_text} ({shown})",
        )
    args = parser.parse_args(argv)

    values = {}
    for name, field in fields.items():
        if field.default is not dataclasses.MISSING:
            values[name] = field.default
        else:
            values[name] = field.default_factory()
    if args.quick:
        values.update(quick)
    for assignment in args.set:
        key, sep, text = assignment.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            parser.error(
                f"--set {assignment!r}: expected KEY=VALUE with KEY one of "
                f"{', '.join(sorted(fields))}"
            )
        try:
            values[key] = converters[key](text)
        except argparse.ArgumentTypeError as error:
            parser.error(f"--set {key}: {error}")
    for name in fields:
        given = getattr(args, name)
        if given is not None:
            values[name] = given
    settings = settings_class(**values)

    seed = values["seed"] if "seed" in fields else args.seed
    if args.output_dir is not None:
        output_dir = args.output_dir
    else:
        name = args.name or (
            f"{keras.backend.backend()}{'-quick' if args.quick else ''}-seed{seed}"
        )
        if not name or os.sep in name or name in (".", ".."):
            parser.error(f"--name {name!r}: expected a single folder name")
        output_dir = os.path.join("runs", recipe or "recipe", name)
    options = RunOptions(
        quick=args.quick,
        seed=seed,
        output_dir=output_dir,
        resume=args.resume,
        publish=args.publish,
    )
    return settings, options
