"""The `math_answer` reward (GRPO's verifiable baseline) and the final-answer extraction and checking it
and the answer-clustering sources rely on.

`extract_answer` pulls one answer string out of a completion; `answers_match`
compares it with the gold answer: exact (normalised) string, then plain
numbers, then math-verify for everything symbolic (fractions, roots, sets,
intervals, equations). It never raises and never hangs: math-verify runs in a
killable worker process under a deadline (`symbolic_worker`), behind a pre-check
that refuses answers whose evaluation would explode (`explosive`, `magnitude`).

A training step checks many answers, so its checks are bounded as a whole
(`answer_check_budget`, opened by every reward call and by the episode source
around a step's rewards): a symbolic comparison that takes more than ORDINARY_S
of CPU is not ordinary, and all of its CPU time is charged to the step's
STEP_BUDGET_S; each comparison's CPU deadline is what is left of it, and once it
is spent the step's remaining symbolic comparisons are not run (over budget:
wrong, counted, logged). Whatever the model writes, checking a step's answers
then costs at most its ordinary comparisons + STEP_BUDGET_S of the worker's CPU
(+ one kill of its checker, a few milliseconds): on a machine with a CPU to
spare, that much wall time. CPU time, not wall time, because on a machine shared
with other work an ordinary comparison may wait seconds for a CPU: charged by
the clock, those would spend the budget and be refused. (A comparison starved
until the worker's wall cap spends the whole budget: the step stalls at most once.) Why a budget and not
parallel comparisons: the stall is CPU work, which more processes on the same
cores do not shorten; and the pre-check makes the common explosive class (huge
numbers, huge expansions) cost microseconds, so the budget is rarely touched by it.
"""

from __future__ import annotations

import atexit
import enum
import logging
import math
import re
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from fractions import Fraction
from functools import lru_cache

import torch

from .base import RewardSource
from .explosive import MAX_ANSWER_CHARS, refusal_reason
from .magnitude import weight
from .symbolic_worker import WALL_CAP_S, SymbolicVerifier

logger = logging.getLogger(__name__)

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
# A number: optional sign (not when it is a binary minus such as "3-4"),
# thousands groups "1,234,567", decimals "3.5" / ".5", fractions "3/4".
_NUMBER_RE = re.compile(
    r"(?:(?<![\w)\]}])-)?"  # a minus, unless it is binary as in "3-4" or "x-1"
    r"(?<![\w.])"  # not the tail of a word or of another number
    r"(?:\d{1,3}(?:,\d{3})+|\d+|(?=\.\d))(?:\.\d+)?(?:/\d+)?"
)
_PLAIN_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_LATEX_FRAC_RE = re.compile(r"^(-?)\\[dt]?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}$")


def _balanced_group(text: str, open_idx: int) -> str | None:
    """Content of the brace group opened at text[open_idx] == '{', or None if unbalanced."""
    depth = 0
    for i in range(open_idx, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_idx + 1 : i]
    return None


@lru_cache(maxsize=8192)
def extract_answer(text: str) -> str | None:
    """The final answer in a completion, or None. Cached: a step extracts each completion's
    answer for several consumers (the gold check, the vote sources, the answer metrics).

    Priority:
      1. the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces (nesting ok);
      2. the content of the last ``<answer>...</answer>``;
      3. the last number in the text: ints, decimals, negatives, "1,234" -> "1234",
         fractions "3/4".
    """
    if not text:
        return None
    for m in reversed(list(_BOX_RE.finditer(text))):
        content = _balanced_group(text, m.end() - 1)
        if content is not None and content.strip():
            return content.strip()
    tags = _ANSWER_TAG_RE.findall(text)
    if tags and tags[-1].strip():
        return tags[-1].strip()
    numbers = _NUMBER_RE.findall(text)
    if numbers:
        return numbers[-1].replace(",", "")
    return None


def _normalise(s: str) -> str:
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\[,!;: ]", "", s)  # LaTeX spacing commands
    s = re.sub(r"\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}", r"\1", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\s+", "", s)
    s = s.rstrip(".")
    return s.lower()


def _as_number(s: str) -> float | None:
    """A plain number ("1,000", "-2.5", "3/4", "\\frac{1}{2}") as a float, else None."""
    s = _normalise(s)
    if re.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    try:
        if _PLAIN_NUMBER_RE.match(s):
            return float(s)
        m = re.fullmatch(r"([+-]?\d+)/(\d+)", s)
        if m:
            return float(Fraction(int(m.group(1)), int(m.group(2)))) if int(m.group(2)) else None
        m = _LATEX_FRAC_RE.match(s)
        if m:
            num, den = float(m.group(2)), float(m.group(3))
            if den == 0:
                return None
            return (-1 if m.group(1) else 1) * num / den
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return None


_verifier = SymbolicVerifier()
atexit.register(_verifier.close)
_unverified = {"refused": 0, "timed_out": 0, "over_budget": 0}
_unverified_lock = threading.Lock()

ORDINARY_S = 0.25  # CPU s: an ordinary symbolic comparison takes 1–10 ms warm, ~0.2 s for a kind seen first
STEP_BUDGET_S = 0.9  # CPU s a step's slower comparisons may add, all together: of the 1 s a step may add
# (issue 24), the rest is for the pre-check of every answer and the kill of the last checker


class Verdict(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    REFUSED = "refused"  # the pre-check would not evaluate it (counts as wrong)
    TIMED_OUT = "timed_out"  # math-verify missed its deadline (counts as wrong)
    OVER_BUDGET = "over_budget"  # the step's budget was spent before it could run (counts as wrong)


UNVERIFIED = (Verdict.REFUSED, Verdict.TIMED_OUT, Verdict.OVER_BUDGET)


class AnswerCheckBudget:
    """The CPU time one step's slow symbolic comparisons may take together, and the verdicts
    the step has already reached (the vote rewards compare the same answers again)."""

    def __init__(self, seconds: float = STEP_BUDGET_S):
        self.left = seconds
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self._lock = threading.Lock()

    def deadline(self) -> float | None:
        """The CPU deadline of the next comparison, or None once the budget is spent."""
        with self._lock:
            return self.left if self.left > 0 else None

    def charge(self, seconds: float, finished: bool) -> None:
        """A comparison that missed its deadline or took more than ORDINARY_S costs all its CPU time."""
        if not finished or seconds > ORDINARY_S:
            with self._lock:
                self.left -= seconds


_budget: ContextVar[AnswerCheckBudget | None] = ContextVar("answer_check_budget", default=None)


@contextmanager
def answer_check_budget(seconds: float = STEP_BUDGET_S):
    """Bound the symbolic answer checks made inside (this thread / context) by one budget.

    Nested: the outermost budget governs (a step's rewards share the step's). Yields it."""
    current = _budget.get()
    if current is not None:
        yield current
        return
    budget = AnswerCheckBudget(seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _short(s: str, keep: int = 40) -> str:
    """A log-safe prefix of a model-written string."""
    return repr(s[:keep]) + (f"...({len(s)} chars)" if len(s) > keep else "")


def _count(verdict: Verdict, predicted: str, why: str) -> Verdict:
    with _unverified_lock:
        _unverified[verdict.value] += 1
    logger.debug("answer %s (%s): %s", verdict.value, why, _short(predicted))
    return verdict


def unverified_counts() -> dict[str, int]:
    """How many comparisons this process refused / timed out / ran over budget so far (all count as wrong)."""
    with _unverified_lock:
        return dict(_unverified)


def start_verifier() -> None:
    """Start the math-verify worker process now, so its import overlaps other work."""
    _verifier.start()


def check_answer(predicted: str | None, gold: str) -> Verdict:
    """`answers_match` with the reason for a False: no match, refused, timed out or over budget.

    Bounded time from any thread: the pre-check (`explosive.refusal_reason`) is
    linear in the answer, and math-verify runs in a worker process that is
    killed after `symbolic_worker.DEFAULT_DEADLINE_S` of CPU time, or what is left of the
    open `answer_check_budget` (and WALL_CAP_S of wall time on a starved machine).
    """
    if predicted is None or gold is None:
        return Verdict.NO_MATCH
    try:
        predicted, gold = str(predicted), str(gold)
        if not predicted.strip() or not gold.strip():
            return Verdict.NO_MATCH
        if len(predicted) > MAX_ANSWER_CHARS:  # before any regex work on it
            return _count(Verdict.REFUSED, predicted, "too long")
        if _normalise(predicted) == _normalise(gold):
            return Verdict.MATCH
        p_num, g_num = _as_number(predicted), _as_number(gold)
        if p_num is not None and g_num is not None:
            close = math.isclose(p_num, g_num, rel_tol=1e-6, abs_tol=1e-12)
            return Verdict.MATCH if close else Verdict.NO_MATCH
        # Both sides: the vote rewards compare two model-written answers.
        for side in (predicted, gold):
            reason = refusal_reason(side)
            if reason:
                return _count(Verdict.REFUSED, side, reason)
        return _symbolic(predicted, gold)
    except Exception:
        logger.debug("answers_match failed on %s vs %s", _short(str(predicted)), _short(str(gold)), exc_info=True)
        return Verdict.NO_MATCH


def _symbolic(predicted: str, gold: str) -> Verdict:
    """math-verify in the worker process, under the open budget (if any)."""
    budget = _budget.get()
    if budget is None:
        verdict, _ = _verifier.check(predicted, gold)
    else:
        known = budget.verdicts.get((predicted, gold))
        if known is not None:
            return known
        cpu_s = budget.deadline()
        if cpu_s is None:
            return _count(Verdict.OVER_BUDGET, predicted, "the step's answer-check budget is spent")
        started = time.monotonic()
        verdict, seconds = _verifier.check(predicted, gold, cpu_s)
        if verdict is None and time.monotonic() - started >= WALL_CAP_S:
            seconds = math.inf  # starved of CPU up to the wall cap: the rest of the step would be too
        budget.charge(seconds, finished=verdict is not None)
    if verdict is None:
        result = _count(Verdict.TIMED_OUT, predicted, "math-verify deadline")
    else:
        result = Verdict.MATCH if verdict else Verdict.NO_MATCH
    if budget is not None:
        budget.verdicts[(predicted, gold)] = result
    return result


def check_order(answer: str | None) -> float:
    """A sort key that puts the answers cheapest to check first: what evaluating them builds
    (`magnitude.weight`) × their length; inf for what the pre-check refuses anyway."""
    answer = answer or ""
    return math.inf if len(answer) > MAX_ANSWER_CHARS else weight(answer) * len(answer)


def answers_match(predicted: str | None, gold: str) -> bool:
    """True when `predicted` (e.g. from `extract_answer`) equals `gold` mathematically.

    Order: normalised string equality; if both are plain numbers, relative
    tolerance 1e-6 (decides, no further check: math-verify would compare the
    same two numbers); otherwise math-verify ``verify(parse(gold), parse(pred))``
    with both wrapped in ``$...$``, in a worker process under a hard deadline.
    An answer the pre-check refuses (power towers, huge numbers or expansions,
    absurd nesting or length), that misses the deadline or finds the open
    `answer_check_budget` spent is False and counted (`unverified_counts`).
    Never raises, never hangs, from any thread.
    """
    return check_answer(predicted, gold) is Verdict.MATCH


class MathAnswerReward(RewardSource):
    """GRPO's verifiable reward: 1 if the extracted final answer matches the gold one.

    An answer the pre-check refuses, that misses math-verify's deadline or that the
    step's answer-check budget has no time left for scores 0; `last_timeouts` is how
    many did in the latest call (logged as ``rewards/math_answer/timeouts``, those
    over budget also as ``.../over_budget``; this process's share under several ranks).
    One call's checks share one budget (`answer_check_budget`), or the step's when the
    episode source opened one.
    """

    name = "math_answer"
    needs_answers = True

    def __init__(self):
        self.last_timeouts = 0
        self.last_over_budget = 0
        start_verifier()  # its cold import overlaps model loading

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        golds = extras.get("answer") or [None] * len(completions)
        answers = [extract_answer(text) for text in completions]
        verdicts = [Verdict.NO_MATCH] * len(completions)
        # The cheapest-looking answers first: a budget spent by a few slow ones then leaves the
        # step's ordinary answers checked, not over budget.
        order = sorted(range(len(answers)), key=lambda i: check_order(answers[i]))
        with answer_check_budget():
            for i in order:
                if golds[i] is not None:
                    verdicts[i] = check_answer(answers[i], golds[i])
        self.last_timeouts = sum(v in UNVERIFIED for v in verdicts)
        self.last_over_budget = sum(v is Verdict.OVER_BUDGET for v in verdicts)
        return torch.tensor([float(v is Verdict.MATCH) for v in verdicts], dtype=torch.float32)

    def metrics(self) -> dict[str, float]:
        return {"timeouts": float(self.last_timeouts), "over_budget": float(self.last_over_budget)}
