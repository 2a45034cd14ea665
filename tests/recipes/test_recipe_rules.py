"""The recipe contract, checked statically over every `recipes/*.py` and `saved_models/*.md`.

The rules of the recipe convention (docs/recipes.md) that can be read off the
source without running anything: no `sys.path` edits, no TensorFlow import
outside the export recipe, a frozen `Settings` dataclass whose every field has
a default and help text (read from the imported class), a `QUICK` dict, `main(argv=None)` that starts with
`parse_settings` and then `kzoo.recipes.start_run` (which seeds with
`kzoo.utils.set_random_seed`, limits PyTorch's threads, so no recipe sets thread
variables itself, and makes the `RunFolder`) and stays short, `fit` only with `callbacks=` and `shuffle=False`, nothing
written into `saved_models/` except through `RunFolder.publish`, and an
`if __name__ == "__main__"` guard. Every shipped model card has the five
sections in order and a `Licence:` line in its Data section. The code is read
with `ast`, so comments, docstrings and help texts never count as code.
"""

import ast
import dataclasses
import functools
import glob
import os

import keras
import pytest

from tests.recipes.recipe_module import load_recipe

# The rules read source files: the backend changes nothing, so one pass is enough.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="static checks, run once (on the JAX pass)"
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "recipes", "*.py")))
# Modules that train for the recipes (their `fit` calls are checked too).
HELPERS = sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "kzoo", "recipes", "*.py"))
)
CARDS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "saved_models", "*.md")))
CARD_SECTIONS = ("Intended use", "Limitations", "Data", "Metrics", "Training")
# Exports a trained model to TensorFlow formats (SavedModel, LiteRT): it needs TensorFlow.
NEEDS_TENSORFLOW = {"imdb_export.py"}
# "main is at most ~60 lines": a little slack for formatting.
# Statements `main` may take before `start_run`: checks that need no folder.
BEFORE_START_RUN = 3
# Variables that size thread pools: `limit_threads` decides, the user may override.
THREAD_VARIABLES = {
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS", "XLA_FLAGS",
}  # fmt: skip
MAIN_MAX_LINES = 65
# Calls whose arguments name a file or folder that gets written.
WRITERS = {
    "open", "write_text", "write_json", "write_bytes", "save_model", "save", "save_weights",
    "savefig", "savez", "savez_compressed", "atomic_path", "copyfile", "copy", "copy2",
    "copytree", "move", "replace", "rename", "makedirs", "mkdir", "to_csv", "RunFolder",
    "export", "check_writable_folder",
}  # fmt: skip


@functools.cache
def parse(relative_path):
    with open(os.path.join(ROOT, relative_path), encoding="utf-8") as f:
        return ast.parse(f.read(), filename=relative_path)


def recipe_tree(script):
    return parse(os.path.join("recipes", script))


def call_name(call):
    """`f` for `f(...)` and `a.b.f(...)`; None for other callees."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def dotted(node):
    """`"a.b.c"` for an attribute chain `a.b.c`, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def calls(tree):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


@functools.cache
def imported(script):
    return load_recipe(script)


def where(script, node):
    return f"{script}:{node.lineno}"


def main_function(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            return node
    return None


def start_run_index(main):
    """The index of main's statement that calls `start_run`, if it comes early enough."""
    for i, statement in enumerate(body_without_docstring(main)[1:]):
        if any(call_name(c) == "start_run" for c in calls(statement)):
            return i if i <= BEFORE_START_RUN else None
    return None


def body_without_docstring(function):
    body = list(function.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body


def is_path_into(node, tainted):
    """Whether `node` builds a path in saved_models: the string itself, a name
    bound to such a path, or `os.path.join`/f-string/`+`/`x if c else y` of them."""
    if isinstance(node, (ast.Name, ast.Attribute)):
        return dotted(node) in tainted
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and "saved_models" in node.value
    if isinstance(node, ast.JoinedStr):
        return any(
            is_path_into(v.value if isinstance(v, ast.FormattedValue) else v, tainted)
            for v in node.values
        )
    if isinstance(node, ast.BinOp):
        return is_path_into(node.left, tainted) or is_path_into(node.right, tainted)
    if isinstance(node, ast.IfExp):
        return is_path_into(node.body, tainted) or is_path_into(node.orelse, tainted)
    if isinstance(node, ast.BoolOp):
        return any(is_path_into(v, tainted) for v in node.values)
    if isinstance(node, ast.Call) and call_name(node) in ("join", "Path", "abspath", "fspath"):
        return any(is_path_into(a, tainted) for a in node.args)
    return False


def mentions_saved_models(node):
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and "saved_models" in n.value
        for n in ast.walk(node)
    )


# ---------------------------------------------------------------------- recipes


def test_the_rules_see_every_recipe():
    assert len(RECIPES) >= 8, RECIPES  # imdb, imdb_ensemble, imdb_export, char_lm, ...
    assert "forecast.py" in RECIPES and CARDS


@pytest.mark.parametrize("script", RECIPES)
def test_module_docstring_and_main_guard(script):
    tree = recipe_tree(script)
    assert (ast.get_docstring(tree) or "").strip(), f"{script}: no module docstring"
    guards = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and isinstance(node.test.ops[0], ast.Eq)
        and isinstance(node.test.comparators[0], ast.Constant)
        and node.test.comparators[0].value == "__main__"
    ]
    assert guards, f'{script}: no `if __name__ == "__main__":` at module level'
    assert any(call_name(c) == "main" for c in calls(guards[0])), (
        f"{script}: the __main__ guard does not call main()"
    )


@pytest.mark.parametrize("script", RECIPES)
def test_no_sys_path_edit(script):
    uses = [
        where(script, node)
        for node in ast.walk(recipe_tree(script))
        if isinstance(node, ast.Attribute) and dotted(node) == "sys.path"
    ]
    assert not uses, f"sys.path used at {uses}: kzoo is installed (pip install -e .)"


@pytest.mark.parametrize("script", RECIPES)
def test_no_tensorflow_import(script):
    if script in NEEDS_TENSORFLOW:
        pytest.skip(f"{script} exports to TensorFlow formats")
    imports = []
    for node in ast.walk(recipe_tree(script)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "tensorflow" for name in names):
            imports.append(where(script, node))
    assert not imports, f"TensorFlow imported at {imports}: recipes run on JAX/torch without it"


@pytest.mark.parametrize("script", RECIPES)
def test_settings_dataclass_and_quick(script):
    # Recipes build their fields with helpers (e.g. `_setting(default, help)`),
    # so the fields are read from the imported class, not from the source.
    recipe = imported(script)
    settings = getattr(recipe, "Settings", None)
    assert settings is not None and dataclasses.is_dataclass(settings), (
        f"{script}: no Settings dataclass"
    )
    assert settings.__dataclass_params__.frozen, f"{script}: Settings is not frozen=True"
    problems = []
    for field in dataclasses.fields(settings):
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.append(f"{field.name}: no default")
        if not str(field.metadata.get("help") or "").strip():
            problems.append(f"{field.name}: no metadata help")
    assert not problems, f"{script}: Settings fields {problems}"
    quick = getattr(recipe, "QUICK", None)
    assert isinstance(quick, dict), f"{script}: no module-level QUICK dict (what --quick changes)"
    unknown = set(quick) - {f.name for f in dataclasses.fields(settings)}
    assert not unknown, f"{script}: QUICK names no setting: {sorted(unknown)}"


@pytest.mark.parametrize("script", RECIPES)
def test_main_parses_settings_seeds_and_makes_a_run_folder(script):
    main = main_function(recipe_tree(script))
    assert main is not None, f"{script}: no module-level main()"
    args = main.args
    assert [a.arg for a in args.args] == ["argv"] and len(args.defaults) == 1, (
        f"{script}: main must be main(argv=None)"
    )
    assert isinstance(args.defaults[0], ast.Constant) and args.defaults[0].value is None
    body = body_without_docstring(main)
    first = body[0] if body else None
    assert (
        isinstance(first, ast.Assign)
        and isinstance(first.value, ast.Call)
        and call_name(first.value) == "parse_settings"
    ), f"{script}: main does not start with `settings, options = parse_settings(...)`"
    keywords = {k.arg for k in first.value.keywords}
    assert {"recipe", "description"} <= keywords, (
        f"{script}: parse_settings without recipe= or description= (got {sorted(keywords)})"
    )
    second = body[1] if len(body) > 1 else None
    seeds = (
        isinstance(second, ast.Expr)
        and isinstance(second.value, ast.Call)
        and isinstance(second.value.func, ast.Name)
        and second.value.func.id == "set_random_seed"
    )
    assert seeds or start_run_index(main) is not None, (
        f"{script}: main's second statement is not set_random_seed(options.seed) from "
        "kzoo.utils (keras.utils.set_random_seed imports TensorFlow on every backend), "
        "and main does not call kzoo.recipes.start_run(options) (which seeds) at once"
    )
    assert any(call_name(c) in ("RunFolder", "start_run") for c in calls(main)), (
        f"{script}: main makes no RunFolder"
    )
    lines = main.end_lineno - main.lineno + 1
    assert lines <= MAIN_MAX_LINES, f"{script}: main is {lines} lines (at most ~60)"


@pytest.mark.parametrize("script", RECIPES)
def test_threads_are_limited_by_kzoo_not_by_the_recipe(script):
    tree = recipe_tree(script)
    problems = [
        f"{where(script, node)} names {node.value}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in THREAD_VARIABLES
    ]
    problems += [
        f"{where(script, call)} calls {call_name(call)}()"
        for call in calls(tree)
        if call_name(call) in ("set_num_threads", "set_num_interop_threads")
    ]
    assert not problems, (
        f"{problems}: a recipe limits its threads with kzoo.recipes.start_run (limit_threads) "
        "and leaves thread variables to the user (set before an import, they work only while "
        "nothing imported the backend)"
    )
    assert start_run_index(main_function(tree)) is not None, (
        f"{script}: main does not call kzoo.recipes.start_run(options) right after "
        f"parse_settings (at most {BEFORE_START_RUN} checks between them)"
    )


@pytest.mark.parametrize("path", [os.path.join("recipes", s) for s in RECIPES] + HELPERS)
def test_every_fit_has_callbacks_and_no_keras_shuffle(path):
    problems = []
    for call in calls(parse(path)):
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "fit"):
            continue
        keywords = {k.arg: k.value for k in call.keywords}
        if "callbacks" not in keywords:
            problems.append(f"{path}:{call.lineno} fit without callbacks=")
        shuffle = keywords.get("shuffle")
        if not (isinstance(shuffle, ast.Constant) and shuffle.value is False):
            problems.append(f"{path}:{call.lineno} fit without shuffle=False")
    assert not problems, problems


@pytest.mark.parametrize("script", RECIPES)
def test_saved_models_only_through_publish(script):
    tree = recipe_tree(script)
    problems = []
    # Names and attributes bound to a path in saved_models, directly or through
    # other such names (`out = args.output_dir`). Settings fields are inputs (a
    # model to read); an output setting is checked by its name below.
    fields = {
        id(node)
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.AnnAssign)
    }
    tainted, changed = set(), True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or id(node) in fields:
                continue
            if node.value is not None and is_path_into(node.value, tainted):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                new = {dotted(t) for t in targets} - {None} - tainted
                tainted |= new
                changed = changed or bool(new)
    for call in calls(tree):
        name = call_name(call)
        arguments = [*call.args, *(k.value for k in call.keywords)]
        if name in WRITERS:
            for argument in arguments:
                if is_path_into(argument, tainted):
                    problems.append(f"{where(script, call)} {name}() writes into saved_models")
        # An output folder that defaults to saved_models/ (an argparse flag).
        flags = [a.value for a in call.args if isinstance(a, ast.Constant)]
        if name == "add_argument" and any("output" in str(flag) for flag in flags):
            default = next((k.value for k in call.keywords if k.arg == "default"), None)
            if default is not None and mentions_saved_models(default):
                problems.append(f"{where(script, call)} an output default in saved_models")
    for node in ast.walk(tree):  # ... or a settings field
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and "output" in node.target.id
            and node.value is not None
            and mentions_saved_models(node.value)
        ):
            problems.append(f"{where(script, node)} an output default in saved_models")
    problems = sorted(set(problems))
    assert not problems, f"{problems}: write saved_models/ only with run.publish(...)"


# ------------------------------------------------------------------ model cards


@pytest.mark.parametrize("card", CARDS)
def test_model_card_sections_and_licence(card):
    with open(os.path.join(ROOT, "saved_models", card), encoding="utf-8") as f:
        lines = f.read().splitlines()
    sections = [line[3:].strip() for line in lines if line.startswith("## ")]
    assert tuple(sections) == CARD_SECTIONS, (
        f"{card}: sections {sections}, expected {list(CARD_SECTIONS)} in this order"
    )
    start = lines.index("## Data")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    licence = [line for line in lines[start:end] if line.startswith("Licence:")]
    assert licence and len(licence[0]) > len("Licence: ") + 3, (
        f"{card}: no `Licence: ...` line in its Data section"
    )
