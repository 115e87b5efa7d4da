"""The forms of the Mailings pages: the editor, an A/B test, a test send, and send now or later."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    FloatField,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import InputRequired, Length, Optional

from app.campaigns.services import all_campaigns
from app.mailings.abtest.results import METRIC_NAMES
from app.mailings.compose import checks, services
from app.mailings.compose.schemas import MAX_TEST_ADDRESSES
from app.mailings.models import (
    MAX_VARIANTS,
    VARIANT_FIELDS,
    VARIANT_LABELS,
    AbMetric,
    AbSelection,
    AbTest,
)

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


class VariantForm(Form):
    """What one variant changes; a field left empty is the mailing's own (variant A's)."""

    subject = StringField("Subject", validators=[Length(max=998)])
    from_name = StringField("From name", validators=[Length(max=200)])
    preheader = StringField("Preheader", validators=[Length(max=300)])
    body_mjml = TextAreaField("Body (MJML)", render_kw={"class": "code variant-body", "rows": 8})
    body_text = TextAreaField("Plain-text part", render_kw={"rows": 4})

    def changes(self) -> dict:
        return {name: self[name].data or None for name in VARIANT_FIELDS}


WAIT_UNITS = {"minutes": 1, "hours": 60}
# Rates are shown and typed in percent; the services keep fractions (0.2 = 20 %).
PERCENT_FIELDS = {
    "test_percent": "test_fraction",
    "min_confidence": "min_confidence",
    "max_unsubscribe_percent": "max_unsubscribe_rate",
    "max_complaint_percent": "max_complaint_rate",
}


def _percent(fraction: float | None) -> float | int | None:
    if fraction is None:
        return None
    value = round(fraction * 100, 4)  # 0.07 * 100 is 7.000000000000001
    return int(value) if value.is_integer() else value


class AbTestForm(FlaskForm):
    """A draft's A/B test: A is the mailing as written, B-E what they change."""

    # B, C, D, E: a variant is in the test when anything in it (or in a later one) is filled.
    variants = FieldList(
        FormField(VariantForm), min_entries=MAX_VARIANTS - 1, max_entries=MAX_VARIANTS - 1
    )
    test_percent = FloatField(
        "Test share (% of the audience)",
        default=20,
        validators=[InputRequired("Give the share of the audience that tests, in percent.")],
    )
    wait = IntegerField(
        "Wait before picking the winner",
        default=4,
        validators=[InputRequired("Say how long the test runs before the winner is picked.")],
    )
    wait_unit = SelectField("Unit", choices=list(zip(WAIT_UNITS, WAIT_UNITS, strict=True)))
    metric = RadioField(
        "The winner is the variant with the most",
        choices=[(m.value, METRIC_NAMES[m]) for m in AbMetric],
        default=AbMetric.CLICKS.value,
    )
    selection = RadioField(
        "Who picks the winner",
        choices=[
            (AbSelection.AUTO.value, "Clarion, automatically when the wait is over"),
            (AbSelection.MANUAL.value, "Staff, by hand: the rest waits until someone picks"),
        ],
        default=AbSelection.AUTO.value,
    )
    min_confidence = FloatField(
        "Minimum confidence (% probability to be best, optional)", validators=[Optional()]
    )
    max_unsubscribe_percent = FloatField(
        "Stop a variant whose unsubscribe rate passes (%, optional)", validators=[Optional()]
    )
    max_complaint_percent = FloatField(
        "Stop a variant whose complaint rate passes (%, optional)", validators=[Optional()]
    )
    breaker_min_sent = IntegerField(
        "…once it was sent to at least (recipients)",
        default=100,
        validators=[InputRequired("Say after how many sent the limits apply.")],
    )

    def fill_from(self, test: AbTest, variants: list[dict]) -> None:
        """Show a saved test (on GET): its settings, and B-E as they are stored."""
        self.test_percent.data = _percent(test.test_fraction)
        hours, minutes = divmod(test.wait_minutes, 60)
        unit = "hours" if hours and not minutes else "minutes"
        self.wait.data = test.wait_minutes // WAIT_UNITS[unit]
        self.wait_unit.data = unit
        self.metric.data = test.metric
        self.selection.data = test.selection
        self.min_confidence.data = _percent(test.min_confidence)
        self.max_unsubscribe_percent.data = _percent(test.max_unsubscribe_rate)
        self.max_complaint_percent.data = _percent(test.max_complaint_rate)
        self.breaker_min_sent.data = test.breaker_min_sent
        for entry, variant in zip(self.variants.entries, variants[1:], strict=False):
            for name in VARIANT_FIELDS:
                entry.form[name].data = variant[name] or ""

    def ab_test_data(self) -> dict:
        """The test as configure_ab_test takes it."""
        changes = [entry.form.changes() for entry in self.variants.entries]
        # Up to the last variant with a change, at least B: an empty variant in between is
        # sent too, so the service says where it is ("the same as variant A").
        used = max((i for i, c in enumerate(changes) if any(c.values())), default=0) + 1

        def fraction(name: str) -> float | None:
            value = self[name].data
            return None if value is None else value / 100

        return {
            "test_fraction": fraction("test_percent"),
            "wait_minutes": self.wait.data * WAIT_UNITS.get(self.wait_unit.data, 1),
            "metric": self.metric.data,
            "selection": self.selection.data,
            "min_confidence": fraction("min_confidence"),
            "max_unsubscribe_rate": fraction("max_unsubscribe_percent"),
            "max_complaint_rate": fraction("max_complaint_percent"),
            "breaker_min_sent": self.breaker_min_sent.data,
            "variants": [{}, *changes[:used]],
        }


def variant_label(index: int) -> str:
    """The letter of the form's variants entry `index` (entry 0 is B: A is the mailing)."""
    return VARIANT_LABELS[index + 1]


class TestSendForm(FlaskForm):
    to = TextAreaField(
        f"Send a test to (one address per line, at most {MAX_TEST_ADDRESSES})",
        render_kw={"rows": 3},
    )
    as_email = StringField("Fill merge fields from the supporter with this email (optional)")
    # Offered only for an A/B-tested mailing (the view sets the choices); the view checks it.
    variant = SelectField("Variant to send", validate_choice=False)


class SendForm(FlaskForm):
    at = StringField(
        "Send at (leave empty to send now)",
        render_kw={"type": "datetime-local"},
    )
    timezone = SelectField("Time zone", default="UTC")
