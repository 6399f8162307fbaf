"""Does a method lift a built-in addition model at every training seed? Train it at several and measure each.

    python scripts/seed_outcomes.py [--family tiny_ramble] [--methods intuitor grpo random]
                                    [--seeds 0 1 2] [--n 200] [--output runs/seed_outcomes]

For each method of the family (configs/<method>_<family>.yaml, at its recipe's dev-chosen rate
and 40 steps, as the demo runs it) and each training seed (`--set seed=N`), it trains from the
family's base model and measures held-out pass@1 and the share of completions taking the column
procedure (`tiny.competence.addition_figures`: 200 problems × 8 samples at the recipes' τ, one
evaluation seed for every model, so base and trained models are measured on the same problems).
A method *lifts* the model at a seed when that seed's 95% interval lies wholly above the base's.
It prints and writes (`outcomes.json`, `outcomes.md`) the table: the base, each seed, the mean
gain, how many seeds lifted; Intuitor's mean gain as a share of GRPO's; and the seconds each
run and each measurement took (what a demo run of the family costs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # the package, the scripts

from demo_dev_sweep import family_methods, family_recipe  # noqa: E402
from selftaught.config import build_config  # noqa: E402
from selftaught.tiny.competence import addition_figures  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402


def held_out(model: str, n: int, scratch: Path) -> dict:
    """pass@1 and procedure share on `n` held-out problems, with the seconds it took."""
    started = time.perf_counter()
    record = addition_figures(model, n, "heldout", scratch)
    return {"pass@1": record["accuracy"]["pass@1"], "procedure share": record["tags"]["procedure"],
            "self_certainty auroc": record["sources"]["self_certainty"]["value"],
            "seconds": time.perf_counter() - started}


def lifts(after: dict, base: dict) -> bool:
    """The trained model's interval lies wholly above the base's."""
    return after["low"] > base["high"]


def _cell(result: dict) -> str:
    return f"{result['value']:.3f} [{result['low']:.2f}, {result['high']:.2f}]"


def outcome_table(base: dict, runs: dict[str, dict[int, dict]], seeds: list[int]) -> str:
    lines = [f"| method | {' | '.join(f'seed {s}' for s in seeds)} | mean gain (min – max) | seeds that lift |",
             f"|---|{'---|' * len(seeds)}---|---|",
             f"| base | {' | '.join([_cell(base['pass@1'])] * len(seeds))} | | |"]
    for method, by_seed in runs.items():
        gains = [by_seed[s]["pass@1"]["value"] - base["pass@1"]["value"] for s in seeds]
        lifted = sum(lifts(by_seed[s]["pass@1"], base["pass@1"]) for s in seeds)
        lines.append(f"| {method} | {' | '.join(_cell(by_seed[s]['pass@1']) for s in seeds)} | "
                     f"{np.mean(gains):+.3f} ({min(gains):+.3f} – {max(gains):+.3f}) | {lifted} of {len(seeds)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="tiny_ramble", help="recipe suffix: configs/<method>_<family>.yaml")
    parser.add_argument("--methods", nargs="+", help="default: every recipe of the family")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=200, help="held-out problems")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--output", default="runs/seed_outcomes")
    args = parser.parse_args()
    methods = args.methods or family_methods(args.family)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = build_config(family_recipe(args.family, methods[0], scratch, args.steps, [])).model.name_or_path
        base = held_out(model, args.n, scratch / "base")
        print(f"{args.family}: base {model} held-out pass@1 {_cell(base['pass@1'])}, procedure share "
              f"{_cell(base['procedure share'])} ({base['seconds']:.0f} s)", flush=True)
        for method in methods:
            runs[method] = {}
            for seed in args.seeds:
                recipe = family_recipe(args.family, method, scratch / f"{method}-{seed}", args.steps,
                                       [f"seed={seed}"])
                recipe.update(progress_bar=False, log_every=0)
                trained = time.perf_counter()
                history = Trainer(build_config(recipe)).train()
                train_seconds = time.perf_counter() - trained
                after = held_out(recipe["output_dir"], args.n, scratch / f"{method}-{seed}" / "diagnose")
                reward = [row["reward/mean"] for row in history]
                runs[method][seed] = {**after, "train_seconds": train_seconds, "learning_rate": recipe["learning_rate"],
                                      "reward first/last 10": [float(np.mean(reward[:10])), float(np.mean(reward[-10:]))]}
                print(f"{method:<10} seed {seed}: held-out pass@1 {_cell(after['pass@1'])}, procedure share "
                      f"{_cell(after['procedure share'])} (train {train_seconds:.0f} s, measure "
                      f"{after['seconds']:.0f} s)", flush=True)
                (output / "outcomes.json").write_text(json.dumps({"family": args.family, "model": model,
                                                                 "n": args.n, "base": base, "runs": runs}, indent=2))
    table = outcome_table(base, runs, args.seeds)
    print(table)
    if "intuitor" in runs and "grpo" in runs:
        gain = {m: np.mean([runs[m][s]["pass@1"]["value"] for s in args.seeds]) - base["pass@1"]["value"]
                for m in ("intuitor", "grpo")}
        print(f"Intuitor's mean gain is {gain['intuitor'] / gain['grpo']:.2f} of GRPO's "
              f"({gain['intuitor']:+.3f} / {gain['grpo']:+.3f})")
    (output / "outcomes.md").write_text(table + "\n")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
