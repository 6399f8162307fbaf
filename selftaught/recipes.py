"""The project's recipes: the YAML files in the repository's `configs/`, read by the demo,
the build scripts and the tests, so a recipe's values are written in one place (installed
with the package, so `selftaught demo` works from a wheel too).

A recipe states only what differs from the defaults (`TrainConfig`), each line with its
reason; a family shares a block through `base:` (`config.read_recipe`). Code that must
run a recipe differently (the demo's output directory and run length) applies visible
overrides to the dict `load_recipe` returns.
"""

from __future__ import annotations

from pathlib import Path

from .config import read_recipe
from .errors import UserError

RECIPES_DIR = Path(__file__).resolve().parent / "configs"
"""The recipes. In the repository `selftaught/configs` is a symbolic link to `configs/` (one
copy, where the README's commands name them); a wheel carries the files themselves
(package data `configs/*.yaml`)."""


def recipe_path(name: str) -> Path:
    """The file of recipe `name` ("intuitor_tiny.yaml")."""
    if not RECIPES_DIR.is_dir():
        raise UserError(f"recipe {name}: the recipes directory {RECIPES_DIR} is missing (this copy of selftaught "
                        "lost its configs/; reinstall it, or run from a clone with pip install -e .)")
    return RECIPES_DIR / name


def load_recipe(name: str) -> dict:
    """Recipe `name` as a raw config dict, its `base` merged in (validate with `build_config`)."""
    return read_recipe(recipe_path(name))
