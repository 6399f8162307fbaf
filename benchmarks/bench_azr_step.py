"""Where a full Absolute Zero step spends its time, on the tiny CPU recipe.

    python benchmarks/bench_azr_step.py [--steps 4] [--config configs/azr_tiny.yaml]

Runs the real trainer on `configs/azr_tiny.yaml` (the built-in `tiny` model) and
splits each step's wall time into: generation (proposals, learnability rollouts,
solver answers), executor (proposal validation and answer checking), scoring
(the no-grad log-prob/self-certainty pass) and update (the rest: the optimizer
step, rewards, advantages, bookkeeping). The first step also runs the seeding
phase; it is reported but left out of the shares. Prints one RESULT line per
share, and `RESULT azr_executor_share ratio=<executor/step>` for the target
(< 10% of a step).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selftaught.config import load_config  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

# Learnability rollouts and the solve batch both go through AZREpisodes.solve, so
# solve_generate_s / check_s cover both.
GENERATION = ("azr/time/propose_generate_s", "azr/time/solve_generate_s")
EXECUTOR = ("azr/time/validate_s", "azr/time/check_s")


def _sum(row: dict, keys) -> float:
    return sum(float(row.get(k, 0.0)) for k in keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "azr_tiny.yaml"))
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as output:
        config = load_config(args.config, [f"max_steps={args.steps}", f"output_dir={output}",
                                           "progress_bar=false", f"save_steps={args.steps}"])
        trainer = Trainer(config)
        history = trainer.train()
    timed_keys = sorted(k for k in history[0] if k.startswith("azr/time/"))
    print("per-step timers recorded:", ", ".join(timed_keys))
    steady = history[1:] or history
    total = sum(r["time/step_s"] for r in steady)
    generation = sum(_sum(r, GENERATION) for r in steady)
    executor = sum(_sum(r, EXECUTOR) for r in steady)
    scoring = sum(float(r["time/score_s"]) for r in steady)
    # time/score_s spans the scoring pass and rewards/advantages; the collect phase is time/generate_s.
    collect = sum(float(r["time/generate_s"]) for r in steady)
    other_collect = collect - generation - executor
    update = total - collect - scoring
    print(f"seeding step: {history[0]['time/step_s']:.2f}s (seed phase {history[0].get('azr/time/seed_s', 0):.2f}s); "
          f"steady steps: {len(steady)}, mean {total / len(steady):.2f}s")
    for name, seconds in [("generation", generation), ("executor", executor), ("other_collect", other_collect),
                          ("scoring", scoring), ("update", update)]:
        print(f"RESULT azr_share_{name} ratio={seconds / total:.3f} seconds_per_step={seconds / len(steady):.3f}")
    print(f"RESULT azr_executor_share ratio={executor / total:.3f} target<0.10 met={executor / total < 0.10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
