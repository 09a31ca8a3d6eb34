"""A spec model's field docstrings are its descriptions, exactly as pydantic's own
`use_attribute_docstrings` makes them (which costs every run about 0.05 s at import)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from parityspec.spec.base import StrictModel


class PydanticDocumented(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, strict=True,
        use_attribute_docstrings=True,
    )  # fmt: skip


def _models(base: type[BaseModel]) -> tuple[type[BaseModel], type[BaseModel]]:
    class Model(base):
        plain: int = 3
        """A default."""
        required: str
        """No default."""
        aliased: str | None = Field(None, alias="alias", max_length=4)
        """A Field, with an alias."""
        described: int = Field(1, description="its own")
        """Ignored: Field says it."""
        multiline: list[int] = []
        """Two
           lines."""
        undocumented: int = 0
        constant: ClassVar[int] = 5
        """A class variable, not a field."""

    class Derived(Model):
        plain: int
        """Declared again, without a default."""
        required: str = "given"

    return Model, Derived


def _seen(model: type[BaseModel]) -> Any:
    fields = {n: (f.description, repr(f.default), f.alias) for n, f in model.model_fields.items()}
    return fields, model.model_json_schema(by_alias=True)


def test_field_docstrings_describe_fields_as_pydantic_would():
    ours, theirs = _models(StrictModel), _models(PydanticDocumented)
    assert [_seen(m) for m in ours] == [_seen(m) for m in theirs]
    assert ours[0].model_fields["aliased"].description == "A Field, with an alias."
    assert ours[0].constant == 5
