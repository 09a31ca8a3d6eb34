"""The published JSON Schema, generated from the pydantic models."""

from __future__ import annotations

import json
from typing import Any

from parityspec.spec.models import Spec

SCHEMA_FILE = "schemas/parityspec.schema.json"
SCHEMA_ID = "https://parityspec.dev/schemas/parityspec.schema.json"


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
