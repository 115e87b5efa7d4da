"""Showing a refusal on a staff form: the messages of a DomainError or a schema, by their fields.

Each area keeps only the shape of its own nested rows (a mailing's audience, a campaign's
targets, a segment's conditions); putting messages on a field or on the form is written here.
"""

from __future__ import annotations

from collections.abc import Mapping

from wtforms import Field
from wtforms.form import BaseForm

from app.errors import DomainError


def flatten_messages(messages) -> list[str]:
    """Every message in a nest of dicts and lists (as services and schemas give them), in order."""
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in flatten_messages(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in flatten_messages(value)]
    return [str(messages)]


def add_errors(field: Field, messages) -> list[str]:
    """Show `messages` under `field`, after any it has; return them as added."""
    added = flatten_messages(messages)
    # A field's errors are an empty tuple until the form validates: build a new list.
    field.errors = [*field.errors, *added]
    return added


def add_form_errors(form: BaseForm, messages) -> list[str]:
    """Show `messages` above the form (they name no field of it); return them as added."""
    added = flatten_messages(messages)
    form.form_errors.extend(added)
    return added


def show_on_fields(form: BaseForm, details: Mapping) -> bool:
    """Show each entry of `details` under the field it names; True if any named a field.

    Entries naming no field are left out: the caller's fallback says the refusal as a whole.
    """
    shown = False
    for name, messages in details.items():
        if name in form:
            add_errors(form[name], messages)
            shown = True
    return shown


def show_errors(form: BaseForm, exc: DomainError, default_field: str | None = None) -> None:
    """Put a service's refusal under the fields it names.

    When it names none, its message goes under `default_field`, or above the form without one.
    """
    if show_on_fields(form, exc.details or {}):
        return
    if default_field is None:
        add_form_errors(form, exc.message)
    else:
        add_errors(form[default_field], exc.message)
