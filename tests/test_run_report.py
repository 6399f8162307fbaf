"""`selftaught report RUN_DIR ...`: runs' curves overlaid, from metrics.jsonl."""

import json

from conftest import tiny_overrides
from selftaught.cli import main
from selftaught.config import build_config
from selftaught.run_report import curve_keys, read_metrics, run_labels, series
from selftaught.trainer import Trainer


def _train(output_dir, **extra):
    Trainer(build_config(tiny_overrides(output_dir, max_steps=2, **extra))).train()


def test_report_overlays_two_real_runs(tmp_path, capsys):
    _train(tmp_path / "intuitor")
    _train(tmp_path / "grpo", method="grpo", beta=0.01)
    out = tmp_path / "compare"
    assert main(["report", str(tmp_path / "intuitor"), str(tmp_path / "grpo"), "--output", str(out)]) == 0
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "report.md").read_text()
    assert f"| intuitor | `{tmp_path / 'intuitor'}` | 2 |" in text
    assert f"| grpo | `{tmp_path / 'grpo'}` | 2 |" in text
    assert "| curve | intuitor | grpo |" in text
    for key in ("reward/mean", "rewards/self_certainty/mean", "rewards/math_answer/mean", "self_certainty/mean",
                "completion_length/mean", "kl/mean", "clip_fraction"):
        assert f"| `{key}` |" in text, key
    # the first → last figures are the runs' own
    rows = read_metrics(tmp_path / "grpo")
    assert f"{rows[0]['kl/mean']:.4g} → {rows[-1]['kl/mean']:.4g}" in text
    assert "report.md" in capsys.readouterr().out


def test_default_output_is_the_first_run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "reward/mean": s / 10}) + "\n" for s in (1, 2)))
    assert main(["report", str(run)]) == 0
    assert (run / "report.png").exists() and "0.1 → 0.2" in (run / "report.md").read_text()


def test_azr_rates_reward_sources_and_bad_values(tmp_path, capsys):
    run = tmp_path / "azr"
    run.mkdir()
    rows = [{"step": 1, "reward/mean": 0.1, "azr/deduction/propose/valid_rate": 0.5, "azr/abduction/solve/solve_rate": 0.25,
             "rewards/mine/mean": "nan", "grad_norm": 1.0},
            {"step": 2, "reward/mean": 0.2, "azr/deduction/propose/valid_rate": 0.75,
             "azr/abduction/solve/solve_rate": 0.5, "rewards/mine/mean": 0.3}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "rew')  # cut by a kill
    runs = {"azr": read_metrics(run)}
    assert "skipped 1 unreadable line" in capsys.readouterr().err
    assert curve_keys(runs) == ["reward/mean", "rewards/mine/mean", "azr/deduction/propose/valid_rate",
                                "azr/abduction/solve/solve_rate"]  # grad_norm is not a report curve
    assert series(runs["azr"], "rewards/mine/mean") == ([2], [0.3])  # a NaN step is left out
    assert main(["report", str(run), "--output", str(tmp_path / "out")]) == 0
    assert "| `azr/deduction/propose/valid_rate` | 0.5 → 0.75 |" in (tmp_path / "out" / "report.md").read_text()


def test_bad_run_dirs_are_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "parent" / "a").mkdir(parents=True)
    (tmp_path / "parent" / "a" / "metrics.jsonl").write_text('{"step": 1, "reward/mean": 0.5}\n')
    assert main(["report", str(tmp_path / "parent")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "has no metrics.jsonl" in error and str(tmp_path / "parent" / "a") in error
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no metrics rows" in capsys.readouterr().err


def test_labels_are_dir_names_made_unique(tmp_path):
    assert run_labels([tmp_path / "a" / "intuitor", tmp_path / "b" / "grpo"]) == ["intuitor", "grpo"]
    assert run_labels([tmp_path / "a" / "intuitor", tmp_path / "b" / "intuitor"]) == ["a/intuitor", "b/intuitor"]
