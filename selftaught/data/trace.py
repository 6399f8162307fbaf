"""Worked execution traces of small Python functions, for the pretraining corpus.

A deduction solver has to run a program in its head. Small models learn that far
better from worked steps than from bare answers, so the built-in model's corpus
shows, inside `<think>`, how each call evaluates:

    n = 3
    total = 0
    i = 0: total = 0 + 0 * 4 = 0 + 0 = 0
    i = 1: total = 0 + 1 * 4 = 0 + 4 = 4
    i = 2: total = 4 + 2 * 4 = 4 + 8 = 12
    return total = 12

(one line per statement or loop iteration; a sum of three or more values is
shown as additions, one at a time). The trace comes from a small
interpreter over the function's syntax tree: each expression is rewritten step by
step (names replaced by their values, then every sub-expression whose parts are
all values replaced by its value, in parallel; a comprehension over a known
sequence expands into its elements). Every value is computed by Python itself
(`eval` of the sub-expression with the values in place), and the trace's final
value is checked against the real call. Mutation is not modelled (`xs.pop()` would
not change `xs` in the trace); the generator's templates do not mutate. A construct
the interpreter does not cover gives no trace (None), never a guess.

Only our own generated programs are traced (never model-written code).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import ItemsView, KeysView, ValuesView

_MAX_CHAIN = 12
"""Reduction steps per expression before giving up (keeps traces short)."""


class _Unsupported(Exception):
    pass


def _literal(value) -> ast.expr:
    """The syntax of `value` as a Python literal (views and ranges become lists)."""
    if isinstance(value, (ItemsView, KeysView, ValuesView, range)):
        value = list(value)
    text = repr(value)
    try:
        if ast.literal_eval(text) != value:
            raise _Unsupported(text)
    except (ValueError, SyntaxError) as error:
        raise _Unsupported(text) from error
    return ast.parse(text, mode="eval").body


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False
    return True


def _value(node: ast.expr):
    return eval(compile(ast.Expression(body=node), "<trace>", "eval"), {"__builtins__": builtins})


class _Substitute(ast.NodeTransformer):
    """Replace free names bound in `env` by their values."""

    def __init__(self, env: dict):
        self.env = env

    def visit_Name(self, node: ast.Name):
        return _literal(self.env[node.id]) if node.id in self.env else node


def _substitute(node: ast.expr, env: dict) -> ast.expr:
    return ast.fix_missing_locations(_Substitute(env).visit(_copy(node)))


def _copy(node: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(node), mode="eval").body


def _bind(target: ast.expr, value) -> dict:
    if isinstance(target, ast.Name):
        return {target.id: value}
    if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
        values = list(value)
        if len(values) != len(target.elts):
            raise _Unsupported("unpacking")
        return {e.id: v for e, v in zip(target.elts, values)}
    raise _Unsupported(ast.dump(target))


def _expand_comprehension(node: ast.expr) -> ast.expr:
    """[elt for t in <known sequence> if cond] → [elt(t=v1), elt(t=v2), ...]."""
    (generator,) = node.generators
    elements, keys = [], []
    for item in _value(generator.iter):
        bound = _bind(generator.target, item)
        if all(_value(_substitute(condition, bound)) for condition in generator.ifs):
            if isinstance(node, ast.DictComp):
                keys.append(_substitute(node.key, bound))
                elements.append(_substitute(node.value, bound))
            else:
                elements.append(_substitute(node.elt, bound))
    if isinstance(node, ast.DictComp):
        return ast.Dict(keys=keys, values=elements)
    return ast.List(elts=elements, ctx=ast.Load())  # a generator is shown as the list it yields


_COMPREHENSIONS = (ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp)


def _long_sum(node: ast.expr) -> bool:
    """`sum([a, b, c, ...])` of three or more values: shown as additions, one at a time."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sum"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], (ast.List, ast.Tuple))
            and len(node.args[0].elts) >= 3 and _is_literal(node.args[0]))


def _additions(values: list[ast.expr]) -> ast.expr:
    chain = values[0]
    for value in values[1:]:
        chain = ast.BinOp(left=chain, op=ast.Add(), right=value)
    return chain


def _reduce(node: ast.expr) -> ast.expr:
    """One parallel step: every sub-expression whose parts are values becomes a value."""
    if _is_literal(node):
        return node
    if _long_sum(node):
        return _additions(node.args[0].elts)
    if isinstance(node, _COMPREHENSIONS):
        if len(node.generators) != 1 or node.generators[0].is_async:
            raise _Unsupported("nested comprehension")
        generator = node.generators[0]
        if _is_literal(generator.iter) or not _free_names(generator.iter):
            return _expand_comprehension(node)  # e.g. over d.items(): no need to show the view
        generator.iter = _reduce(generator.iter)
        return node
    if isinstance(node, ast.IfExp):
        if _is_literal(node.test):
            return node.body if _value(node.test) else node.orelse
        node.test = _reduce(node.test)
        return node
    parts = _parts(node)
    if all(_is_literal(p) for p in parts):
        return _literal(_value(node))
    return _ReduceParts(parts).generic_visit(node)


class _ReduceParts(ast.NodeTransformer):
    """Reduce the given sub-expressions of a node (wherever they sit under it)."""

    def __init__(self, parts: list[ast.expr]):
        self.ids = {id(p) for p in parts}

    def visit(self, node):
        return _reduce(node) if id(node) in self.ids else self.generic_visit(node)


def _parts(node: ast.expr) -> list[ast.expr]:
    """The sub-expressions that must be values before `node` can be evaluated."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            head = []
        elif isinstance(node.func, ast.Attribute):
            head = [node.func.value]
        else:
            raise _Unsupported("call target")
        if node.keywords:
            raise _Unsupported("keyword arguments")
        return head + list(node.args)
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Slice):
            bounds = [b for b in (node.slice.lower, node.slice.upper, node.slice.step) if b is not None]
            return [node.value] + bounds
        return [node.value, node.slice]
    if isinstance(node, (ast.BinOp, ast.BoolOp, ast.Compare, ast.UnaryOp, ast.List, ast.Tuple, ast.Set,
                         ast.Dict)):
        return [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]
    raise _Unsupported(type(node).__name__)


_BUILTIN_NAMES = frozenset(dir(builtins))


def _free_names(node: ast.expr) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id not in _BUILTIN_NAMES}


def _chain(node: ast.expr, env: dict, show_source: bool = True) -> tuple[str, object]:
    """'expr = expr with values = ... = value', and the value (without the
    source expression when `show_source` is False: inside loops it repeats)."""
    current = _substitute(node, env)
    steps = [ast.unparse(node) if show_source else ast.unparse(current)]
    for _ in range(_MAX_CHAIN):
        text = ast.unparse(current)
        if text != steps[-1]:
            steps.append(text)
        if _is_literal(current):
            return " = ".join(steps), ast.literal_eval(current)
        current = ast.fix_missing_locations(_reduce(current))
    raise _Unsupported("too many steps")


class _Return(Exception):
    def __init__(self, value):
        self.value = value


def _run(statements: list[ast.stmt], env: dict, lines: list[str], in_loop: bool = False) -> None:
    show = not in_loop
    for statement in statements:
        if isinstance(statement, ast.Return) and statement.value is not None:
            text, value = _chain(statement.value, env, show)
            lines.append(f"return {text}")
            raise _Return(value)
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            text, value = _chain(statement.value, env, show)
            name = statement.targets[0].id
            lines.append(f"{name} = {text}")
            env[name] = value
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            expanded = ast.BinOp(left=ast.Name(id=name, ctx=ast.Load()), op=statement.op, right=statement.value)
            text, value = _chain(ast.fix_missing_locations(expanded), env, show)
            lines.append(f"{name} = {text}")
            env[name] = value
        elif isinstance(statement, ast.If):
            text, value = _chain(statement.test, env, show)
            lines.append(f"if {text}")
            _run(statement.body if value else statement.orelse, env, lines, in_loop)
        elif isinstance(statement, ast.For) and not statement.orelse:
            for item in _value(_substitute(statement.iter, env)):
                env.update(_bind(statement.target, item))
                body: list[str] = []
                try:
                    _run(statement.body, env, body, in_loop=True)
                finally:  # a return inside the loop still shows its iteration, then propagates
                    lines.append(f"{ast.unparse(statement.target)} = {item!r}: " + "; ".join(body))
        else:
            raise _Unsupported(type(statement).__name__)


def worked_trace(program: str, args_source: str) -> str | None:
    """The worked steps of `f(args_source)` for a single-function `program`, one
    line per statement, or None when the program uses a construct the tracer does
    not cover or the trace would disagree with the real call."""
    try:
        tree = ast.parse(program)
        (function,) = tree.body
        if not isinstance(function, ast.FunctionDef) or function.args.vararg or function.args.kwarg \
                or function.args.kwonlyargs or function.args.defaults or function.decorator_list:
            return None
        args = ast.literal_eval(f"({args_source},)")
        names = [a.arg for a in function.args.args]
        if len(args) != len(names):
            return None
        env = dict(zip(names, args))
        lines = [", ".join(f"{name} = {value!r}" for name, value in env.items())]
        try:
            _run(function.body, env, lines)
        except _Return as returned:
            namespace: dict = {}
            exec(program, namespace)  # our own generated program (see the module docstring)
            if repr(returned.value) != repr(namespace["f"](*args)):
                return None
            return "\n".join(lines)
        return None  # fell off the end (returns None): nothing worth showing
    except (_Unsupported, SyntaxError, ValueError, TypeError, ArithmeticError, IndexError, KeyError,
            AttributeError, RecursionError):
        return None
