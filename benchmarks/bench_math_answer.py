"""Answer checking under hostile model-written answers: one reward call, 64 answers.

Target (issue 14): 64 answers such as ``10^{10^{10}}``, ``2^{2^{40}}``,
``100000000!`` or 5,000 nested parentheses finish in <= 2 s in total, from the
main thread and from a worker thread, every verdict False. Before, each took
math-verify's 5 s signal timeout on the main thread and never returned on any
other thread (``2^{2^{40}}`` holds the GIL in big-integer code).

Also printed: ordinary answers (the cost the worker process adds per symbolic
comparison) and answers that pass the pre-check but miss the deadline.

    OMP_NUM_THREADS=1 python benchmarks/bench_math_answer.py
"""

from __future__ import annotations

import threading
import time

from selftaught.rewards import MathAnswerReward
from selftaught.rewards.math_answer import unverified_counts
from selftaught.rewards.symbolic_worker import DEFAULT_DEADLINE_S

TARGET_S = 2.0
HOSTILE = [
    r"10^{10^{10}}", r"2^{2^{40}}", r"100000000!", "(" * 5000 + "1" + ")" * 5000,
    r"9^{9^{9^{9}}}", "2**2**40", r"(10^{9})!", r"\left(" * 3000 + "x" + r"\right)" * 3000,
    r"7^{99999999}", r"(x+1)^{99999}", r"\prod_{k=1}^{10^{9}} k", r"3!!!!!!",
    r"\Gamma(10^{8})", r"x^{y^{z^{w}}}", r"99999999999!", "1" * 20000,
]
ORDINARY = [(r"\frac{\sqrt{8}}{4}", r"\frac{\sqrt2}{2}"), ("2x+1", "1+2x"), (r"\{1,2\}", r"\{2,1\}"),
            (r"\sqrt{2}", "2"), (r"x^{2}-1", "(x-1)(x+1)"), (r"\pi/2", r"\frac{\pi}{2}")]


def timed_call(reward, completions, extras, in_thread: bool):
    out = {}

    def run():
        start = time.perf_counter()
        out["rewards"] = reward(completions, extras, None)
        out["seconds"] = time.perf_counter() - start

    if in_thread:
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(timeout=600)
        if t.is_alive():
            return None, float("inf")
    else:
        run()
    return out["rewards"], out["seconds"]


def old_in_process_seconds(answer: str, gold: str = "42") -> float:
    """What one answer cost before: math-verify in this process, its 5 s signal timeout (main thread)."""
    import logging

    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    start = time.perf_counter()
    try:
        g, p = parse(f"${gold}$", parsing_timeout=5), parse(f"${answer}$", parsing_timeout=5)
        if g and p:
            verify(g, p, timeout_seconds=5)
    except BaseException:  # noqa: BLE001 - math-verify's TimeoutException is not an Exception
        pass
    return time.perf_counter() - start


def main() -> None:
    start = time.perf_counter()
    reward = MathAnswerReward()
    timed_call(reward, [r"\boxed{x+1}"], {"answer": ["1+x"]}, in_thread=False)
    print(f"cold start (worker process + math-verify import, first symbolic answer): "
          f"{time.perf_counter() - start:.2f} s, once per process")
    completions = [rf"so the answer is \boxed{{{HOSTILE[i % len(HOSTILE)]}}}" for i in range(64)]
    extras = {"answer": ["42"] * 64}
    print(f"{'case':<44}{'total s':>9}{'per answer ms':>15}{'vs 2 s target':>15}  verdicts")
    for label, in_thread in [("64 hostile, main thread", False), ("64 hostile, worker thread", True)]:
        rewards, seconds = timed_call(reward, completions, extras, in_thread)
        verdicts = "all False" if rewards is not None and not rewards.any() else f"WRONG {rewards}"
        print(f"{label:<44}{seconds:>9.3f}{1000 * seconds / 64:>15.2f}{seconds / TARGET_S:>14.3f}x"
              f"  {verdicts}, timeouts logged: {reward.last_timeouts}")
    pairs = ORDINARY * 8
    rewards, seconds = timed_call(reward, [rf"\boxed{{{p}}}" for p, _ in pairs], {"answer": [g for _, g in pairs]},
                                  in_thread=False)
    print(f"{f'{len(pairs)} ordinary symbolic (worker process)':<44}{seconds:>9.3f}{1000 * seconds / len(pairs):>15.2f}"
          f"{'':>15}  {int(rewards.sum())} matched, timeouts: {reward.last_timeouts}")
    slow = [r"\int_0^1 e^{x^{2}}\sin(x)\,dx"]  # passes the pre-check; may hit the deadline
    rewards, seconds = timed_call(reward, [rf"\boxed{{{s}}}" for s in slow], {"answer": ["3"]}, in_thread=True)
    print(f"{'1 symbolic that passes the pre-check':<44}{seconds:>9.3f}{'':>15}{'':>15}  "
          f"deadline {DEFAULT_DEADLINE_S} s, timeouts: {reward.last_timeouts}")
    print(f"process totals: {unverified_counts()}")
    old = old_in_process_seconds(HOSTILE[0])
    print(f"before (math-verify in-process, main thread) one {HOSTILE[0]!r}: {old:.2f} s; 64 of them ~{64 * old:.0f} s "
          f"= {64 * old / TARGET_S:.0f}x the target (off the main thread it never returned)")


if __name__ == "__main__":
    main()
