"""The forms of the Mailings pages: the editor, a test send, and send now or later."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    FloatField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import Length, Optional

from app.campaigns.services import all_campaigns
from app.mailings.compose import checks, services
from app.mailings.compose.schemas import MAX_TEST_ADDRESSES

AUDIENCE_KEYS = (
    "include_lists",
    "exclude_lists",
    "include_tags",
    "exclude_tags",
    "segments",
    "exclude_segments",
)


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _ids_field(label: str) -> CheckboxesField:
    # The service says which ids exist ("No list with id 7."): one rule, not WTForms' choices.
    return CheckboxesField(label, coerce=int, validate_choice=False)


def _campaign_id(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class MailingForm(FlaskForm):
    name = StringField("Name (staff only)", validators=[Length(max=200)])
    subject = StringField("Subject", validators=[Length(max=998)])
    preheader = StringField("Preheader (the preview line after the subject)")
    from_name = StringField("From name")
    from_email = StringField("From address")
    reply_to = StringField("Reply-to address")
    layout = SelectField("Layout")
    body_mjml = TextAreaField("Body (MJML)", render_kw={"class": "code", "rows": 18})
    body_text = TextAreaField(
        "Plain-text part (optional: made from the HTML when empty)",
        render_kw={"class": "code", "rows": 6},
    )
    campaign_id = SelectField("Campaign its action links open", coerce=_campaign_id)
    send_rate = FloatField("Send rate (messages per second)", validators=[Optional()])
    include_lists = _ids_field("Members of any of these lists")
    include_tags = _ids_field("Supporters with any of these tags")
    segments = _ids_field("Plus these saved segments")
    exclude_lists = _ids_field("Except members of these lists")
    exclude_tags = _ids_field("Except supporters with these tags")
    exclude_segments = _ids_field("Except supporters in these saved segments")

    def set_choices(self) -> None:
        choices = checks.audience_choices()
        for key in ("include_lists", "exclude_lists"):
            self[key].choices = choices["lists"]
        for key in ("include_tags", "exclude_tags"):
            self[key].choices = choices["tags"]
        self.segments.choices = self.exclude_segments.choices = choices["segments"]
        self.layout.choices = [("", "No layout: the body below is the whole mail")] + [
            (name, name) for name in services.available_layouts()
        ]
        self.campaign_id.choices = [(None, "No campaign")] + [
            (c.id, f"{c.title} ({c.status.value})") for c in all_campaigns()
        ]

    def audience(self) -> dict:
        return {key: list(self[key].data or []) for key in AUDIENCE_KEYS}

    def mailing_data(self) -> dict:
        data = {
            key: self[key].data or ""
            for key in ("name", "subject", "preheader", "from_name", "from_email", "reply_to")
        }
        data |= {
            "layout": self.layout.data or None,
            "body_mjml": self.body_mjml.data or None,
            "body_text": self.body_text.data or None,
            "campaign_id": self.campaign_id.data,
            "send_rate": self.send_rate.data,
            "audience": self.audience(),
        }
        return data


class TestSendForm(FlaskForm):
    to = TextAreaField(
        f"Send a test to (one address per line, at most {MAX_TEST_ADDRESSES})",
        render_kw={"rows": 3},
    )
    as_email = StringField("Fill merge fields from the supporter with this email (optional)")


class SendForm(FlaskForm):
    at = StringField(
        "Send at (leave empty to send now)",
        render_kw={"type": "datetime-local"},
    )
    timezone = SelectField("Time zone", default="UTC")
