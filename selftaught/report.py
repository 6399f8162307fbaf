"""The demo's report: `report.md` (the table, the targets met or missed, what changed,
the curves' first and last values) and `report.png` (training curves and
before/after figures with 95% intervals), both drawn from `summary.json` alone.

A change is called a change only when the two 95% intervals do not overlap (a
conservative reading: with a few hundred held-out problems, smaller differences are
noise); otherwise the report says "no measurable change". A figure is a dict with
`value`, `low`, `high` (the interval) and `n`.
"""

from __future__ import annotations

from pathlib import Path

from .azr.tasks import TASK_TYPES

CURVES = {
    "reward/mean": "reward (the method's own)",
    "rewards/math_answer/mean": "gold-answer accuracy on training batches",
    "self_certainty/mean": "self-certainty (mean KL(U‖p), nats)",
    "completion_length/mean": "completion length (tokens)",
}
PLOTTED_CURVES = {
    # Self-certainty and log-prob rewards are in nats; on one axis with the 0–1 rewards they
    # would flatten them, so the reward panel shows the runs whose reward is a share.
    "reward/mean": ("reward (0–1 rewards: GRPO, votes, AZR)", {"intuitor", "token_entropy", "trajectory_logprob"}),
    "rewards/math_answer/mean": ("gold-answer accuracy on training batches (logged, not trained on)", set()),
    "self_certainty/mean": ("self-certainty, mean KL(U‖p) in nats (Intuitor's reward)", set()),
    "completion_length/mean": ("completion length, tokens (the procedure is longer)", set()),
}
COLORS = {"base": "C0", "intuitor": "C1", "grpo": "C2", "azr": "C3", "majority_vote": "C4",
          "answer_agreement": "C5", "token_entropy": "C6", "trajectory_logprob": "C7"}
"""One colour per model in every panel."""
TARGETS = {"grpo": 0.15, "label_free": 0.10, "intuitor": 0.10}
"""The demo's targets: held-out sampled pass@1 gain, with intervals disjoint from the base's."""


def verdict(before: dict, after: dict) -> str:
    """'better' / 'worse' when the 95% intervals are disjoint, else 'no measurable change'."""
    if after["low"] > before["high"]:
        return "better"
    if after["high"] < before["low"]:
        return "worse"
    return "no measurable change"


def figure_cell(figure: dict | None, separator: str = ", ") -> str:
    """A figure as `value [low, high]`, or — when there is none."""
    if not figure or figure.get("value") is None:
        return "—"
    return f"{figure['value']:.3f} [{figure['low']:.2f}{separator}{figure['high']:.2f}]"


def gain(summary: dict, run: str, column: str = "pass@1") -> tuple[float, bool]:
    """(after − base, whether the two intervals are disjoint) for one run's figure."""
    before, after = summary["base"][column], summary["runs"][run]["after"][column]
    return after["value"] - before["value"], verdict(before, after) != "no measurable change"


def target_lines(summary: dict) -> list[str]:
    """Each target of the demo, met or missed, with the figures it rests on."""
    runs = summary["runs"]

    def judged(run: str, needed: float) -> tuple[bool, str]:
        delta, disjoint = gain(summary, run)
        met = delta >= needed and disjoint
        return met, f"{run} {delta:+.3f}{'' if disjoint else ' (intervals overlap)'}"

    lines = []
    if "grpo" in runs:
        met, text = judged("grpo", TARGETS["grpo"])
        lines.append(f"- GRPO (gold answers) ≥ +{TARGETS['grpo']:.2f} pass@1: {'met' if met else 'MISSED'} — {text}")
    label_free = [name for name in runs if name not in ("grpo", "azr", "intuitor")]
    results = [judged(name, TARGETS["label_free"]) for name in label_free]
    count = sum(met for met, _ in results)
    lines.append(f"- at least two label-free methods ≥ +{TARGETS['label_free']:.2f} pass@1: "
                 f"{'met' if count >= 2 else 'MISSED'} ({count} of {len(results)}) — "
                 + "; ".join(text for _, text in results))
    if "intuitor" in runs:
        met, text = judged("intuitor", TARGETS["intuitor"])
        auroc = summary.get("auroc", {}).get("self_certainty", {}).get("value")
        why = "" if met or auroc is None else (
            f"; the base model's self-certainty ranks its right completions above its wrong ones with "
            f"within-group AUROC {auroc:.2f} (0.5 = chance), so rewarding it teaches the wrong habit "
            "(README, demo section)")
        lines.append(f"- Intuitor ≥ +{TARGETS['intuitor']:.2f} pass@1: {'met' if met else 'MISSED'} — {text}{why}")
    if "azr" in runs:
        gains = [f"{column} {gain(summary, 'azr', column)[0]:+.3f}"
                 + ("" if gain(summary, "azr", column)[1] else " (intervals overlap)")
                 for column in runs["azr"]["after"] if column in summary["base"]]
        better = any(verdict(summary["base"][c], runs["azr"]["after"][c]) == "better"
                     for c in runs["azr"]["after"] if c in summary["base"])
        lines.append(f"- AZR held-out program gain (stretch): {'met' if better else 'not met'} — " + "; ".join(gains))
    return lines


def markdown(summary: dict) -> str:
    columns = list(summary["base"])
    models, ev = summary["models"], summary["eval"]
    lines = [f"# selftaught demo — `{models['math']}` (math) and `{models['programs']}` (programs)", "",
             f"Held-out data (never trained on). Math: {ev['math_n']} problems × {ev['samples']} samples at "
             f"τ = {ev['temperature']} (pass@1, pass@{ev['samples']}, majority@{ev['samples']}, procedure share) and "
             f"greedy; programs: greedy solve rates. value [95% interval]. "
             f"Run time {summary['runtime_s']:.0f} s{' (quick run)' if summary.get('quick') else ''}.", "",
             "| model | " + " | ".join(columns) + " | s/step |",
             "|---|" + "---|" * (len(columns) + 1),
             "| base | " + " | ".join(figure_cell(summary["base"][c]) for c in columns) + " | |"]
    for name, run in summary["runs"].items():
        lines.append(f"| + {name}, {run['steps']} steps | "
                     + " | ".join(figure_cell(run["after"].get(c)) for c in columns)
                     + f" | {run['seconds_per_step']:.2f} |")
    lines += ["", "## Targets", "", *target_lines(summary)]
    lines += ["", "## What changed", ""]
    for name, run in summary["runs"].items():
        judged = [f"{c}: {verdict(summary['base'][c], run['after'][c])}"
                  f" ({summary['base'][c]['value']:.3f} → {run['after'][c]['value']:.3f})"
                  for c in columns if c in run["after"] and summary["base"][c].get("value") is not None
                  and run["after"][c].get("value") is not None]
        lines.append(f"- **{name}** — " + "; ".join(judged))
    if summary.get("auroc"):
        lines += ["", "## Base model diagnose: which label-free reward tracks correctness", "",
                  "Within-group AUROC of right vs wrong completions of one problem (0.5 = chance; "
                  "`selftaught diagnose`), before training and after each method's own training:", "",
                  "| reward | base | after training on it |", "|---|---|---|"]
        for name, result in summary["auroc"].items():
            after = next((run.get("auroc_after", {}).get(name) for method, run in summary["runs"].items()
                          if run["config"].get("rewards", [{}])[0].get("name") == name), None)
            lines.append(f"| {name} | {figure_cell(result)} ({result['verdict']}) | {figure_cell(after)} |")
    lines += ["", "## Training curves (first → last step)", ""]
    for name, run in summary["runs"].items():
        trends = [f"{label.split(' (')[0]} {values[0]:.3f} → {values[-1]:.3f}"
                  for key, label in CURVES.items() if (values := run.get("curves", {}).get(key))]
        trends += [f"{key} {values[0]:.2f} → {values[-1]:.2f}"
                   for key, values in run.get("curves", {}).items() if key.startswith("azr/") and values]
        lines.append(f"- **{name}**: " + "; ".join(trends))
    lines += ["", "![curves and figures](report.png)", "",
              "Configurations and every figure: `summary.json`."]
    return "\n".join(lines) + "\n"


def _legend(axis) -> None:
    if axis.get_legend_handles_labels()[0]:  # a run may log none of a panel's curves
        axis.legend(fontsize=7)


def _integer_steps(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(axis, series: dict, title: str, *, xlabel: str = "step", colors: dict | None = None,
                unit_interval: bool = False) -> None:
    """One panel of curves: `series` maps a label to its values (steps 1, 2, ...) or to
    (steps, values); labels with no values are left out. The demo's panels and
    `selftaught report`'s are all drawn here."""
    for label, values in series.items():
        steps, values = values if isinstance(values, tuple) else (range(1, len(values) + 1), values)
        if len(values):
            axis.plot(steps, values, marker=".", label=label,
                      color=(colors or {}).get(label))
    if unit_interval:
        axis.set_ylim(-0.05, 1.05)
    axis.set_title(title, fontsize=9)
    axis.set_xlabel(xlabel, fontsize=8)
    _integer_steps(axis)
    _legend(axis)


def _plot_curves(axis, summary: dict, key: str, title: str, skip: set) -> None:
    series = {name: run.get("curves", {}).get(key) or [] for name, run in summary["runs"].items() if name not in skip}
    plot_curves(axis, series, title, colors=COLORS)


def _plot_azr(axis, summary: dict, what: str, title: str) -> None:
    curves = summary["runs"].get("azr", {}).get("curves", {})
    plot_curves(axis, {t: curves.get(f"azr/{t}/{what}") or [] for t in TASK_TYPES}, title, xlabel="AZR step",
                unit_interval=True)


def _plot_figures(axis, summary: dict) -> None:
    columns = list(summary["base"])
    models = [("base", summary["base"])] + [(n, r["after"]) for n, r in summary["runs"].items()]
    width = 0.8 / len(models)
    for i, (name, figures) in enumerate(models):
        positions, heights, below, above = [], [], [], []
        for j, column in enumerate(columns):
            figure = figures.get(column)
            if figure and figure.get("value") is not None:
                positions.append(j + i * width)
                heights.append(figure["value"])
                # max(0, ·): interval bounds at 0/n and n/n can be off by rounding
                below.append(max(0.0, figure["value"] - figure["low"]))
                above.append(max(0.0, figure["high"] - figure["value"]))
        axis.bar(positions, heights, width=width, yerr=[below, above], capsize=2, color=COLORS.get(name),
                 label=name if name == "base" else f"+{name}")
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], columns, fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_title("held-out figures before and after (95% intervals)", fontsize=9)
    axis.legend(fontsize=6, ncol=2)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(17, 8))
    grid = figure.add_gridspec(2, 4)
    for column, (key, (title, skip)) in enumerate(PLOTTED_CURVES.items()):
        _plot_curves(figure.add_subplot(grid[0, column]), summary, key, title, skip)
    _plot_azr(figure.add_subplot(grid[1, 0]), summary, "propose/valid_rate", "AZR valid-proposal rate")
    _plot_azr(figure.add_subplot(grid[1, 1]), summary, "solve/solve_rate", "AZR solve rate")
    _plot_figures(figure.add_subplot(grid[1, 2:]), summary)
    figure.suptitle(f"selftaught demo — {summary['models']['math']} (math), {summary['models']['programs']} "
                    "(programs)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_report(summary: dict, output_dir: Path) -> None:
    (output_dir / "report.md").write_text(markdown(summary))
    plot(summary, output_dir / "report.png")
