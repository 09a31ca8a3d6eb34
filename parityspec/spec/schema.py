"""The published JSON Schema, generated from the pydantic models.

The committed file (`schema --write`, `schema --check`) covers the built-in backend kinds and
check types only, so an installed plugin never makes it stale; printing the schema covers
every registered one and names the plugins.
"""

from __future__ import annotations

import json
from typing import Any

from parityspec.spec.composition import registries

SCHEMA_FILE = "schemas/parityspec.schema.json"
SCHEMA_ID = "https://parityspec.dev/schemas/parityspec.schema.json"


def json_schema(*, plugins: bool = False) -> dict[str, Any]:
    covered = registries(plugins=plugins)
    schema = covered.spec.model_json_schema(by_alias=True, mode="validation")
    if covered.plugins:
        schema["description"] += f" With the plugins {', '.join(covered.plugins)}."
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text(*, plugins: bool = False) -> str:
    """The schema as committed (`plugins=False`), or of every registered backend and check."""
    text = json.dumps(json_schema(plugins=plugins), indent=2, sort_keys=True, ensure_ascii=False)
    return text + "\n"
