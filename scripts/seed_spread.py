"""Every method's held-out gain at several training seeds, next to diagnose's verdict on the base model.

    python scripts/seed_spread.py [--family tiny] [--methods grpo intuitor ...] [--seeds 0 1 2]
                                  [--n 200] [--eval-seed 1] [--output runs/seed_spread]

For one built-in addition model (the recipes configs/<method>_<family>.yaml, e.g. `tiny` for
tiny-math's), it measures the base model once with `selftaught diagnose` (held-out additions × 8
samples: pass@1 and every label-free reward's within-group AUROC and verdict), then trains every
method at every training seed (the recipe with `seed` set, nothing else changed) and measures each
copy the same way. The evaluation seed is one and the same for every copy (and differs from the
demo's, 0), so the spread is the training seeds'.

It writes `<output>/<family>.json` (every figure, every run's early training metrics) and prints a
markdown table: per method, diagnose's verdict on the base model, the gain at each seed with its
interval, whether the method lifts the model at EVERY seed (gain > 0 with intervals disjoint from
the base's), and whether the verdict's sign matched the outcome. The verdict thresholds are
diagnose's (HELPS_AT, HURTS_AT), fixed before these runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import build_config, set_all_dotted  # noqa: E402
from selftaught.demo import MATH_SECTIONS, method_reward, run_overrides  # noqa: E402
from selftaught.demo_report import verdict as interval_verdict  # noqa: E402
from selftaught.diagnose import HELPS_AT, HURTS_AT  # noqa: E402
from selftaught.recipes import load_recipe  # noqa: E402
from selftaught.tiny.competence import addition_figures  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

EARLY_STEPS = 10
EARLY_METRICS = ("answer_entropy/mean", "answer_agreement/mean", "tags/procedure/share", "completion_length/mean",
                 "self_certainty/mean", "reward/std")
"""Training metrics averaged over the first steps: candidates for an early warning of a seed that fails."""


def outcome(base: dict, after: dict) -> str:
    """'lifts' / 'hurts' when the intervals are disjoint, else 'no change'."""
    return {"better": "lifts", "worse": "hurts"}.get(interval_verdict(base, after), "no change")


def sign_matches(verdict: str, outcomes: list[str]) -> bool | None:
    """Did diagnose's verdict predict the outcome at every seed? None when it made no prediction."""
    expected = {"likely to help": "lifts", "likely to hurt": "hurts", "neutral": "no change"}.get(verdict)
    return None if expected is None else all(o == expected for o in outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="tiny", help="recipes configs/<method>_<family>.yaml")
    parser.add_argument("--methods", nargs="+", default=None, help="default: the demo's methods for the family")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=200, help="held-out additions")
    parser.add_argument("--eval-seed", type=int, default=1)
    parser.add_argument("--procedure", default=None, help="regex of the procedure's opening (default: the section's)")
    parser.add_argument("--output", default="runs/seed_spread")
    args = parser.parse_args()
    section = next((s for s in MATH_SECTIONS if s.family == args.family), None)
    methods = args.methods or (list(section.methods) if section else None)
    if not methods:
        parser.error(f"--methods is needed for family {args.family!r}")
    procedure = section.procedure if section else None
    model = load_recipe(f"{methods[0]}_{args.family}.yaml")["model"]["name_or_path"]
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        kwargs = {"seed": args.eval_seed} | ({"procedure": procedure} if procedure else {})
        base = addition_figures(model, args.n, "heldout", scratch, **kwargs)
    record = {"family": args.family, "model": model, "n": args.n, "eval_seed": args.eval_seed, "seeds": args.seeds,
              "thresholds": {"helps_at": HELPS_AT, "hurts_at": HURTS_AT},
              "base": base["accuracy"]["pass@1"], "auroc": {k: {f: v[f] for f in ("value", "low", "high", "verdict")}
                                                            for k, v in base["sources"].items()}, "runs": {}}
    print(f"{model}: base held-out pass@1 {base['accuracy']['pass@1']['value']:.3f}", flush=True)
    for method in methods:
        for seed in args.seeds:
            run_dir = output / args.family / f"{method}-seed{seed}"
            recipe = load_recipe(f"{method}_{args.family}.yaml")
            steps = build_config(recipe).max_steps  # the recipe's own run length
            recipe = set_all_dotted(recipe, {**run_overrides(run_dir, steps), "seed": seed, "progress_bar": False,
                                             "log_every": 0, "report_to": "none"})
            history = Trainer(build_config(recipe)).train()
            after = addition_figures(str(run_dir), args.n, "heldout", run_dir / "diagnose", **kwargs)
            early = {key: sum(r[key] for r in history[:EARLY_STEPS] if key in r) / EARLY_STEPS
                     for key in EARLY_METRICS if any(key in r for r in history[:EARLY_STEPS])}
            record["runs"][f"{method}/{seed}"] = {"method": method, "seed": seed, "reward": method_reward(recipe),
                                                   "pass@1": after["accuracy"]["pass@1"], "early": early,
                                                   "outcome": outcome(record["base"], after["accuracy"]["pass@1"])}
            print(f"{method:<20} seed {seed}: pass@1 {after['accuracy']['pass@1']['value']:.3f} "
                  f"({record['runs'][f'{method}/{seed}']['outcome']})", flush=True)
            (output / f"{args.family}.json").write_text(json.dumps(record, indent=2))
    print(table(record))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


def table(record: dict) -> str:
    base = record["base"]
    lines = [f"`{record['model']}`: base held-out pass@1 {base['value']:.3f} [{base['low']:.2f}, {base['high']:.2f}]; "
             f"{record['n']} problems × 8, evaluation seed {record['eval_seed']}", "",
             "| method | diagnose verdict (AUROC) | " + " | ".join(f"seed {s}" for s in record["seeds"])
             + " | mean gain | lifts at every seed | verdict matched |",
             "|---|---|" + "---|" * (len(record["seeds"]) + 3)]
    methods = list(dict.fromkeys(run["method"] for run in record["runs"].values()))
    for method in methods:
        runs = [record["runs"][f"{method}/{s}"] for s in record["seeds"] if f"{method}/{s}" in record["runs"]]
        reward = runs[0]["reward"]
        auroc = record["auroc"].get(reward)
        verdict = auroc["verdict"] if auroc else "(gold labels)"
        cells = [f"{r['pass@1']['value'] - base['value']:+.3f} ({r['outcome']})" for r in runs]
        mean = sum(r["pass@1"]["value"] - base["value"] for r in runs) / len(runs)
        every = sum(r["outcome"] == "lifts" for r in runs)
        matched = sign_matches(verdict, [r["outcome"] for r in runs]) if auroc else None
        lines.append(f"| {method} | {verdict}" + (f" ({auroc['value']:.2f})" if auroc and auroc["value"] is not None
                                                  else "") + " | " + " | ".join(cells)
                     + f" | {mean:+.3f} | {every} of {len(runs)} | {'—' if matched is None else matched} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
