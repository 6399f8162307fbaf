"""Choose the demo's learning rate for every math method on the `dev` split, never on
the held-out data the demo reports.

    python scripts/demo_dev_sweep.py [--rates 3e-4 1e-3 3e-3] [--steps 40] [--methods grpo intuitor ...]

For each method and rate it trains the demo's recipe (`selftaught.demo.math_recipe`)
from `tiny-math` on the RL prompts (`train` split) and measures sampled pass@1 on
200 problems of the `dev` split (disjoint from train and held-out by the content
hash of `data.addition`). It prints the table and each method's best rate; each
recipe, configs/<method>_tiny.yaml, records its choice with the figures behind it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import build_config  # noqa: E402
from selftaught.demo import MATH_MODEL, METHOD_REWARDS, math_recipe  # noqa: E402
from selftaught.tiny.competence import addition_figures  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402


def dev_pass_at_1(model: str, n: int, scratch: Path) -> dict:
    return addition_figures(model, n, "dev", scratch / "diagnose")["accuracy"]["pass@1"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--methods", nargs="+", default=list(METHOD_REWARDS), choices=list(METHOD_REWARDS))
    parser.add_argument("--n", type=int, default=200, help="dev problems")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        base = dev_pass_at_1(MATH_MODEL, args.n, scratch)
        print(f"dev split: {args.n} problems; base pass@1 {base['value']:.3f}", flush=True)
        best = {}
        for method in args.methods:
            for rate in args.rates:
                recipe = math_recipe(method, scratch / f"{method}-{rate}", args.steps)
                recipe.update(learning_rate=rate, progress_bar=False, log_every=0)
                Trainer(build_config(recipe)).train()
                result = dev_pass_at_1(recipe["output_dir"], args.n, scratch)
                print(f"{method:<19} lr {rate:<8g} dev pass@1 {result['value']:.3f} "
                      f"[{result['low']:.2f}, {result['high']:.2f}]", flush=True)
                if method not in best or result["value"] > best[method][1]:
                    best[method] = (rate, result["value"])
    for method, (rate, value) in best.items():
        print(f"best {method}: lr {rate:g} (dev pass@1 {value:.3f})")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
