"""`Strict`: the pydantic base of every settings section (training, AZR, eval).

Unknown keys are errors, so a typo such as `lerning_rate` stops the run instead of being
ignored; assignments are validated like construction; each field's attribute docstring is
its documentation (`config.field_reference`, the README's config table, `--help-config`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)
