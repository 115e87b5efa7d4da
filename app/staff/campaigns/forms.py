"""The forms of the campaign pages, the API payloads made from them, and their error messages."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import request
from wtforms import DateField, FieldList, Form, FormField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice

from app.campaigns.models import CampaignKind, CampaignStatus
from app.staff.forms import add_errors, add_form_errors, flatten_messages

TIMEZONES = sorted(available_timezones())
CAMPAIGN_TEXT_FIELDS = (
    "title",
    "slug",
    "reference",
    "summary",
    "kind",
    "external_url",
    "status",
    "timezone",
    "letter_subject",
    "letter_body",
    "thank_you",
)
TARGET_FIELDS = ("name", "title", "organisation", "salutation", "email", "postal_address")


class TargetFields(Form):
    name = StringField("Name")
    title = StringField("Title")
    organisation = StringField("Organisation")
    salutation = StringField("Salutation", description="How the letter opens: Dear Mr. Lyons")
    email = StringField("Email address", description="Leave empty for a postal-only target.")
    postal_address = TextAreaField("Postal address", render_kw={"rows": 4})


class CampaignForm(Form):
    title = StringField("Title")
    slug = StringField("Web address name", description="Lower-case letters, digits and dashes.")
    reference = StringField("Reference", description="For example UA 034/25.")
    summary = TextAreaField(
        "Introduction and ask",
        description="Shown above the letter. Limited HTML (paragraphs, bold, links).",
        render_kw={"rows": 6},
    )
    kind = SelectField(
        "Kind", choices=[SelectChoice(k.value, k.value.title()) for k in CampaignKind]
    )
    external_url = StringField("External page", description="Where a click campaign sends people.")
    status = SelectField(
        "Status", choices=[SelectChoice(v.value, v.value.title()) for v in CampaignStatus]
    )
    deadline_date = DateField("Last day to act", description="Optional.")
    timezone = SelectField(
        "Time zone of the deadline",
        choices=TIMEZONES,
        default="UTC",
        validate_choice=False,
        description="The deadline is the end of that day in this time zone.",
    )
    letter_subject = StringField("Letter subject")
    letter_body = TextAreaField("Model letter", render_kw={"rows": 16})
    thank_you = TextAreaField("Thank-you message", render_kw={"rows": 3})
    targets = FieldList(FormField(TargetFields), min_entries=0)


class LetterForm(Form):
    letter_subject = StringField("Letter subject")
    letter_body = TextAreaField("Model letter", render_kw={"rows": 18})


# --- the form as the API's payload -----------------------------------------------------------


def blank_to_none(values: dict) -> dict:
    return {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items()}


def target_payload(fields: dict) -> dict:
    return blank_to_none({k: fields.get(k) or "" for k in TARGET_FIELDS})


def campaign_payload(form: CampaignForm, *, with_targets: bool) -> dict:
    payload = blank_to_none({k: request.form.get(k, "") for k in CAMPAIGN_TEXT_FIELDS})
    deadline = request.form.get("deadline_date", "").strip()
    if deadline:
        payload["deadline_date"] = deadline
    else:
        payload["deadline"] = None
    if with_targets:
        rows = [target_payload(entry.data) for entry in form.targets.entries]
        # An empty row is one the staff member did not use, not a target without a name.
        payload["targets"] = [row for row in rows if any(row.values())]
    return payload


# --- the schema's and the services' messages, on the form ------------------------------------


def show_campaign_errors(form: Form, messages: dict) -> None:
    """Put schema or service messages next to the fields they name; others on the form."""
    for name, value in messages.items():
        name = "deadline_date" if name == "deadline" else name
        field = form._fields.get(name)
        if name == "targets" and isinstance(value, dict):
            entries = form.targets.entries
            for index, target_messages in value.items():
                if isinstance(index, int) and index < len(entries):
                    show_campaign_errors(entries[index].form, target_messages)
            # FieldList keeps no errors of its own unless validated: the summary needs some.
            form.targets.errors = [entry.form.errors for entry in entries if entry.form.errors]
        elif field is not None:
            add_errors(field, [_plain(m) for m in flatten_messages(value)])
        else:
            add_form_errors(form, value)


def _plain(message: str) -> str:
    # Marshmallow's words for an empty required field, as a form would say it.
    if message in ("Field may not be null.", "Missing data for required field."):
        return "This field is required."
    return message
