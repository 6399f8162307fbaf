"""The README's module map names every module of the package, and nothing that is not there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "selftaught"
NOT_MAPPED = {"__init__.py", "__main__.py"}


def module_map() -> dict[str, str]:
    """First-column entry → the row's text, from the table under the README's '## Design'."""
    design = ROOT.joinpath("README.md").read_text().split("## Design", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in design.splitlines():
        match = re.match(r"\| `([^`]+)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_module_and_package_has_a_row_and_every_row_exists():
    rows = module_map()
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name not in NOT_MAPPED}
    packages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert sorted(modules | packages) == sorted(rows), "README module map and selftaught/ differ"


def test_every_module_of_a_package_is_named_in_its_row():
    for entry, text in module_map().items():
        if not entry.endswith("/"):
            continue
        named = set(re.findall(r"`([a-z_0-9]+\.py)`", text))
        present = {p.name for p in (PACKAGE / entry).glob("*.py") if p.name not in NOT_MAPPED}
        assert named == present, f"{entry}: the row names {sorted(named)}, the folder has {sorted(present)}"


ALLOWED_UPWARD = {("selftaught.config", "selftaught.azr.config")}
"""The one import that points down the table: TrainConfig embeds AZR's settings section (a leaf)."""


def test_every_row_imports_only_rows_above_it():
    from test_import_graph import import_graph

    entries = list(module_map())

    def row_of(module: str) -> str:
        top = module.split(".")[1]
        return f"{top}/" if (PACKAGE / top).is_dir() else f"{top}.py"

    position = {entry: k for k, entry in enumerate(entries)}
    for module, imported in import_graph().items():
        if module in ("selftaught", "selftaught.__main__"):  # not in the map (`python -m selftaught` = cli)
            continue
        for target in imported:
            if target == "selftaught" or (module, target) in ALLOWED_UPWARD:
                continue
            here, there = row_of(module), row_of(target)
            assert position[there] <= position[here], f"{module} imports {target}: row {there} must come above {here}"
