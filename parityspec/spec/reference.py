"""The spec reference in Markdown, generated from the models (the README embeds it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from parityspec.spec.composition import registries
from parityspec.spec.models import (
    DataSpec,
    ModelSpec,
    Split,
    Synthetic,
    TensorSpec,
)
from parityspec.spec.profiles import BUILTIN_PROFILES, ToleranceRegistry

START, END = "<!-- spec-reference:start -->", "<!-- spec-reference:end -->"


def reference_markdown(*, plugins: bool = False) -> str:
    """The README's reference (built-in kinds and types), or with every registered plugin."""
    covered = registries(plugins=plugins)
    sections: list[tuple[str, type[BaseModel]]] = [
        ("Top level", covered.spec),
        ("`data`", DataSpec),
        ("`data.split`", Split),
        ("`data.synthetic`", Synthetic),
        ("`model`", ModelSpec),
        ("`model.inputs[]`", TensorSpec),
        ("`report`", covered.report),
        ("`profiles.<name>`", covered.tolerances.profile),
    ]
    sections += [(f"backend `kind: {k}`", m.Spec) for k, m in sorted(covered.backends.items())]
    sections += [(f"check `type: {t}`", m.Spec) for t, m in sorted(covered.checks.items())]
    tables = [_model_table(title, model) for title, model in sections]
    return "\n\n".join([_profiles_table(covered.tolerances), *tables]) + "\n"


def _profiles_table(tolerances: ToleranceRegistry) -> str:
    """Each check's tolerances, declared in its module, with their built-in values."""
    lines = [
        "### Built-in tolerance profiles",
        "",
        "Each check type declares its tolerances; a user profile or the check itself may set "
        "any of them.",
        "",
        "| field | " + " | ".join(BUILTIN_PROFILES) + " | read by | meaning |",
        "|---|" + "---|" * len(BUILTIN_PROFILES) + "---|---|",
    ]
    for name, field in tolerances.fields.items():
        values = " | ".join(_value(field.values.value(p)) for p in BUILTIN_PROFILES)
        checks = ", ".join(f"`{t}`" for t in field.checks)
        lines.append(f"| `{name}` | {values} | {checks} | {_one_line(field.doc)} |")
    return "\n".join(lines)


def _value(value: float | None) -> str:
    return "off" if value is None else f"{value:g}"


def _model_table(title: str, model: type[BaseModel]) -> str:
    lines = [f"### {title}", ""]
    if model.__doc__:
        lines += [_one_line(model.__doc__), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    properties = model.model_json_schema(by_alias=True)["properties"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        default = "required" if info.is_required() else f"`{_default(info.default)}`"
        lines.append(
            f"| `{key}` | {_type_name(properties[key])} | {default} | "
            f"{_one_line(info.description)} |"
        )
    return "\n".join(lines)


def _default(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "{...}"
    return "null" if value is None else str(value).replace("'", "")


def _type_name(schema: dict[str, Any]) -> str:
    """A short type from a JSON Schema fragment: `int`, `csv \\| npz`, `list of str`."""
    return _schema_type(schema).replace("|", "\\|")


def _schema_type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "oneOf" in schema:
        return "one of the kinds below"
    kind = schema.get("type", "any")
    if kind == "array":
        items = schema.get("prefixItems") or [schema.get("items", {})]
        return "list of " + ", ".join(_schema_type(i) for i in items)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of name to " + _schema_type(schema["additionalProperties"])
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(kind, kind)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")
