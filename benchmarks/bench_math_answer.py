"""Answer checking under hostile model-written answers: what one training step's checks cost.

Target (issue 24): whatever the model writes, checking one step's answers adds at most 1 s over
the ordinary cost, on the main thread and from a worker thread. A step here is what
`PromptEpisodes.rewards` runs: the gold check (`math_answer`) and both vote rewards
(`majority_vote`, `answer_agreement`, groups of G = 8) over the same 64 completions, under one
answer-check budget.

The corpus is generated (seeded) from classes, not collected from known examples:

- huge numbers: binomials of huge arguments in every spelling (\\binom, \\dbinom, \\tbinom,
  {n \\choose k}, scientific arguments), Γ and factorials of large arguments, powers with large
  exponents, finite sums and products with large bounds, matrix powers, and each of those
  inside larger expressions (x + ..., \\frac{...}{3}, \\sqrt{...});
- huge expansions: (a sum of t symbols)^e;
- the shapes of issue 14 (power towers, deep nesting, huge factorials);
- slow without being big, which no pre-check recognises (integrals sympy cannot do,
  binomials of a symbol, mid-sized multivariate expansions): these meet the budget.

For each step of 64 the table prints the hostile step's wall time, the ordinary step's (64
ordinary symbolic answers, same rewards), the extra (target ≤ 1 s) and how the answers were
decided (refused by the pre-check, timed out, over budget). The budget is counted in the
worker's CPU time, so the same figures are printed in CPU seconds (this process + the
math-verify worker and its checkers): on a machine shared with other jobs the wall figures
stretch with the load (the load average is printed), the CPU figures do not. "before" is one sample of the
same corpus checked without the magnitude estimate and the budget (the pre-check's other tests,
then each answer alone under the per-comparison deadline), extrapolated to a 64-answer step.

    OMP_NUM_THREADS=1 python benchmarks/bench_math_answer.py [--steps 5] [--seed 0]

Prints `RESULT math_answer_step_extra max_s=<worst wall extra over all steps and threads>
max_cpu_s=<the same in CPU seconds> target<=1.0 met=<bool> met_in_cpu=<bool>`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from selftaught.executor.proctree import descendants  # noqa: E402
from selftaught.rewards import AnswerAgreementReward, MajorityVoteReward, MathAnswerReward  # noqa: E402
from selftaught.rewards import math_answer  # noqa: E402
from selftaught.rewards.explosive import refusal_reason  # noqa: E402
from selftaught.rewards.math_answer import STEP_BUDGET_S, Verdict, answer_check_budget, check_answer  # noqa: E402

TARGET_S = 1.0
STEP = 64
GROUP = 8
ORDINARY = [(r"\frac{\sqrt{8}}{4}", r"\frac{\sqrt2}{2}"), ("2x+1", "1+2x"), (r"\{1,2\}", r"\{2,1\}"),
            (r"\sqrt{2}", "2"), (r"x^{2}-1", "(x-1)(x+1)"), (r"\pi/2", r"\frac{\pi}{2}"),
            (r"\frac{3}{4}", "0.75"), (r"(1, 2]", r"(1,2]")]
ISSUE_14 = [r"10^{10^{10}}", r"2^{2^{40}}", r"100000000!", "(" * 5000 + "1" + ")" * 5000, r"9^{9^{9^{9}}}", "2**2**40",
            r"(10^{9})!", r"\left(" * 3000 + "x" + r"\right)" * 3000, r"7^{99999999}", r"(x+1)^{99999}",
            r"\prod_{k=1}^{10^{9}} k", r"3!!!!!!", r"\Gamma(10^{8})", r"x^{y^{z^{w}}}", r"99999999999!", "1" * 20000]


def huge_number(rng: random.Random) -> str:
    """A number sympy would compute exactly, with (far) more than 10,000 digits."""
    n = rng.randint(10 ** 5, 10 ** 12)
    k = n // rng.choice([2, 3, 5])
    a, b = rng.randint(1, 9), rng.randint(6, 12)
    return rng.choice([
        rf"\binom{{{n}}}{{{k}}}", rf"\dbinom{{{n}}}{{{k}}}", rf"\tbinom{{{n}}}{{{k}}}", rf"{{{n} \choose {k}}}",
        rf"\binom{{{a}\cdot 10^{{{b}}}}}{{{a}\cdot 10^{{{b - 1}}}}}", rf"\binom{{{n}}}{{{n - k}}}",
        rf"\Gamma({n})", rf"\Gamma\left({a}\cdot 10^{{{b}}}\right)", rf"({n})!", rf"\left({a}\times 10^{{{b}}}\right)!",
        rf"{rng.randint(2, 99)}^{{{rng.randint(6_000, 99_999)}}}",
        rf"\left(\frac{{{rng.randint(2, 99)}}}{{{rng.randint(2, 99)}}}\right)^{{{rng.randint(10_000, 99_999)}}}",
        rf"\prod_{{k=1}}^{{{rng.randint(10_000, 10 ** 7)}}} k",
        rf"\sum_{{k=1}}^{{{rng.randint(10_000, 10 ** 7)}}} k^{{k}}",
        rf"\prod_{{n=1}}^{{{rng.randint(600, 5000)}}} n^{{n}}",
        rf"\begin{{pmatrix}}1&1\\1&0\end{{pmatrix}}^{{{rng.randint(10 ** 5, 10 ** 7)}}}",
        rf"\begin{{bmatrix}}2&1&0\\1&3&1\\0&1&4\end{{bmatrix}}^{{{rng.randint(10 ** 5, 10 ** 7)}}}",
        rf"\binom{{n}}{{{rng.randint(10 ** 4, 10 ** 8)}}}",
    ])


def in_context(rng: random.Random, inner: str) -> str:
    """A hostile piece inside an ordinary-looking answer."""
    return rng.choice(["{}", "x + {}", r"\frac{{{}}}{{3}}", r"\sqrt{{{}}}", "2{} - 1", r"{}\cdot 7 + y",
                       r"\left(1 + {}\right)"]).format(inner)


def huge_expansion(rng: random.Random) -> str:
    t = rng.randint(3, 8)
    symbols = "+".join("abcdefgh"[:t])
    return rf"({symbols})^{{{rng.randint(40, 99)}}}"


def slow_symbolic(rng: random.Random) -> str:
    """Slow for sympy without building anything big: only the budget stops these."""
    a, b = rng.randint(1, 9), rng.randint(2, 9)
    return rng.choice([
        rf"\int_0^{{{a}}} e^{{x^{{2}}}}\sin({b}x)\,dx", rf"\int_{{0}}^{{{a}}} \frac{{\sin(x^{{{b}}})}}{{\log(x+{a})}}\,dx",
        rf"\binom{{n}}{{{rng.randint(80, 150)}}}", rf"(x+y+z+w)^{{{rng.randint(9, 12)}}}",
        rf"\binom{{n+{a}}}{{{rng.randint(90, 150)}}}",
    ])


def corpus(rng: random.Random, size: int) -> list[str]:
    """`size` hostile answers: ~45% huge numbers (half in context), 15% expansions, 15% issue 14, 25% slow."""
    out = []
    for _ in range(size):
        kind = rng.random()
        if kind < 0.45:
            out.append(in_context(rng, huge_number(rng)) if rng.random() < 0.5 else huge_number(rng))
        elif kind < 0.60:
            out.append(huge_expansion(rng))
        elif kind < 0.75:
            out.append(rng.choice(ISSUE_14))
        else:
            out.append(slow_symbolic(rng))
    return out


def worker_cpu() -> float:
    """CPU seconds of the math-verify worker so far: the server, its live checker, its reaped ones."""
    server = math_answer._verifier._server
    if server is None:
        return 0.0
    total = 0.0
    for pid, fields in [(server.pid, (11, 12, 13, 14))] + [(pid, (11, 12)) for pid, _ in descendants(server.pid)]:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read().rsplit(b")", 1)[1].split()
            total += sum(int(stat[i]) for i in fields) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def step(completions: list[str], gold: list[str], in_thread: bool) -> tuple[float, float, Counter]:
    """One step's answer rewards (as PromptEpisodes.rewards runs them); (seconds, CPU seconds, verdict kinds)."""
    sources = [MathAnswerReward(), MajorityVoteReward(GROUP), AnswerAgreementReward(GROUP)]
    out: dict = {}

    def run():
        before = dict(math_answer.unverified_counts())
        cpu = time.thread_time() + worker_cpu()
        start = time.perf_counter()
        with answer_check_budget():
            for source in sources:
                source(completions, {"answer": gold}, None)
        out["seconds"] = time.perf_counter() - start
        out["cpu"] = time.thread_time() + worker_cpu() - cpu
        after = math_answer.unverified_counts()
        out["kinds"] = Counter({key: after[key] - before.get(key, 0) for key in after})

    if in_thread:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout=600)
        if thread.is_alive():
            return float("inf"), float("inf"), Counter()
    else:
        run()
    return out["seconds"], out["cpu"], out["kinds"]


def before_seconds(answers: list[str]) -> float:
    """Mean seconds per answer checked without the magnitude estimate and the budget: the pre-check's other
    tests (refusal_reason without the magnitude estimate), then math-verify under its own per-comparison deadline."""
    from selftaught.rewards import explosive

    def refused_without_magnitude(answer: str) -> bool:
        if len(answer) > explosive.MAX_ANSWER_CHARS or explosive._nesting_depth(answer) > explosive.MAX_NESTING:
            return True
        return bool(explosive._power_reason(answer) or explosive._factorial_reason(answer))

    total = 0.0
    for answer in answers:
        start = time.perf_counter()
        if not refused_without_magnitude(answer):
            math_answer._verifier.check(answer, "42")
        total += time.perf_counter() - start
    return total / len(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description="one step's answer checks under hostile answers")
    parser.add_argument("--steps", type=int, default=5, help="steps of 64 hostile answers (the corpus is 64 × steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before-sample", type=int, default=8,
                        help="answers checked without magnitude estimate and budget, for 'before'")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    hostile = corpus(rng, STEP * args.steps)
    MathAnswerReward()  # start the worker; its cold start is once per process, not per step
    start = time.perf_counter()
    check_answer(r"x+1", "1+x")
    print(f"cold start (worker process + math-verify import, first symbolic answer): "
          f"{time.perf_counter() - start:.2f} s, once per process")
    pre = Counter("pre-check" if refusal_reason(a) else "runs" for a in hostile)
    print(f"corpus: {len(hostile)} hostile answers in {args.steps} steps of {STEP} (seed {args.seed}); "
          f"the pre-check refuses {pre['pre-check']}, {pre['runs']} reach math-verify; budget {STEP_BUDGET_S} s per step")
    ordinary = [ORDINARY[i % len(ORDINARY)] for i in range(STEP)]
    ordinary_completions = [rf"so \boxed{{{p}}}" for p, _ in ordinary]
    ordinary_gold = [g for _, g in ordinary]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'step':<6}{'thread':<8}{'hostile s':>10}{'ordinary s':>11}{'extra s':>9}{'vs 1 s':>8}"
          f"{'hostile cpu':>12}{'ordinary cpu':>13}{'extra cpu':>10}  decided as")
    worst = worst_cpu = 0.0
    for k in range(args.steps):
        answers = hostile[k * STEP:(k + 1) * STEP]
        completions = [rf"the answer is \boxed{{{a}}}" for a in answers]
        for in_thread in (False, True):
            ordinary_s, ordinary_cpu, _ = step(ordinary_completions, ordinary_gold, in_thread)
            hostile_s, hostile_cpu, kinds = step(completions, ["42"] * STEP, in_thread)
            extra, extra_cpu = hostile_s - ordinary_s, hostile_cpu - ordinary_cpu
            worst, worst_cpu = max(worst, extra), max(worst_cpu, extra_cpu)
            decided = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()) if n)
            print(f"{k + 1:<6}{'worker' if in_thread else 'main':<8}{hostile_s:>10.3f}{ordinary_s:>11.3f}"
                  f"{extra:>9.3f}{extra / TARGET_S:>7.2f}x{hostile_cpu:>12.3f}{ordinary_cpu:>13.3f}{extra_cpu:>10.3f}"
                  f"  {decided}", flush=True)
    mixed = [a for pair in zip(hostile[:STEP // 2], [p for p, _ in ordinary[:STEP // 2]]) for a in pair]
    mixed_gold = [g for pair in zip(["42"] * (STEP // 2), ordinary_gold[:STEP // 2]) for g in pair]
    start = time.perf_counter()
    rewards = MathAnswerReward()([rf"\boxed{{{a}}}" for a in mixed], {"answer": mixed_gold}, None)
    mixed_s = time.perf_counter() - start
    ordinary_right = int(rewards[1::2].sum())
    expected_right = sum(check_answer(p, g) is Verdict.MATCH for p, g in ordinary[:STEP // 2])
    print(f"mixed step (32 hostile, 32 ordinary interleaved, gold check only): {mixed_s:.3f} s; ordinary answers "
          f"judged right {ordinary_right} of the {expected_right} that are right")
    sample = [a for a in hostile if not refusal_reason(a)][:args.before_sample // 2] + \
        [a for a in hostile if refusal_reason(a)][:args.before_sample // 2]
    per_answer = before_seconds(sample)
    print(f"before (no magnitude estimate, no budget; {len(sample)} corpus answers one by one): {per_answer:.2f} s per "
          f"answer, ~{STEP * per_answer:.0f} s per {STEP}-answer gold check alone")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"RESULT math_answer_step_extra max_s={worst:.3f} max_cpu_s={worst_cpu:.3f} target<={TARGET_S} "
          f"met={worst <= TARGET_S} met_in_cpu={worst_cpu <= TARGET_S}")


if __name__ == "__main__":
    main()
