"""Choose each math recipe's learning rate on the `dev` split, never on the held-out data
the demo and the model cards report.

    python scripts/demo_dev_sweep.py [--family tiny] [--rates 3e-4 1e-3 3e-3] [--steps 40]
                                     [--methods grpo intuitor ...] [--set key=value ...]

A family is a built-in addition model's recipes, configs/<method>_<family>.yaml: `tiny` (the
demo's, on `tiny-math`) or `tiny_ramble` (on `tiny-ramble`). For each of its methods and each
rate it trains the recipe (40 steps, as the demo) from the family's model on the RL prompts
(`train` split) and measures sampled pass@1 and the share of completions taking the column
procedure on 200 problems of the `dev` split (disjoint from train and held-out by the content
hash of `data.addition`). It prints the table and each method's best rate; each recipe records
its choice with the figures behind it. `--set` overrides a recipe key in every run (and the
model measured as the base, with `model.name_or_path`), e.g. to sweep a model before it ships.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import apply_overrides, build_config, set_all_dotted  # noqa: E402
from selftaught.demo import MATH_SECTIONS, run_overrides  # noqa: E402
from selftaught.recipes import load_recipe, recipe_path  # noqa: E402
from selftaught.tiny.competence import addition_figures  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

MATH_METHODS = tuple(dict.fromkeys(method for section in MATH_SECTIONS for method in section.methods))
"""Every method a math family may have a recipe for (tiny-math's has them all, the random control included)."""


def family_methods(family: str) -> list[str]:
    """The methods with a recipe configs/<method>_<family>.yaml, in `MATH_METHODS` order."""
    return [method for method in MATH_METHODS if recipe_path(f"{method}_{family}.yaml").is_file()]


def family_recipe(family: str, method: str, output_dir: Path, steps: int, overrides: list[str]) -> dict:
    """configs/<method>_<family>.yaml run as the demo runs it (`run_overrides`), then the caller's `--set`s."""
    return apply_overrides(set_all_dotted(load_recipe(f"{method}_{family}.yaml"), run_overrides(output_dir, steps)),
                           overrides)


def dev_figures(model: str, n: int, scratch: Path) -> tuple[dict, dict]:
    """(pass@1, procedure share) on `n` dev problems, with their intervals."""
    record = addition_figures(model, n, "dev", scratch / "diagnose")
    return record["accuracy"]["pass@1"], record["tags"]["procedure"]


def _cell(result: dict) -> str:
    return f"{result['value']:.3f} [{result['low']:.2f}, {result['high']:.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="tiny", help="recipe suffix: configs/<method>_<family>.yaml")
    parser.add_argument("--rates", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--methods", nargs="+", choices=MATH_METHODS, help="default: every recipe of the family")
    parser.add_argument("--n", type=int, default=200, help="dev problems")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key in every run (repeatable)")
    args = parser.parse_args()
    methods = args.methods or family_methods(args.family)
    missing = [m for m in methods if m not in family_methods(args.family)]
    if not methods or missing:
        parser.error(f"family {args.family!r} has no recipe configs/<method>_{args.family}.yaml for "
                     f"{', '.join(missing) or 'any method'}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = build_config(family_recipe(args.family, methods[0], scratch, args.steps, args.overrides))
        base, base_procedure = dev_figures(model.model.name_or_path, args.n, scratch)
        print(f"{args.family}: dev split, {args.n} problems; base {model.model.name_or_path} pass@1 "
              f"{_cell(base)}, procedure share {_cell(base_procedure)}", flush=True)
        best = {}
        for method in methods:
            for rate in args.rates:
                recipe = family_recipe(args.family, method, scratch / f"{method}-{rate}", args.steps, args.overrides)
                recipe.update(learning_rate=rate, progress_bar=False, log_every=0)
                Trainer(build_config(recipe)).train()
                result, procedure = dev_figures(recipe["output_dir"], args.n, scratch)
                print(f"{method:<19} lr {rate:<8g} dev pass@1 {_cell(result)}  procedure share {_cell(procedure)}",
                      flush=True)
                if method not in best or result["value"] > best[method][1]:
                    best[method] = (rate, result["value"])
    for method, (rate, value) in best.items():
        print(f"best {method}: lr {rate:g} (dev pass@1 {value:.3f})")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
