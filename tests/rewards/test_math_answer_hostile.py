"""Answer checking cannot stall: pre-check refusals, the worker's hard deadline, counted verdicts.

Timing targets live in benchmarks/bench_math_answer.py; here only correctness
and that every call returns (a generous bound, so a hang fails the test).
"""

import logging
import math
import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest

from selftaught.episodes import PromptEpisodes
from selftaught.rewards import MathAnswerReward
from selftaught.rewards import math_answer
from selftaught.rewards.explosive import refusal_reason
from selftaught.rewards.math_answer import Verdict, answers_match, check_answer, unverified_counts
from selftaught.rewards.symbolic_worker import DEFAULT_DEADLINE_S

HANG_BOUND_S = 30  # far above the 2 s target; only a hang or a 5 s-per-answer stall exceeds it

HOSTILE = [
    r"10^{10^{10}}", r"2^{2^{40}}", r"100000000!", "(" * 5000 + "1" + ")" * 5000,
    r"9^{9^{9^{9}}}", "2**2**40", "9^9^9", r"(10^{9})!", r"\left(" * 3000 + "x" + r"\right)" * 3000,
    r"7^{99999999}", r"(x+1)^{99999}", r"\prod_{k=1}^{10^{9}} k", r"3!!!", r"\Gamma(10^{8})",
    r"99999999999!", "1+" * 2000 + "1", r"x^{y^{z^{w}}}",
]
# A symbolic answer the pre-check lets through but sympy cannot finish within the deadline.
SLOW_BUT_ALLOWED = r"\int_0^1 e^{x^{2}}\sin(x)\,dx"


@pytest.mark.parametrize("answer", HOSTILE)
def test_precheck_refuses_explosive_answers(answer):
    assert refusal_reason(answer) is not None
    assert check_answer(answer, "42") is Verdict.REFUSED


@pytest.mark.parametrize("answer", [
    "42", r"\frac{1}{2}", r"2^{10}", "10!", "(x+1)^{2}", r"e^{-x^{2}}", r"x^{y^{z}}", r"\sqrt{2}", "x^2 + y^2",
    r"\{1,2\}", r"(1, 2]", r"\binom{10}{3}", r"\left(\frac{1}{2}\right)^{3}", r"\sum_{k=1}^{10} k", "2**10",
])
def test_precheck_lets_ordinary_answers_through(answer):
    assert refusal_reason(answer) is None


def _reward_call_in(thread: bool, completions, gold):
    reward, out = MathAnswerReward(), {}

    def call():
        out["rewards"] = reward(completions, {"answer": gold}, None)

    if thread:
        t = threading.Thread(target=call, daemon=True)
        t.start()
        t.join(HANG_BOUND_S)
        assert not t.is_alive(), "answer checking hung in a worker thread"
    else:
        start = time.monotonic()
        call()
        assert time.monotonic() - start < HANG_BOUND_S
    return reward, out["rewards"]


@pytest.mark.parametrize("thread", [False, True], ids=["main_thread", "worker_thread"])
def test_64_hostile_answers_in_one_reward_call_are_wrong_and_counted(thread):
    completions = [rf"the answer is \boxed{{{HOSTILE[i % len(HOSTILE)]}}}" for i in range(64)]
    before = unverified_counts()["refused"]
    reward, rewards = _reward_call_in(thread, completions, ["42"] * 64)
    assert rewards.tolist() == [0.0] * 64
    assert reward.last_timeouts == 64
    assert unverified_counts()["refused"] >= before + 64


def test_deadline_kills_a_slow_comparison_and_the_worker_recovers():
    start = time.monotonic()
    assert check_answer(SLOW_BUT_ALLOWED, "3") is Verdict.TIMED_OUT
    assert time.monotonic() - start < HANG_BOUND_S
    assert DEFAULT_DEADLINE_S <= time.monotonic() - start
    # the re-forked checker answers ordinary symbolic questions right away
    assert answers_match(r"\frac{\sqrt{8}}{4}", r"\frac{\sqrt2}{2}")
    assert not answers_match(r"\sqrt{2}", "2")


def test_a_killed_server_is_restarted():
    assert answers_match("2x+1", "1+2x")
    server = math_answer._verifier._server
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    # the call that finds it dead may count as a timeout; the one after must verify again
    answers_match("2x+1", "1+2x")
    assert answers_match("2x+1", "1+2x")
    assert math_answer._verifier._server.pid != server.pid


def test_concurrent_threads_get_their_own_verdicts():
    pairs = [(r"\frac{\sqrt{8}}{4}", r"\frac{\sqrt2}{2}", True), (r"\sqrt{2}", "2", False),
             (r"2^{2^{40}}", "1", False), ("2x+1", "1+2x", True)] * 4
    results = [None] * len(pairs)

    def check(i):
        results[i] = answers_match(pairs[i][0], pairs[i][1])

    threads = [threading.Thread(target=check, args=(i,), daemon=True) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_BOUND_S)
    assert results == [want for _, _, want in pairs]


def test_logs_carry_only_a_short_prefix_of_an_answer(caplog):
    caplog.set_level(logging.DEBUG)
    huge = "(" * 5000 + "1" + ")" * 5000
    for answer in [huge, r"2^{2^{40}}" + "x" * 900, SLOW_BUT_ALLOWED + "+" + "y" * 500]:
        answers_match(answer, "1")
    assert caplog.records
    assert all(len(r.getMessage()) < 200 for r in caplog.records)


def test_prompt_episode_metrics_report_timeouts():
    reward = MathAnswerReward()
    completions = [r"\boxed{2^{2^{40}}}", r"\boxed{42}", r"\boxed{100000000!}", "no answer"]
    rewards = {"math_answer": reward(completions, {"answer": ["42"] * 4}, None)}
    episodes = SimpleNamespace(config=SimpleNamespace(num_generations=2, completion_tags={}), sources={"math_answer": reward})
    metrics = PromptEpisodes.metrics(episodes, SimpleNamespace(completions=completions), rewards)
    assert rewards["math_answer"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert metrics["rewards/math_answer/timeouts"] == 2.0


def test_a_reply_that_comes_after_the_client_gave_up_never_answers_the_next_comparison(monkeypatch):
    from selftaught.rewards import symbolic_worker

    verifier = symbolic_worker.SymbolicVerifier()
    try:
        assert verifier.verify("2", "2") is True  # the server is up and ready
        first = verifier._server.pid
        with monkeypatch.context() as patch:  # the client waits 0 s: every reply is late
            patch.setattr(symbolic_worker, "WALL_CAP_S", 0.0)
            patch.setattr(symbolic_worker, "_GRACE_S", -verifier.deadline_s)
            assert verifier.verify("1", "1") is None  # its (late) reply is True
        assert verifier.verify("2", "3") is False  # its own verdict, not the late True
        assert verifier._server.pid != first  # the server that missed its deadline was replaced
    finally:
        verifier.close()


# ------------------------------------------------------------------ the step budget


class FakeVerifier:
    """Stands in for the worker: integrals take `slow_s` and time out; other answers take `fast_s` and
    match when they hold the same characters (x+1 ≡ 1+x)."""

    def __init__(self, slow_s=0.6, fast_s=0.001):
        self.slow_s, self.fast_s, self.calls = slow_s, fast_s, []

    def start(self):
        pass

    def check(self, predicted, gold, cpu_s=None):
        self.calls.append((predicted, gold, cpu_s))
        if r"\int" in predicted:
            return None, self.slow_s if cpu_s is None else min(self.slow_s, cpu_s)
        return sorted(predicted) == sorted(gold), self.fast_s


@pytest.fixture
def fake(monkeypatch):
    verifier = FakeVerifier()
    monkeypatch.setattr(math_answer, "_verifier", verifier)
    return verifier


def test_slow_comparisons_spend_the_step_budget_then_the_rest_are_over_budget_and_not_run(fake):
    answers = [r"\int_0^1 x\,dx", r"\int_0^2 x\,dx", "x+y", r"\int_0^3 x\,dx", "y+x", "7"]
    with math_answer.answer_check_budget() as budget:
        verdicts = [check_answer(a, g) for a, g in zip(answers, ["2", "2", "y+x", "2", "x+y", "7.0"])]
    assert verdicts == [Verdict.TIMED_OUT, Verdict.TIMED_OUT, Verdict.OVER_BUDGET, Verdict.OVER_BUDGET,
                        Verdict.OVER_BUDGET, Verdict.MATCH]  # plain numbers never need the worker
    # each comparison ran with what was left of the budget as its CPU deadline
    assert [round(w, 6) for _, _, w in fake.calls] == [math_answer.STEP_BUDGET_S,
                                                       round(math_answer.STEP_BUDGET_S - 0.6, 6)]
    assert budget.left <= 0


def test_ordinary_comparisons_cost_the_budget_nothing(fake):
    fake.fast_s = math_answer.ORDINARY_S * 0.99
    with math_answer.answer_check_budget() as budget:
        verdicts = [check_answer(f"x+{i}", f"{i}+x") for i in range(100)]
    assert verdicts == [Verdict.MATCH] * 100 and len(fake.calls) == 100
    assert budget.left == math_answer.STEP_BUDGET_S


def test_a_comparison_slower_than_ordinary_is_charged_all_its_time(fake):
    fake.fast_s = math_answer.ORDINARY_S + 0.05
    with math_answer.answer_check_budget() as budget:
        assert check_answer("x+1", "1+x") is Verdict.MATCH
    assert budget.left == pytest.approx(math_answer.STEP_BUDGET_S - fake.fast_s)


def test_a_comparison_starved_until_the_wall_cap_spends_the_whole_budget(fake, monkeypatch):
    monkeypatch.setattr(math_answer, "WALL_CAP_S", 0.0)  # every timed-out comparison counts as starved
    fake.slow_s = 0.01
    with math_answer.answer_check_budget() as budget:
        assert check_answer(r"\int_0^1 x\,dx", "2") is Verdict.TIMED_OUT
        assert check_answer(r"\int_0^2 x\,dx", "2") is Verdict.OVER_BUDGET
    assert budget.left == -math.inf and len(fake.calls) == 1


def test_budgets_nest_the_outermost_governs_and_each_call_without_one_opens_its_own(fake):
    reward = MathAnswerReward()
    slow = [r"\boxed{\int_0^{%d} x\,dx}" % i for i in range(4)]
    rewards = reward(slow, {"answer": ["2"] * 4}, None)  # its own budget: two run, two over budget
    assert rewards.tolist() == [0.0] * 4 and reward.last_timeouts == 4 and reward.last_over_budget == 2
    with math_answer.answer_check_budget():
        reward(slow[:2], {"answer": ["2"] * 2}, None)  # spends the step's budget...
        reward(slow[2:], {"answer": ["2"] * 2}, None)  # ...so the next source's call finds it spent
        assert reward.last_over_budget == 2


def test_the_vote_rewards_compare_each_pair_once_per_step(fake):
    from selftaught.rewards import AnswerAgreementReward, MajorityVoteReward

    completions = [r"\boxed{x+1}", r"\boxed{1+x}", r"\boxed{x + 1}", r"\boxed{2x}"]
    with math_answer.answer_check_budget():
        MajorityVoteReward(4)(completions, {}, None)
        calls = len(fake.calls)
        AnswerAgreementReward(4)(completions, {}, None)
    assert calls > 0 and len(fake.calls) == calls


def test_both_sides_are_pre_checked_a_model_written_representative_never_reaches_the_worker(fake):
    assert check_answer("1", r"\binom{2000000}{1000000}") is Verdict.REFUSED
    assert check_answer("x", r"2^{2^{40}}") is Verdict.REFUSED
    assert fake.calls == []


def test_the_reward_checks_the_cheapest_looking_answers_first(fake):
    answers = [r"\int_0^1 e^{x^{2}}\sin(x)\,dx", r"\int_0^2 e^{x^{2}}\sin(x)\,dx", "x+1", "y+2", "2x"]
    golds = ["3", "3", "1+x", "2+y", "x2"]
    rewards = MathAnswerReward()([rf"\boxed{{{a}}}" for a in answers], {"answer": golds}, None)
    assert rewards.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # the ordinary ones ran before the slow ones spent it
    assert sorted(p for p, _, _ in fake.calls[:3]) == sorted(answers[2:])


@pytest.mark.parametrize("thread", [False, True], ids=["main_thread", "worker_thread"])
def test_a_step_of_slow_answers_the_pre_check_lets_through_ends_within_its_budget(thread):
    slow = [rf"\int_0^{k} e^{{x^{{2}}}}\sin({k}x)\,dx" for k in range(2, 8)]
    assert all(refusal_reason(a) is None for a in slow)
    reward, rewards = _reward_call_in(thread, [rf"\boxed{{{a}}}" for a in slow], ["3"] * len(slow))
    assert rewards.tolist() == [0.0] * len(slow)
    assert reward.last_timeouts == len(slow) and reward.last_over_budget >= 1


def test_the_worker_honours_a_shorter_cpu_deadline_reports_cpu_and_ignores_job_wide_signals():
    verdict, cpu = math_answer._verifier.check(SLOW_BUT_ALLOWED, "3", cpu_s=0.3)
    assert verdict is None and 0.3 <= cpu < 0.3 + 0.5  # killed once it had used its 0.3 s (polling: ≤ 2 ms late)
    verdict, cpu = math_answer._verifier.check("2x+1", "1+2x")
    assert verdict is True and 0 <= cpu < math_answer.ORDINARY_S
    server = math_answer._verifier._server
    for sig in (signal.SIGTERM, signal.SIGINT):  # SLURM signals every process of a job
        os.kill(server.pid, sig)
    assert answers_match("2x+1", "1+2x")
    assert math_answer._verifier._server.pid == server.pid and server.poll() is None
