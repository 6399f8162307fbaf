"""User reward functions, with TRL's reward-function signature.

    def my_reward(prompts, completions, completion_ids, **columns) -> list[float | None]: ...

`prompts` / `completions`: the N prompt texts (as the model saw them) and sampled
texts; `completion_ids`: N lists of token ids (the real tokens, EOS included);
`columns`: every data-set column as a keyword (N values each, e.g. `answer`).
It returns N rewards; None means "no reward for this row": the row is left out of
its group's mean and std (advantage 0 from this source).

Named in a config as `package.module:function` or `path/to/file.py:function`;
passed to the Python API as the callable itself (`Trainer(config, rewards=[fn])`).
A function that raises, returns the wrong number of values or a non-finite one
stops training with one line naming it, the step and the row (exit 2), before the
step updates anything, so the last checkpoint is the newest complete state.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import numbers
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import UserError
from .base import RewardSource


class RewardFunctionError(UserError):
    """A user reward function misbehaved; the trainer adds the step (`describe`)."""

    def __init__(self, name: str, problem: str, where: str):
        super().__init__(f"reward {name}: {problem} ({where})")
        self.name, self.problem, self.where = name, problem, where

    def describe(self, step: int) -> str:
        return f"reward {self.name}: {self.problem} at step {step}, {self.where}"


def split_user_function(spec: str) -> tuple[str, str]:
    """(module or file, function name) of `package.module:function` / `path/to/file.py:function`;
    UserError naming the two accepted forms otherwise."""
    target, _, attribute = spec.rpartition(":")
    if not target or not attribute.isidentifier():
        raise UserError(f"reward {spec!r}: a user function is 'package.module:function' or "
                        "'path/to/file.py:function'")
    return target, attribute


def load_reward_function(spec: str) -> Callable:
    """Import `package.module:function` or `path/to/file.py:function`; UserError when it cannot be."""
    target, attribute = split_user_function(spec)
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise UserError(f"reward {spec}: file not found: {path}")
        module_name = f"selftaught_user_reward_{abs(hash(str(path.resolve())))}"
        try:
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            loader_spec.loader.exec_module(module)
        except Exception as error:  # the user's file: any failure is theirs to fix
            sys.modules.pop(module_name, None)
            raise UserError(f"reward {spec}: importing {path} failed: {type(error).__name__}: {error}"
                            .splitlines()[0]) from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as error:
            raise UserError(f"reward {spec}: cannot import module {target!r}: {type(error).__name__}: {error}"
                            .splitlines()[0]) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise UserError(f"reward {spec}: {target} has no function {attribute!r}")
    return function


def _value(value, row: int, name: str, rows: str) -> float:
    if value is None:
        return math.nan  # no reward: masked out of the group normalisation
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RewardFunctionError(name, f"returned {type(value).__name__} {value!r}, not a float or None",
                                  f"row {row} {rows}")
    value = float(value)
    if not math.isfinite(value):
        raise RewardFunctionError(name, f"returned a non-finite value {value}", f"row {row} {rows}")
    return value


class UserReward(RewardSource):
    """A TRL-signature function as a reward source; NaN marks its None rows."""

    def __init__(self, function: Callable, name: str | None = None):
        self.function = function
        self.name = name or getattr(function, "__name__", None) or type(function).__name__

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        if rollout is None:
            raise RuntimeError("a user reward function needs the rollout (prompts and completion ids)")
        n = len(completions)
        rows = f"of the step's {n} rows"
        ids = [row[mask].tolist() for row, mask in zip(rollout.completion_ids, rollout.completion_mask.bool())]
        try:
            values = self.function(prompts=list(rollout.prompts), completions=list(completions),
                                   completion_ids=ids, **extras)
        except Exception as error:
            problem = f"raised {type(error).__name__}: {error}".splitlines()[0]
            raise RewardFunctionError(self.name, problem, f"rows 0-{n - 1} {rows}") from None
        if isinstance(values, torch.Tensor):
            values = values.tolist()
        try:
            values = list(values)
        except TypeError:
            raise RewardFunctionError(self.name, f"returned {type(values).__name__}, not a list of floats",
                                      f"rows 0-{n - 1} {rows}") from None
        if len(values) != n:
            raise RewardFunctionError(self.name, f"returned {len(values)} values for {n} completions",
                                      f"rows 0-{n - 1} {rows}")
        return torch.tensor([_value(v, i, self.name, rows) for i, v in enumerate(values)], dtype=torch.float32)
