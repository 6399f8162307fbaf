"""Final-answer extraction and checking for math problems (the GRPO baseline's reward).

`extract_answer` pulls one answer string out of a completion; `answers_match`
compares it with the gold answer: exact (normalised) string, then plain
numbers, then math-verify for everything symbolic (fractions, roots, sets,
intervals, equations). It never raises and never hangs: math-verify runs in a
killable worker process under a deadline (`symbolic_worker`), behind a pre-check
that refuses answers whose evaluation would explode (`explosive`).
"""

from __future__ import annotations

import atexit
import enum
import logging
import math
import re
import threading
from fractions import Fraction
from functools import lru_cache

from .explosive import MAX_ANSWER_CHARS, refusal_reason
from .symbolic_worker import SymbolicVerifier

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
_unverified = {"refused": 0, "timed_out": 0}
_unverified_lock = threading.Lock()


class Verdict(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    REFUSED = "refused"  # the pre-check would not evaluate it (counts as wrong)
    TIMED_OUT = "timed_out"  # math-verify missed its deadline (counts as wrong)


def _short(s: str, keep: int = 40) -> str:
    """A log-safe prefix of a model-written string."""
    return repr(s[:keep]) + (f"...({len(s)} chars)" if len(s) > keep else "")


def _count(verdict: Verdict, predicted: str, why: str) -> Verdict:
    with _unverified_lock:
        _unverified[verdict.value] += 1
    logger.debug("answer %s (%s): %s", verdict.value, why, _short(predicted))
    return verdict


def unverified_counts() -> dict[str, int]:
    """How many comparisons this process refused / timed out so far (both count as wrong)."""
    with _unverified_lock:
        return dict(_unverified)


def start_verifier() -> None:
    """Start the math-verify worker process now, so its import overlaps other work."""
    _verifier.start()


def check_answer(predicted: str | None, gold: str) -> Verdict:
    """`answers_match` with the reason for a False: no match, refused or timed out.

    Bounded time from any thread: the pre-check (`explosive.refusal_reason`) is
    linear in the answer, and math-verify runs in a worker process that is
    killed after `symbolic_worker.DEFAULT_DEADLINE_S` of CPU time (WALL_CAP_S of wall time).
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
        reason = refusal_reason(predicted)  # gold answers are data, not model-written
        if reason:
            return _count(Verdict.REFUSED, predicted, reason)
        verdict = _verifier.verify(predicted, gold)
        if verdict is None:
            return _count(Verdict.TIMED_OUT, predicted, "math-verify deadline")
        return Verdict.MATCH if verdict else Verdict.NO_MATCH
    except Exception:
        logger.debug("answers_match failed on %s vs %s", _short(str(predicted)), _short(str(gold)), exc_info=True)
        return Verdict.NO_MATCH


def answers_match(predicted: str | None, gold: str) -> bool:
    """True when `predicted` (e.g. from `extract_answer`) equals `gold` mathematically.

    Order: normalised string equality; if both are plain numbers, relative
    tolerance 1e-6 (decides, no further check: math-verify would compare the
    same two numbers); otherwise math-verify ``verify(parse(gold), parse(pred))``
    with both wrapped in ``$...$``, in a worker process under a hard deadline.
    An answer the pre-check refuses (power towers, huge factorials, absurd
    nesting or length) or that misses the deadline is False and counted
    (`unverified_counts`). Never raises, never hangs, from any thread.
    """
    return check_answer(predicted, gold) is Verdict.MATCH
