"""Imports a recipe script (recipes/ is not a package) as a module."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_recipe(script):
    """The module of `recipes/<script>`, e.g. `load_recipe("imdb.py")`."""
    path = os.path.join(ROOT, "recipes", script)
    spec = importlib.util.spec_from_file_location(f"recipe_{script[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
