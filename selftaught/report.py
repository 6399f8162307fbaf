"""The demo's report: `report.md` (the table, what changed, the curves' first and
last values) and `report.png` (training curves and before/after accuracies with
95% intervals), both drawn from `summary.json` alone.

A change is called a change only when the two 95% Wilson intervals do not overlap
(a conservative reading: with a few hundred held-out items, smaller differences are
noise); otherwise the report says "no measurable change".
"""

from __future__ import annotations

from pathlib import Path

CURVES = {
    "reward/mean": "reward (the method's own)",
    "self_certainty/mean": "self-certainty (mean KL(U‖p), nats)",
    "completion_length/mean": "completion length (tokens)",
    "rewards/math_answer/mean": "gold-answer accuracy on training batches",
}
PLOTTED_CURVES = {
    # Intuitor's reward *is* its self-certainty (next panel); on one axis with the
    # others' 0–1 rewards it would flatten them.
    "reward/mean": ("reward: GRPO (gold answer), AZR (its own)", {"intuitor"}),
    "self_certainty/mean": ("self-certainty, mean KL(U‖p) in nats (Intuitor's reward)", set()),
    "rewards/math_answer/mean": ("gold-answer accuracy on training batches", set()),
    "completion_length/mean": ("completion length (tokens)", set()),
}
AZR_TYPES = ("deduction", "abduction", "induction")
COLORS = {"base": "C0", "intuitor": "C1", "grpo": "C2", "azr": "C3"}
"""One colour per model in every panel."""


def verdict(before: dict, after: dict) -> str:
    """'better' / 'worse' when the 95% intervals are disjoint, else 'no measurable change'."""
    if after["ci95"][0] > before["ci95"][1]:
        return "better"
    if after["ci95"][1] < before["ci95"][0]:
        return "worse"
    return "no measurable change"


def _cell(figure: dict | None) -> str:
    if not figure:
        return "—"
    low, high = figure["ci95"]
    return f"{figure['accuracy']:.3f} ({figure['correct']}/{figure['n']}; {low:.2f}–{high:.2f})"


def markdown(summary: dict) -> str:
    columns = [c for c in summary["base"]]
    lines = [f"# selftaught demo — `{summary['model']}`", "",
             f"Held-out data (never trained on), greedy decoding; accuracy (correct/n; 95% Wilson interval). "
             f"Run time {summary['runtime_s']:.0f} s{' (quick run)' if summary.get('quick') else ''}.", "",
             "| model | " + " | ".join(columns) + " | s/step |",
             "|---|" + "---|" * (len(columns) + 1),
             "| base | " + " | ".join(_cell(summary["base"][c]) for c in columns) + " | |"]
    for name, run in summary["runs"].items():
        lines.append(f"| + {name}, {run['steps']} steps | "
                     + " | ".join(_cell(run["after"].get(c)) for c in columns)
                     + f" | {run['seconds_per_step']:.2f} |")
    lines += ["", "## What changed", ""]
    for name, run in summary["runs"].items():
        judged = [f"{c}: {verdict(summary['base'][c], run['after'][c])}"
                  f" ({summary['base'][c]['accuracy']:.3f} → {run['after'][c]['accuracy']:.3f})"
                  for c in columns if c in run["after"]]
        lines.append(f"- **{name}** — " + "; ".join(judged))
    if not any(verdict(summary["base"][c], run["after"][c]) == "better"
               for run in summary["runs"].values() for c in columns if c in run["after"]):
        lines += ["", "No method measurably improved this model in this run. Every figure above is what "
                      "the run measured; nothing was tuned on the held-out data."]
    diagnostic = summary.get("self_certainty_vs_correct")
    if diagnostic and diagnostic.get("auroc") is not None:
        lines += ["", f"Base model: self-certainty (Intuitor's reward) separates its right answers from its wrong "
                      f"ones with AUROC {diagnostic['auroc']:.3f} over {diagnostic['n']} sampled training-prompt "
                      f"completions ({diagnostic['correct']} right; 0.5 = chance). Intuitor can only raise "
                      "accuracy where this is above 0.5."]
    lines += ["", "## Training curves (first → last step)", ""]
    for name, run in summary["runs"].items():
        trends = [f"{label.split(' (')[0]} {values[0]:.3f} → {values[-1]:.3f}"
                  for key, label in CURVES.items() if (values := run.get("curves", {}).get(key))]
        trends += [f"{key} {values[0]:.2f} → {values[-1]:.2f}"
                   for key, values in run.get("curves", {}).items() if key.startswith("azr/") and values]
        lines.append(f"- **{name}**: " + "; ".join(trends))
    lines += ["", "![curves and accuracies](report.png)", "",
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
    plot_curves(axis, {t: curves.get(f"azr/{t}/{what}") or [] for t in AZR_TYPES}, title, xlabel="AZR step",
                unit_interval=True)


def _plot_accuracies(axis, summary: dict) -> None:
    columns = list(summary["base"])
    models = [("base", summary["base"])] + [(n, r["after"]) for n, r in summary["runs"].items()]
    width = 0.8 / len(models)
    for i, (name, figures) in enumerate(models):
        positions, heights, below, above = [], [], [], []
        for j, column in enumerate(columns):
            figure = figures.get(column)
            if figure:
                positions.append(j + i * width)
                heights.append(figure["accuracy"])
                # max(0, ·): the Wilson bounds at 0/n and n/n are off by rounding
                below.append(max(0.0, figure["accuracy"] - figure["ci95"][0]))
                above.append(max(0.0, figure["ci95"][1] - figure["accuracy"]))
        axis.bar(positions, heights, width=width, yerr=[below, above], capsize=2, color=COLORS.get(name),
                 label=name if name == "base" else f"+{name}")
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], columns, fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_title("held-out accuracy, greedy (95% CI)", fontsize=9)
    axis.legend(fontsize=7)


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
    _plot_accuracies(figure.add_subplot(grid[1, 2:]), summary)
    figure.suptitle(f"selftaught demo — {summary['model']}", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_report(summary: dict, output_dir: Path) -> None:
    (output_dir / "report.md").write_text(markdown(summary))
    plot(summary, output_dir / "report.png")
