"""The package's import graph: no circle, a loader that is a leaf, an executor that is a leaf.

Every module of `selftaught` is parsed with `ast`, never imported, so the test is
fast and sees what an import would hide: imports inside functions count as much as
those at the top of a module, and relative imports are resolved against the
importing module's package. An edge goes to the module an import names
(`from .models import load_model` → `selftaught.models`; `from . import checkpoint`
→ `selftaught.checkpoint`), not to the packages above it, which Python runs first
but which are not what the code depends on.

The executor's sandbox scripts (`harness.py`, `zygote.py`) import their siblings as
top-level modules (`import protocol`): those run in a separate process and are not
imports of the package, so they add no edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "selftaught"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

LOADER = "selftaught.models"
LOADER_MAY_IMPORT = {"selftaught.errors", "selftaught.storage", "selftaught.checkpoint", "selftaught.data.arithmetic"}
"""What the loader may import from the rest of the package: modules that import nothing outside
this set (checked below). `data.arithmetic` is the text `tiny-random`'s tokenizer is trained on;
`checkpoint` reports a full disk through `storage`, which raises `errors.UserError`."""
EXECUTOR = "selftaught.executor"
EXECUTOR_MAY_IMPORT = {"selftaught.errors"}


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name → file, for every `.py` file under `root` (a package directory)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(base: str, level: int, importer: str, is_package: bool) -> str:
    """The absolute module a `from <dots><base> import ...` in `importer` refers to."""
    if level == 0:
        return base
    anchor = importer.split(".")
    if not is_package:
        anchor = anchor[:-1]  # a plain module's `.` is its package
    anchor = anchor[:len(anchor) - (level - 1)]
    return ".".join(anchor + ([base] if base else []))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module `name` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node.module or "", node.level, name, is_package)
            # `from pkg import sub` imports the module pkg.sub; `from mod import name`, mod.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph(root: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed path per strongly connected component of more than one module
    (Tarjan's algorithm, iterative), e.g. [a, b, a]."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_closed_path(graph, component) for component in components]


def _closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first member of `component` (breadth-first)."""
    start = min(component)
    previous = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def reaches(graph: dict[str, set[str]], starts: set[str]) -> set[str]:
    """Every module that importing `starts` imports, directly or not."""
    seen, todo = set(), list(starts)
    while todo:
        for child in graph[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def parent_packages(name: str) -> list[str]:
    """The packages Python runs before module `name`, below the top-level one."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def outside_imports(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """Module of `package` → the modules outside it that it imports directly."""
    return {name: {t for t in targets if not _within(t, package)}
            for name, targets in graph.items() if _within(name, package)}


GRAPH = import_graph()


def test_the_package_has_no_import_cycle():
    found = cycles(GRAPH)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_loader_imports_only_leaves():
    """`selftaught.models` (loading models, adapter checkpoints included) may import
    only the allow-listed modules, and those import nothing outside that set: the
    loader sits below everything that uses it (trainer, azr, evaluate, config...)."""
    assert LOADER in GRAPH
    offending = {name: sorted(targets - LOADER_MAY_IMPORT)
                 for name, targets in outside_imports(GRAPH, LOADER).items() if targets - LOADER_MAY_IMPORT}
    assert not offending, f"the loader imports modules above it: {offending}"
    for leaf in LOADER_MAY_IMPORT:
        assert leaf in GRAPH and GRAPH[leaf] <= LOADER_MAY_IMPORT, \
            f"{leaf} is allow-listed for the loader but imports {sorted(GRAPH[leaf] - LOADER_MAY_IMPORT)}"
        # Importing it first runs the packages above it (selftaught.data): those must stay low too.
        for package in parent_packages(leaf):
            above = {m for m in reaches(GRAPH, {package}) if GRAPH[m]}
            assert not above, f"importing {leaf} runs {package}, which imports {sorted(above)}, not leaves"


def test_the_executor_imports_nothing_of_the_package_but_errors():
    offending = {name: sorted(targets - EXECUTOR_MAY_IMPORT)
                 for name, targets in outside_imports(GRAPH, EXECUTOR).items() if targets - EXECUTOR_MAY_IMPORT}
    assert len(outside_imports(GRAPH, EXECUTOR)) > 5  # the sandbox modules were all found
    assert not offending, f"the executor imports: {offending}"


def test_the_graph_sees_relative_function_level_and_package_imports(tmp_path):
    """The checks above are only as good as the parser: a tiny package with each kind of import."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from .sub import deep\n",          # function-level, relative → module
        "b.py": "from pkg.sub.deep import thing\nimport pkg.c\n",  # absolute
        "c.py": "from . import a\n",                               # `from package import module`
        "sub/__init__.py": "from ..c import a\n",                  # level 2; `a` is a name of pkg.c
        "sub/deep.py": "import json\nfrom .. import b\n",           # outside modules add nothing
    }
    for name, text in files.items():
        (root / name).write_text(text)
    graph = import_graph(root, "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.sub.deep"}, "pkg.b": {"pkg.sub.deep", "pkg.c"},
                     "pkg.c": {"pkg.a"}, "pkg.sub": {"pkg.c"}, "pkg.sub.deep": {"pkg.b"}}
    found = cycles(graph)
    assert len(found) == 1 and found[0][0] == found[0][-1]
    assert set(found[0]) == {"pkg.a", "pkg.b", "pkg.c", "pkg.sub.deep"}
    assert all(b in graph[a] for a, b in zip(found[0], found[0][1:]))  # a real path
    assert reaches(graph, {"pkg.sub"}) == {"pkg.a", "pkg.b", "pkg.c", "pkg.sub.deep"}
    assert cycles({"x": {"y"}, "y": set()}) == []
    assert parent_packages("pkg.sub.deep") == ["pkg.sub"] and parent_packages("pkg.a") == []
