"""Imports a recipe script (recipes/ is not a package) as a module; its flags; its model card."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CARD_SECTIONS = ("Intended use", "Limitations", "Data", "Metrics", "Training")


def load_recipe(script):
    """The module of `recipes/<script>`, e.g. `load_recipe("imdb.py")`."""
    path = os.path.join(ROOT, "recipes", script)
    spec = importlib.util.spec_from_file_location(f"recipe_{script[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def set_flags(**values):
    """The `--set KEY=VALUE` arguments of a recipe's command line, one pair per setting."""
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def assert_model_card(path):
    """Asserts that the card at `path` has kzoo's five sections in order and a licence; returns it."""
    with open(path, encoding="utf-8") as f:
        card = f.read()
    sections = [line[3:] for line in card.splitlines() if line.startswith("## ")]
    assert sections == list(CARD_SECTIONS), f"{path}: sections {sections}"
    assert "\nLicence: " in card, f"{path}: no 'Licence: ' line"
    return card
