"""The per-token objectives L_t of the policy loss, one module each, with its paper's formula in
its docstring: `clipped.py` (PPO / DAPO / INTELLECT-2), `cispo.py` (MiniMax-M1), `sapo.py`,
`vespo.py`. `base.py` is the interface: an objective is a function of `Inputs` returning `Terms`,
wrapped in an `Objective` that says whether it is per-token and whether it folds the importance
weights.

Why functions referenced straight from the registry, and no torch import: a loss type is then
one line of `variants.LOSS_TYPES` naming its objective and its aggregation, with no second table
of names to keep in step, and the config, which imports the registry to validate `loss_type`,
still imports no torch (a config error comes before any heavy import). Adding a loss type: a new
module here if its objective is new (formula in the docstring, an `Objective`), and one line in
`variants.LOSS_TYPES` (`tests/test_loss_registry.py` does just that).
"""

from __future__ import annotations

from .base import Inputs, Objective, Terms, per_token_advantages
from .cispo import CISPO
from .clipped import CLIPPED
from .sapo import SAPO
from .vespo import VESPO

__all__ = ["CISPO", "CLIPPED", "Inputs", "Objective", "SAPO", "Terms", "VESPO", "per_token_advantages"]
