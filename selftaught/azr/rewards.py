"""AZR's rewards (docs/reference.md §3), one function per equation.

    r̄        = (1/n) Σ_j r_solve(y_j)             solve rate of n solver rollouts
    r_propose = 0 if r̄ ∈ {0, 1} else 1 − r̄         learnability
    r_solve   = 1 if correct else 0
    R(y)      = r_role  if y is well formed and right (passable)
              = −0.5    if y is well formed but wrong
              = −1      if y is malformed

For the proposer, "malformed" is an invalid proposal (it does not parse or fails
validation); a valid one is always "passable" in the paper's equations, so its
reward is r_propose ∈ [0, 1). AZR's code (reward_style="code") also maps a
proposer reward of 0, a task the solver always or never solves, to −0.5.
"""

from __future__ import annotations

MALFORMED = -1.0
WRONG = -0.5


def solve_rate(correct: list[bool]) -> float:
    """r̄ from n rollouts (a malformed rollout counts as unsolved)."""
    if not correct:
        raise ValueError("the solve rate needs at least one rollout")
    return sum(bool(c) for c in correct) / len(correct)


def learnability_reward(rate: float) -> float:
    """r_propose: 0 for a task that is always or never solved, else 1 − r̄."""
    return 0.0 if rate <= 0.0 or rate >= 1.0 else 1.0 - rate


def proposer_reward(valid: bool, rate: float | None, style: str = "paper") -> float:
    """Format-aware proposer reward; `rate` is r̄ (unused when the proposal is invalid)."""
    if not valid:
        return MALFORMED
    if rate is None:
        raise ValueError("a valid proposal needs its solve rate")
    r = learnability_reward(rate)
    if style == "code" and r == 0.0:
        return WRONG
    if style not in ("paper", "code"):
        raise ValueError(f"reward style must be 'paper' or 'code', got {style!r}")
    return r


def solver_reward(well_formed: bool, correct: bool) -> float:
    """Format-aware solver reward: 1 right, −0.5 wrong, −1 malformed."""
    if not well_formed:
        return MALFORMED
    return 1.0 if correct else WRONG
