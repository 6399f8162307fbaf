"""Choose the demo's learning rate for Intuitor and GRPO on a development set,
never on the held-out data the demo reports.

    python scripts/demo_dev_sweep.py [--rates 1e-5 3e-5 1e-4] [--steps 40]

For each method and rate it trains the demo's recipe (`selftaught.demo.intuitor_recipe`)
from the built-in model and measures greedy accuracy on up to 200 *train-split*
arithmetic problems that the recipe does not train on (a different seed, minus any problem of
the training set). It prints the table and each method's best rate; the demo's
`DEMO_LEARNING_RATES` records the choice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import build_config  # noqa: E402
from selftaught.data import arithmetic  # noqa: E402
from selftaught.demo import intuitor_recipe  # noqa: E402
from selftaught.models import load_model  # noqa: E402
from selftaught.models.competence import arithmetic_accuracy  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

DEV_SEED = 1


def dev_problems(recipe: dict, n: int = 200) -> list:
    trained = {p.prompt for p in arithmetic.generate(recipe["data"]["num_examples"], "train", seed=recipe["seed"])}
    candidates = arithmetic.generate(4 * n, "train", seed=DEV_SEED)
    return [p for p in candidates if p.prompt not in trained][:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-5, 3e-5, 1e-4])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        recipe = intuitor_recipe("intuitor", Path(scratch) / "base", args.steps)
        problems = dev_problems(recipe)
        model, tokenizer = load_model(recipe["model"]["name_or_path"])
        base_accuracy = arithmetic_accuracy(model, tokenizer, len(problems), problems=problems)
        print(f"dev set: {len(problems)} train-split problems not trained on; base {base_accuracy.value:.3f}")
        best = {}
        for method in ("intuitor", "grpo"):
            for rate in args.rates:
                recipe = intuitor_recipe(method, Path(scratch) / f"{method}-{rate}", args.steps)
                recipe["learning_rate"] = rate
                trainer = Trainer(build_config(recipe))
                trainer.train()
                model = trainer.accelerator.unwrap_model(trainer.model)
                accuracy = arithmetic_accuracy(model, trainer.tokenizer, len(problems), problems=problems)
                low, high = accuracy.wilson_interval()
                print(f"{method:<9} lr {rate:<8g} dev accuracy {accuracy.value:.3f} [{low:.2f}, {high:.2f}]",
                      flush=True)
                if method not in best or accuracy.value > best[method][1]:
                    best[method] = (rate, accuracy.value)
    for method, (rate, value) in best.items():
        print(f"best {method}: lr {rate:g} (dev {value:.3f})")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
