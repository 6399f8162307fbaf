"""Train the tiny-math GRPO variants and measure each with the demo's held-out measurement.

    python scripts/compare_grpo_variants.py --split dev --rates 1e-4 3e-4 6e-4   # choose each recipe's rate
    python scripts/compare_grpo_variants.py                                      # held-out: README "GSPO and DAPO"

Runs configs/grpo_tiny.yaml (plain GRPO, the baseline), gspo_tiny.yaml and dapo_tiny.yaml, plus a
control that is neither: GRPO with the variants' two updates per rollout (`num_iterations: 2`,
80 steps), which tells what GSPO's sequence-level clip and DAPO's clip-higher and truncation
masking add from what the second update alone does. Each trained model (and the base) is
measured by `selftaught.tiny.competence.addition_figures` (200 problems × 8 samples at τ = 1:
pass@1 with a 95% bootstrap interval over problems). Rates are chosen on the `dev` split only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import apply_overrides, build_config, set_all_dotted  # noqa: E402
from selftaught.recipes import load_recipe  # noqa: E402
from selftaught.tiny.competence import addition_figures, tiny_math_config  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

RUNS = {
    "grpo": ("grpo_tiny.yaml", {}),
    # its rate, 3e-4, is grpo_tiny.yaml's and the best on dev: 0.777 / 0.892 / 0.695 at 1e-4 / 3e-4 / 6e-4
    "grpo, 2 updates per rollout (control)": ("grpo_tiny.yaml", {"num_iterations": 2, "max_steps": 80,
                                                                 "save_steps": 80}),
    "gspo": ("gspo_tiny.yaml", {}),
    "dapo": ("dapo_tiny.yaml", {}),
}
"""Label → (recipe, visible overrides)."""


def measure(model: str, n: int, split: str, scratch: Path) -> dict:
    record = addition_figures(model, n, split, scratch / "diagnose")
    return {"pass@1": record["accuracy"]["pass@1"], "procedure": record["tags"]["procedure"]}


def train(recipe: str, overrides: dict, output_dir: Path) -> dict:
    raw = set_all_dotted(load_recipe(recipe), {**overrides, "output_dir": str(output_dir), "progress_bar": False,
                                               "log_every": 0})
    started = time.perf_counter()
    history = Trainer(build_config(raw)).train()
    return {"learning_rate": raw["learning_rate"], "steps": len(history),
            "s_per_step": (time.perf_counter() - started) / len(history),
            "truncated_frac": sum(r["completion_truncated/frac"] for r in history) / len(history),
            "clip_fraction_mean": sum(r.get("clip_fraction", 0.0) for r in history) / len(history),
            "reward_first10": sum(r["reward/mean"] for r in history[:10]) / 10,
            "reward_last10": sum(r["reward/mean"] for r in history[-10:]) / 10}


def line(label: str, result: dict) -> str:
    p, share = result["pass@1"], result["procedure"]
    extra = "" if "steps" not in result else (
        f"  lr {result['learning_rate']:g}, {result['steps']} steps, {result['s_per_step']:.2f} s/step, "
        f"truncated {result['truncated_frac']:.3f}, clipped {result['clip_fraction_mean']:.3f}")
    return (f"{label:<40} pass@1 {p['value']:.3f} [{p['low']:.3f}, {p['high']:.3f}]  procedure "
            f"{share['value']:.3f}{extra}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="heldout", choices=["dev", "heldout"])
    parser.add_argument("--rates", type=float, nargs="*", default=[], help="sweep these learning rates (dev)")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--n", type=int, default=200, help="problems measured")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key in every run (an ablation), repeatable")
    parser.add_argument("--skip-base", action="store_true", help="do not measure the base model")
    parser.add_argument("--output", default=None, help="write every figure here as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if not args.skip_base:
            results["base"] = measure(tiny_math_config().model.name_or_path, args.n, args.split, scratch)
            print(line("base (tiny-math)", results["base"]), flush=True)
        ablation = apply_overrides({}, args.set)
        for label in args.runs:
            recipe, overrides = RUNS[label]
            for rate in args.rates or [None]:
                name = " ".join([label, *([f"@ {rate:g}"] if rate else []), *args.set])
                output = scratch / f"run{len(results)}"
                trained = train(recipe, {**overrides, **ablation, **({"learning_rate": rate} if rate else {})}, output)
                results[name] = {**measure(str(output), args.n, args.split, scratch), **trained}
                print(line(name, results[name]), flush=True)
    print(f"{args.split} split, {args.n} problems; {time.perf_counter() - started:.0f} s")
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
