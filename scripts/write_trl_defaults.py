"""Write selftaught/trl_grpo_defaults.json: every field of TRL's GRPOConfig with its declared default.

    .venv-trl/bin/python scripts/write_trl_defaults.py        (make test-trl builds .venv-trl)

`selftaught train --trl-config` reads TRL configs where TRL is not installed, and must know which
fields sit at TRL's defaults (those pass silently, whatever they are) — so it reads this table.
tests/test_trl_config.py checks, in .venv-trl, that the table is the installed TRL's.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "selftaught" / "trl_grpo_defaults.json"


def declared_defaults() -> dict:
    """GRPOConfig's field → its declared default, as JSON values (enums by value)."""
    from trl import GRPOConfig

    defaults = {}
    for field in dataclasses.fields(GRPOConfig):
        if field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            value = None
        defaults[field.name] = value.value if isinstance(value, enum.Enum) else value
    return json.loads(json.dumps(defaults))


def table() -> dict:
    import transformers
    import trl

    return {"trl": trl.__version__, "transformers": transformers.__version__, "defaults": declared_defaults()}


def main() -> int:
    TABLE.write_text(json.dumps(table(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {TABLE} ({len(table()['defaults'])} fields)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
