"""benchmarks/bench_learning_vs_trl.py: the TRL reward it trains on, and exit 2 without TRL."""

import runpy
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learning_vs_trl.py"


def test_gold_answer_reward_is_the_demo_math_answer_reward():
    from selftaught.rewards import MathAnswerReward

    bench = runpy.run_path(str(SCRIPT))  # no __main__: defines the functions only
    completions = [" 579", " 1 2 3\n578", " 10,57 9", "", " 579 wait no 580"]
    answers = ["579", "578", "579", "579", None]
    trl_rewards = bench["gold_answer"](prompts=[""] * 5, completions=completions, answer=answers)
    ours = MathAnswerReward()(completions, {"answer": answers}, scores=None).tolist()
    assert trl_rewards == ours
    assert trl_rewards[:2] == [1.0, 1.0] and trl_rewards[3:] == [0.0, 0.0]


def test_exits_2_naming_the_bench_extra_when_trl_is_missing():
    blocker = "import sys; sys.modules['trl'] = None; sys.argv = ['bench', '--steps', '1']; "
    run = subprocess.run([sys.executable, "-c", blocker + f"import runpy; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "pip install -e .[bench]" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
