"""How big the exact numbers an answer's evaluation builds can get: an estimate before sympy runs.

math-verify hands an answer to sympy, which evaluates exactly what it can: ``\\binom{10^{8}}{5
\\cdot 10^{7}}`` is an integer of thirty million digits, ``(a+b+c+d+e+f+g)^{60}`` a polynomial
of ninety million terms. Either holds the worker for minutes. The shapes differ (powers,
factorials, binomials, Γ, finite sums and products, matrix powers, expansions), the cause is
one: a number or a polynomial whose *size* explodes. So instead of a pattern per shape,
`explosion` reads the answer into a small expression tree and propagates, bottom up, an upper
bound on the size of what evaluating each node builds:

- ``num``, ``den``: log10 of the height of the exact rational value (numerator, denominator);
- ``terms``: how many terms the node has once expanded (1 for a number or a symbol);
- ``value``: the exact integer, while it is small (literals and small arithmetic), so that
  ``\\binom{n}{k}`` can use min(k, n − k) as sympy does.

The rules are the textbook bounds: a product adds heights, a sum adds at most log10 2 to the
larger, a^b multiplies a's height by |b|, n! ≤ n^n (height ≤ n log10 n), C(n, k) ≤ 2^n and ≤
(e·n)^k, Γ(x) = (x − 1)!, a sum or product over k = lo..hi has hi − lo + 1 terms, an expanded
(t terms)^e has C(e + t − 1, t − 1) terms. An answer is refused when a node's height passes
MAX_DIGITS, its expansion MAX_TERMS or a sum or product MAX_REPEATS terms. Symbols stay symbols (x^{1000} builds nothing big).

What the reader does not understand (a command it does not know, text that is not an
expression) it treats as a symbol: it never refuses on a guess. Answers that explode in some
other way still run under the per-step budget (`math_answer.answer_check_budget`). Linear in
the answer's length (it is called after `explosive`'s bound on length and nesting).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_DIGITS = 10_000  # of any exact number built while checking; 1000! has 2,568, 7^{1000} 846
MAX_TERMS = 200  # of an expanded power: (x+1)^{99} has 100 (0.2 s in math-verify), (x+y+z)^{30} 496 (2 s)
MAX_REPEATS = 5_000  # terms of a finite sum or factors of a finite product, evaluated one by one
_EXACT_LIMIT = 10 ** 30  # exact integers are tracked up to here, then only their height
_LOG2 = math.log10(2)
_LOG_E = math.log10(math.e)


class TooBig(Exception):
    """An answer whose evaluation would build too large a number or expansion."""


@dataclass(frozen=True)
class Size:
    """An upper bound on what evaluating one node builds (see the module docstring)."""

    num: float = 0.0
    den: float = 0.0
    terms: float = 1.0
    numeric: bool = True  # no free symbol: sympy evaluates it exactly
    value: int | None = None  # the exact integer, when known and small
    sign: int = 1  # 1: ≥ 0, -1: ≤ 0, 0: unknown (a negative exponent inverts its base)
    dim: int = 1  # a matrix's number of rows (its powers grow with the dimension)

    @property
    def bound(self) -> float:
        """An upper bound on |value| (inf when it is astronomically large)."""
        if self.value is not None:
            return float(abs(self.value))
        return math.inf if self.num > 300 else 10.0 ** self.num


SYMBOL = Size(numeric=False, sign=0)


def _scaled(height: float, factor: float) -> float:
    """height × factor, where 0 × inf is 0 (1^{huge} = 1)."""
    return 0.0 if height == 0 or factor == 0 else height * factor


def _small(value: int | None) -> int | None:
    return value if value is not None and abs(value) < _EXACT_LIMIT else None


def checked(size: Size) -> Size:
    if max(size.num, size.den) > MAX_DIGITS:
        raise TooBig(f"a number of more than {MAX_DIGITS:,} digits")
    if size.terms > MAX_TERMS:
        raise TooBig(f"an expansion of more than {MAX_TERMS:,} terms")
    return size


# -- the rules ---------------------------------------------------------------------------------

def literal(text: str) -> Size:
    whole, _, fraction = text.partition(".")
    whole = whole.lstrip("0") or "0"
    digits = whole + fraction.rstrip("0")
    if fraction.strip("0"):  # a decimal, as the rational digits / 10^k
        return checked(Size(num=len(digits.lstrip("0") or "0"), den=len(fraction.rstrip("0"))))
    value = int(whole) if len(whole) <= 30 else None
    height = math.log10(value) if value else (len(whole) - 1 if value is None else 0.0)
    return checked(Size(num=height, value=value))


def add(a: Size, b: Size) -> Size:
    value = _small(a.value + b.value) if a.value is not None and b.value is not None else None
    numeric = a.numeric and b.numeric  # numbers fold into one; symbolic terms stay side by side
    return checked(Size(num=max(a.num + b.den, b.num + a.den) + _LOG2, den=a.den + b.den,
                        terms=1.0 if numeric else a.terms + b.terms, numeric=numeric, value=value,
                        sign=a.sign if a.sign == b.sign else 0, dim=max(a.dim, b.dim)))


def multiply(a: Size, b: Size) -> Size:
    value = _small(a.value * b.value) if a.value is not None and b.value is not None else None
    numeric = a.numeric and b.numeric
    return checked(Size(num=a.num + b.num, den=a.den + b.den, terms=1.0 if numeric else a.terms * b.terms,
                        numeric=numeric, value=value, sign=a.sign * b.sign, dim=max(a.dim, b.dim)))


def divide(a: Size, b: Size) -> Size:
    return checked(Size(num=a.num + b.den, den=a.den + b.num, terms=a.terms * b.terms,
                        numeric=a.numeric and b.numeric, sign=a.sign * b.sign, dim=max(a.dim, b.dim)))


def negate(a: Size) -> Size:
    return Size(a.num, a.den, a.terms, a.numeric, None if a.value is None else -a.value, -a.sign, a.dim)


def power(base: Size, exponent: Size) -> Size:
    if not exponent.numeric:  # a^x stays a^x
        return checked(Size(num=max(base.num, exponent.num), den=max(base.den, exponent.den),
                            numeric=False, dim=base.dim))
    e = exponent.bound
    if exponent.sign > 0:
        num, den = base.num, base.den
    elif exponent.sign < 0:  # a^{-e} = 1/a^e
        num, den = base.den, base.num
    else:  # either way round
        num = den = max(base.num, base.den)
    if base.dim > 1:  # entries of M^e grow like (d · max entry)^e
        num = num + math.log10(base.dim)
    # (t terms)^e expands into C(e + t − 1, t − 1) terms whose coefficients reach t^e
    expands = not base.numeric and base.terms > 1
    terms = _expansion_terms(e, base.terms) if expands else 1.0
    coefficients = _scaled(math.log10(base.terms), e) if expands else 0.0
    value = None
    if base.value is not None and exponent.value is not None and 0 <= exponent.value <= 100:
        value = _small(base.value ** exponent.value)
    return checked(Size(num=_scaled(num, e) + coefficients, den=_scaled(den, e), terms=terms,
                        numeric=base.numeric, value=value, sign=1 if base.sign > 0 else 0, dim=base.dim))


def factorial(n: Size) -> Size:
    if not n.numeric:
        return checked(Size(num=n.num, den=n.den, numeric=False, sign=0))
    v = n.bound
    value = None
    if n.value is not None and 0 <= n.value <= 25:
        value = math.factorial(n.value)
    return checked(Size(num=_scaled(v, math.log10(v)) if v > 1 else 0.0, value=value))


def binomial(n: Size, k: Size) -> Size:
    if not k.numeric:  # C(n, x) stays symbolic
        return checked(Size(num=max(n.num, k.num), den=max(n.den, k.den), numeric=False, sign=0))
    if not n.numeric:  # C(x, k) expands into a polynomial of degree k
        return checked(Size(num=factorial(k).num, terms=k.bound + 1, numeric=False, sign=0))
    if n.value is not None and k.value is not None:
        if 0 <= k.value <= n.value:
            smaller = min(k.value, n.value - k.value)
            exact = _small(math.comb(n.value, smaller)) if smaller <= 50 else None
            return checked(Size(num=_binomial_bound(n.value, smaller), value=exact))
        return Size(value=0)
    return checked(Size(num=min(_scaled(n.bound, _LOG2), _binomial_bound(n.bound, k.bound))))


def _binomial_bound(n: float, k: float) -> float:
    """log10 C(n, k) ≤ min(n log10 2, k log10(e n / k))."""
    if k <= 0 or n <= 0:
        return 0.0
    k = min(k, n)
    return min(_scaled(n, _LOG2), _scaled(k, _LOG_E + math.log10(max(n / k, 1.0))))


def _expansion_terms(e: float, t: float) -> float:
    """Terms of (a sum of t terms)^e expanded: C(e + t − 1, t − 1), exact while it is cheap to compute."""
    if e <= 10 ** 6 and t <= 64:
        return float(math.comb(int(e) + int(t) - 1, int(t) - 1))
    height = _binomial_bound(e + t - 1, t - 1)
    return math.inf if height > 300 else 10.0 ** height


def sqrt(a: Size, index: Size | None = None) -> Size:
    root = 2.0 if index is None or index.value is None or index.value < 2 else float(index.value)
    return checked(Size(num=a.num / root, den=a.den / root, terms=a.terms, numeric=a.numeric, sign=a.sign))


def repeated(body: Size, count: float, product: bool) -> Size:
    """A finite sum (or product) of `count` terms, each at most `body`."""
    if count > MAX_REPEATS:
        raise TooBig(f"a {'product' if product else 'sum'} of more than {MAX_REPEATS:,} terms")
    count = max(count, 1.0)
    if product:
        return checked(Size(num=_scaled(body.num, count), den=_scaled(body.den, count), terms=body.terms,
                            numeric=body.numeric, sign=0))
    return checked(Size(num=body.num + math.log10(count), den=_scaled(body.den, count),
                        terms=1.0 if body.numeric else body.terms * count, numeric=body.numeric, sign=body.sign))


def widest(sizes: list[Size]) -> Size:
    """Several values side by side (a tuple, a set, an equation's sides, a function's arguments)."""
    if len(sizes) == 1:
        return sizes[0]
    if not sizes:
        return SYMBOL
    return Size(num=max(s.num for s in sizes), den=max(s.den for s in sizes), terms=max(s.terms for s in sizes),
                numeric=all(s.numeric for s in sizes), sign=0, dim=max(s.dim for s in sizes))


# -- reading the answer ------------------------------------------------------------------------

_TOKEN = re.compile(r"\s+|(\d+(?:\.\d*)?|\.\d+)|(\\[A-Za-z]+|\\.)|(.)", re.S)
_IGNORED = {r"\left", r"\right", r"\,", r"\;", r"\:", r"\!", "\\ ", r"\quad", r"\qquad", r"\displaystyle",
            r"\big", r"\Big", r"\bigg", r"\Bigg", r"\limits", r"\nolimits", r"\%", r"\$", r"\circ"}
_TIMES = {"*", r"\cdot", r"\times", r"\ast"}
_DIVIDE = {"/", r"\div"}
_PLUS = {"+", r"\pm", r"\mp"}
_SEPARATORS = {",", ";", "=", "<", ">", ":", "&", "|", r"\\", r"\le", r"\leq", r"\ge", r"\geq", r"\ne", r"\neq",
               r"\to", r"\in", r"\cup", r"\cap", r"\setminus", r"\approx", r"\equiv", r"\implies", r"\iff",
               r"\lt", r"\gt", r"\mid", r"\rightarrow", r"\Rightarrow", r"\wedge", r"\vee", r"\land", r"\lor"}
_FRACTIONS = {r"\frac", r"\dfrac", r"\tfrac", r"\cfrac"}
_BINOMIALS = {r"\binom", r"\dbinom", r"\tbinom"}
_OPENERS = {"(": ")", "[": "]", "{": "}", r"\{": r"\}", r"\langle": r"\rangle", r"\lfloor": r"\rfloor",
            r"\lceil": r"\rceil", r"\lvert": r"\rvert", r"\|": r"\|"}
_CLOSERS = {")", "]", "}", r"\}", r"\rangle", r"\rfloor", r"\rceil", r"\rvert"}
_TEXT = {r"\text", r"\mathrm", r"\textbf", r"\mathbf", r"\mbox", r"\textit", r"\mathit", r"\operatorname",
         r"\mathbb", r"\mathcal", r"\boldsymbol", r"\vec", r"\hat", r"\bar", r"\overline", r"\tilde"}
_LCM = {"lcm"}


def _tokens(text: str) -> list[str]:
    out = []
    for m in _TOKEN.finditer(text):
        token = m.group(1) or m.group(2) or m.group(3)
        if token and token not in _IGNORED:
            out.append(token)
    return out


class _Reader:
    """Recursive descent over the tokens: expression > term > factor > power > atom."""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.i = 0
        self.bound: dict[str, Size] = {}  # index variables of enclosing sums and products

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.i += token is not None
        return token

    def expect_group(self) -> Size:
        """A brace group's content ({...}), or the single atom LaTeX allows in its place."""
        if self.peek() == "{":
            self.take()
            size = self.expression("}")
            if self.peek() == "}":
                self.take()
            return size
        return self.atom()

    def expression(self, closer: str | None = None) -> Size:
        parts = [self.sum(closer)]
        while (token := self.peek()) is not None and token != closer and token not in _CLOSERS:
            if token in _SEPARATORS:
                self.take()
            parts.append(self.sum(closer))
        return widest(parts)

    def sum(self, closer: str | None) -> Size:
        total = self.term(closer)
        while self.peek() in _PLUS or self.peek() == "-":
            op = self.take()
            right = self.term(closer)
            total = add(total, negate(right) if op == "-" else right)
        return total

    def term(self, closer: str | None) -> Size:
        product = self.factor(closer)
        while True:
            token = self.peek()
            if token is None or token == closer or token in _CLOSERS or token in _SEPARATORS \
                    or token in _PLUS or token == "-":
                return product
            if token in _TIMES:
                self.take()
                product = multiply(product, self.factor(closer))
            elif token in _DIVIDE:
                self.take()
                product = divide(product, self.factor(closer))
            elif token == r"\choose":  # {n \choose k}
                self.take()
                product = binomial(product, self.term(closer))
            else:
                start = self.i
                product = multiply(product, self.factor(closer))  # juxtaposition: 2x, 3\sqrt{2}
                if self.i == start:  # nothing this reader understands: skip it
                    self.take()

    def factor(self, closer: str | None) -> Size:
        if self.peek() == "-":
            self.take()
            return negate(self.factor(closer))
        if self.peek() in _PLUS:
            self.take()
            return self.factor(closer)
        return self.power()

    def power(self) -> Size:
        base = self.postfix(self.atom())
        while self.peek() in ("^", "_"):
            if self.take() == "_":  # a subscript names a symbol (x_1): nothing evaluates
                self.expect_group()
                continue
            exponent = self.postfix(self.signed_group())
            base = power(base, exponent)
        return self.postfix(base)

    def signed_group(self) -> Size:
        if self.peek() == "-":
            self.take()
            return negate(self.expect_group())
        return self.expect_group()

    def postfix(self, size: Size) -> Size:
        while self.peek() in ("!", "'"):
            if self.take() == "!":
                size = factorial(size)
        return size

    def atom(self) -> Size:
        token = self.take()
        if token is None:
            return SYMBOL
        if token[0].isdigit() or token[0] == ".":
            return literal(token)
        if token in _OPENERS:
            inner = self.expression(_OPENERS[token])
            if self.peek() in _CLOSERS or self.peek() == _OPENERS[token]:
                self.take()
            return inner
        if token == "|":
            inner = self.expression("|")
            if self.peek() == "|":
                self.take()
            return inner
        if token.startswith("\\"):
            return self.command(token)
        if token.isalpha():
            return self.bound.get(token, SYMBOL)
        return SYMBOL  # punctuation this reader does not know

    def command(self, name: str) -> Size:
        if name in _FRACTIONS:
            return divide(self.expect_group(), self.expect_group())
        if name in _BINOMIALS:
            return binomial(self.expect_group(), self.expect_group())
        if name == r"\sqrt":
            index = None
            if self.peek() == "[":
                self.take()
                index = self.expression("]")
                self.take()
            return sqrt(self.expect_group(), index)
        if name in (r"\sum", r"\prod"):
            return self.big_operator(name == r"\prod")
        if name in (r"\Gamma", r"\gamma") and self.peek() in ("(", "{"):
            argument = self.atom()
            return factorial(add(argument, literal("1")))  # Γ(x) = (x − 1)! ≤ x!
        if name == r"\begin":  # \begin{pmatrix} a & b \\ c & d \end{pmatrix}
            self.expect_group()
            return self.matrix()
        if name in _TEXT:
            words = self.expect_group_text()
            if name == r"\operatorname" and words in _LCM and self.peek() in _OPENERS:
                return self.lcm()
            return SYMBOL
        return SYMBOL  # \pi, \infty, \sin, \alpha, ...: a symbol or a function of what follows

    def expect_group_text(self) -> str:
        """The raw text of a brace group ({cm}, {lcm}), consumed."""
        if self.peek() != "{":
            return ""
        depth, words = 0, []
        while (token := self.take()) is not None:
            depth += token == "{"
            depth -= token == "}"
            if depth == 0:
                break
            if token != "{" or depth > 1:
                words.append(token)
        return "".join(words)

    def lcm(self) -> Size:
        """lcm(a, b, ...) ≤ a·b·...: the product of its arguments' heights."""
        closer = _OPENERS[self.take()]
        args = [self.sum(closer)]
        while self.peek() == ",":
            self.take()
            args.append(self.sum(closer))
        self.take()
        total = Size()
        for arg in args:
            total = multiply(total, Size(num=arg.num, numeric=arg.numeric, sign=0))
        return total

    def big_operator(self, product: bool) -> Size:
        """\\sum_{k=lo}^{hi} body (or \\prod): the body is read with k bounded by max(|lo|, |hi|)."""
        variable, low, high = None, None, None
        while self.peek() in ("_", "^"):
            if self.take() == "_":
                if self.peek() == "{":
                    self.take()
                    if (self.peek() or "").isalpha() and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1] == "=":
                        variable = self.take()
                        self.take()
                    low = self.expression("}")
                    self.take()
                else:
                    low = self.atom()
            else:
                high = self.expect_group()
        finite = low is not None and high is not None and low.numeric and high.numeric
        index = Size(num=max(low.num, high.num), sign=0) if finite else SYMBOL
        saved = self.bound.get(variable) if variable else None
        if variable:
            self.bound[variable] = index
        try:
            body = self.term(None)  # the summand: the product that follows
        finally:
            if variable:
                if saved is None:
                    self.bound.pop(variable, None)
                else:
                    self.bound[variable] = saved
        if not finite:  # \sum_{k=1}^{\infty} or a symbolic bound: sympy looks for a closed form
            return Size(num=body.num, den=body.den, terms=body.terms, numeric=False, sign=0)
        if low.value is not None and high.value is not None:
            count = high.value - low.value + 1
        else:
            count = low.bound + high.bound + 1
        return repeated(body, count, product)

    def matrix(self) -> Size:
        rows, entries = 1, []
        while (token := self.peek()) is not None and token != r"\end":
            if token == r"\\":
                rows += 1
                self.take()
            elif token == "&":
                self.take()
            else:
                start = self.i
                entries.append(self.sum(r"\end"))
                if self.i == start:
                    self.take()
        if self.take() == r"\end":
            self.expect_group_text()
        cell = widest(entries) if entries else Size()
        return Size(num=cell.num, den=cell.den, terms=cell.terms, numeric=cell.numeric, sign=0, dim=rows)


def _read(answer: str) -> Size:
    """The size of the whole answer; raises TooBig."""
    reader, parts = _Reader(answer), []
    while reader.peek() is not None:
        start = reader.i
        parts.append(reader.expression())
        if reader.i == start:
            reader.take()  # a stray closer
    return widest(parts)


_UNREADABLE = (RecursionError, ValueError, OverflowError, ZeroDivisionError, IndexError, TypeError)


def explosion(answer: str) -> str | None:
    """Why evaluating `answer` would build too large a number or expansion, or None.

    Never raises: what it cannot read it does not refuse."""
    try:
        _read(answer)
    except TooBig as why:
        return str(why)
    except _UNREADABLE:
        return None
    return None


def weight(answer: str) -> float:
    """How much evaluating `answer` builds (terms + digits / 100): a rough order for checking many
    answers, cheapest first. inf for what `explosion` refuses or cannot read."""
    try:
        size = _read(answer)
    except (TooBig, *_UNREADABLE):
        return math.inf
    return size.terms + (size.num + size.den) / 100
