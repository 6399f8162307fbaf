"""Which base-model world lets self-certainty tell right answers from wrong ones? Build and measure each design.

    python scripts/intuitor_designs.py [--designs ramble noise ...] [--steps 2500] [--n 100]
                                       [--output runs/intuitor_designs] [--reuse]

Every design is tiny-math's world (3-digit additions, the column procedure beside answers
that skip it) with one change: how the answers that skip the procedure are written
(`selftaught.tiny.failure_modes`, each a failure mode of real base models). For each it
builds the corpus, a tokenizer and a tiny-math-sized model with the same step budget
(`build_tiny_ramble_model.build_model`; the shipped `tiny-ramble` is the `ramble` row), then
measures on the `dev` split (never held-out: the design is chosen here) with
`scripts/self_certainty_anatomy.py`: sampled pass@1, the share of completions taking the
procedure, and the within-group AUROC of self-certainty with its head (top-10) and tail
parts, of top-k self-certainty (not the paper's), of negative entropy and of mean log p. It
prints the table and writes `designs.json` and `designs.md` into `--output`; each design's
model stays in `--output/<design>/`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # the package, the scripts

from build_tiny_ramble_model import HEAD_K, TEMPERATURE, build_model  # noqa: E402
from self_certainty_anatomy import anatomy, print_anatomy  # noqa: E402
from selftaught.data import addition  # noqa: E402
from selftaught.diagnose import ratio_with_interval  # noqa: E402
from selftaught.tiny.failure_modes import FAILURE_MODES  # noqa: E402
from selftaught.models import load_model  # noqa: E402

def _cell(result: dict) -> str:
    return "—" if result["value"] is None else f"{result['value']:.2f} [{result['low']:.2f}, {result['high']:.2f}]"


def design_row(name: str, result: dict, samples: int) -> dict:
    """The table's figures for one design: pass@1 and procedure share with bootstrap intervals
    over problems, the AUROCs, and the mean self-certainty of each kind of completion."""
    right = result["correct"].reshape(-1, samples)
    procedure = result["procedure"].reshape(-1, samples)
    ones = np.ones(len(right))
    return {"design": name, "models": FAILURE_MODES[name].models,
            "pass@1": ratio_with_interval(right.sum(1), ones * samples),
            "procedure share": ratio_with_interval(procedure.sum(1), ones * samples),
            "auroc": result["auroc"], "groups": result["groups"]}


def markdown_table(rows: list[dict]) -> str:
    lines = ["| design (failure mode) | dev pass@1 | procedure share | AUROC self-certainty | its top-10 part | "
             "its tail part | AUROC top-k SC (not the paper's) | AUROC −entropy | AUROC mean log p | "
             "SC right / wrong |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        a, g = row["auroc"], row["groups"]
        right = [s for k, s in g.items() if k.endswith("right")]
        wrong = [s for k, s in g.items() if k.endswith("wrong")]

        def mean_sc(kinds):
            n = sum(s["n"] for s in kinds)
            return sum(s["n"] * s["sc"] for s in kinds) / n if n else float("nan")

        lines.append(f"| {row['design']} ({row['models']}) | {_cell(row['pass@1'])} | {_cell(row['procedure share'])} | "
                     f"{_cell(a['sc'])} | {_cell(a['sc_head'])} | {_cell(a['sc_tail'])} | {_cell(a['sc_topk'])} | "
                     f"{_cell(a['entropy'])} | "
                     f"{_cell(a['logprob'])} | {mean_sc(right):.2f} / {mean_sc(wrong):.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", nargs="+", default=list(FAILURE_MODES), choices=list(FAILURE_MODES))
    parser.add_argument("--output", default="runs/intuitor_designs")
    parser.add_argument("--documents", type=int, default=60_000, help="plain-context documents per design")
    parser.add_argument("--procedure-share", type=float, default=0.3)
    parser.add_argument("--wrong-share", type=float, default=0.5, help="of the guesses")
    parser.add_argument("--columns-share", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=2000, help="pretraining steps per design (the same for all)")
    parser.add_argument("--n", type=int, default=100, help="dev problems measured")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--head-k", type=int, default=HEAD_K)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="measure models already built in --output")
    args = parser.parse_args()
    output = Path(args.output)
    started = time.perf_counter()
    problems = addition.generate(args.n, "dev", seed=args.seed)
    rows = []
    for name in args.designs:
        directory = output / name
        if not (args.reuse and (directory / "config.json").is_file()):
            stats = build_model(name, directory, documents=args.documents, procedure_share=args.procedure_share,
                                wrong_share=args.wrong_share, columns_share=args.columns_share, steps=args.steps,
                                seed=args.seed)
            (directory / "build_stats.json").write_text(json.dumps(stats, indent=2))
        model, tokenizer = load_model(str(directory))
        model.eval()
        torch.manual_seed(args.seed)
        result = anatomy(model, tokenizer, problems, args.samples, TEMPERATURE, args.head_k)
        print_anatomy(name, result, args.n, args.samples, TEMPERATURE)
        rows.append(design_row(name, result, args.samples))
        (directory / "anatomy.json").write_text(json.dumps({k: rows[-1][k] for k in ("pass@1", "procedure share",
                                                                                      "auroc", "groups")}, indent=2))
    table = markdown_table(rows)
    print(table)
    output.mkdir(parents=True, exist_ok=True)
    (output / "designs.json").write_text(json.dumps({"args": vars(args), "designs": rows}, indent=2))
    (output / "designs.md").write_text(table + "\n")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
