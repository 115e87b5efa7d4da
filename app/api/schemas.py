"""The base every API schema inherits: input PostgreSQL can store, for every endpoint at once.

PostgreSQL cannot store NUL in text, and an integer past a bigint fails the query; both used to
surface as 500s. `ClarionSchema` turns them into 422s with field messages, and documents the
integer bounds in the OpenAPI document so clients (and schemathesis) know them.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from app.security import MAX_BIGINT

NUL_MESSAGE = "Must not contain NUL characters."


class ClarionSchema(Schema):
    """A marshmallow Schema that refuses NUL in strings and integers no bigint can hold."""

    @pre_load
    def _refuse_nul(self, data, **kwargs):
        errors = _nul_errors(data)
        if errors:
            raise ValidationError(errors if isinstance(errors, dict) else {"_schema": errors})
        return data

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        _bound_integers(field_obj)


def _nul_errors(value):
    """Return marshmallow-shaped messages for every string holding NUL, or None."""
    if isinstance(value, str):
        return [NUL_MESSAGE] if "\x00" in value else None
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                found[key.replace("\x00", "\\0")] = [NUL_MESSAGE]
            elif (errors := _nul_errors(item)) is not None:
                found[key] = errors
        return found or None
    if isinstance(value, list | tuple):
        found = {index: errors for index, item in enumerate(value) if (errors := _nul_errors(item))}
        return found or None
    return None


def _bound_integers(field_obj: fields.Field) -> None:
    """Give an Integer field (also inside a List or Dict) the bigint range unless it has one."""
    if isinstance(field_obj, fields.List | fields.Tuple | fields.Dict):
        inners = getattr(field_obj, "tuple_fields", None) or [
            getattr(field_obj, "inner", None) or getattr(field_obj, "value_field", None)
        ]
        for inner in inners:
            if inner is not None:
                _bound_integers(inner)
        return
    if not isinstance(field_obj, fields.Integer):
        return
    ranges = [v for v in field_obj.validators if isinstance(v, validate.Range)]
    if any(r.max is not None for r in ranges) and any(r.min is not None for r in ranges):
        return
    field_obj.validators = [
        *field_obj.validators,
        validate.Range(
            min=-MAX_BIGINT - 1 if not any(r.min is not None for r in ranges) else None,
            max=MAX_BIGINT if not any(r.max is not None for r in ranges) else None,
        ),
    ]
