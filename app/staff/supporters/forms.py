"""The forms of the Supporters pages: a supporter, unsubscribe and erase, lists, tags, segments."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from app.supporters.behaviours import BEHAVIOUR_LIMIT
from app.supporters.models import SubscriptionStatus
from app.supporters.segments import DATE_OPS, TEXT_OPS

CUSTOM_FIELD_NAME = r"^[\w\- ]{1,100}$"  # the segment engine's rule for custom.<name>


def _stripped(value) -> str:
    # A field left out of a forged or truncated form reads as empty, never None.
    return (value or "").strip()


STRIPPED = [_stripped]


# --- one supporter ---------------------------------------------------------------------------


class CustomFieldForm(Form):
    name = StringField(
        "Field name",
        filters=STRIPPED,
        validators=[
            Optional(),
            Regexp(CUSTOM_FIELD_NAME, message="Use letters, digits, _ - and spaces (up to 100)."),
        ],
    )
    value = StringField("Value", filters=STRIPPED, validators=[Length(max=2000)])


class SupporterForm(FlaskForm):
    first_name = StringField("First name", filters=STRIPPED, validators=[Length(max=200)])
    last_name = StringField("Last name", filters=STRIPPED, validators=[Length(max=200)])
    postcode = StringField("Postcode", filters=STRIPPED, validators=[Length(max=40)])
    lists = SelectMultipleField("Lists", coerce=int)
    tags = StringField("Tags", filters=STRIPPED, validators=[Length(max=2000)])
    custom_fields = FieldList(FormField(CustomFieldForm), min_entries=1)

    def validate_tags(self, field):
        too_long = [name for name in tag_names(field.data) if len(name) > 100]
        if too_long:
            raise ValidationError("A tag name is at most 100 characters.")


def tag_names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


class UnsubscribeForm(FlaskForm):
    reason = StringField(
        "Reason (kept in the consent history)", filters=STRIPPED, validators=[Length(max=500)]
    )


class EraseForm(FlaskForm):
    confirm_email = StringField(
        "Type the supporter's email address to confirm",
        filters=STRIPPED,
        validators=[DataRequired()],
    )


# --- lists and tags --------------------------------------------------------------------------


class NameForm(FlaskForm):
    name = StringField("Name", filters=STRIPPED, validators=[DataRequired(), Length(max=100)])


class ListForm(FlaskForm):
    name = StringField("Name", filters=STRIPPED, validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", filters=STRIPPED, validators=[Length(max=2000)])


# --- saved segments --------------------------------------------------------------------------

OP_LABELS = {
    "eq": "is",
    "neq": "is not",
    "in": "is one of (comma-separated)",
    "contains": "contains",
    "starts_with": "starts with",
    "is_empty": "is empty",
    "not_empty": "is not empty",
    "before": "is before (date)",
    "after": "is after (date)",
}
NO_VALUE_OPS = ("is_empty", "not_empty")


class ConditionForm(Form):
    field = SelectField("Field", validate_choice=False)
    op = SelectField(
        "Test", choices=[SelectChoice(op, OP_LABELS[op]) for op in TEXT_OPS + DATE_OPS]
    )
    value = StringField("Value", filters=STRIPPED, validators=[Length(max=10_000)])


class BehaviourForm(Form):
    # validate_choice off: the engine says which ids and types exist, next to the field.
    type = SelectField("Behaviour", validate_choice=False)
    campaign_id = SelectField("Campaign", validate_choice=False)
    mailing_id = SelectField("Mailing", validate_choice=False)
    last_mailings = StringField(
        "Last N mailings", default="5", filters=STRIPPED, validators=[Length(max=20)]
    )
    months = StringField("Months", default="12", filters=STRIPPED, validators=[Length(max=20)])


class SegmentForm(FlaskForm):
    name = StringField("Name", filters=STRIPPED, validators=[DataRequired(), Length(max=200)])
    include_lists = SelectMultipleField("In any of these lists", coerce=int)
    exclude_lists = SelectMultipleField("Not in any of these lists", coerce=int)
    include_tags = SelectMultipleField("Having any of these tags", coerce=int)
    exclude_tags = SelectMultipleField("Having none of these tags", coerce=int)
    statuses = SelectMultipleField(
        "Subscription statuses",
        choices=[SelectChoice(s.value) for s in SubscriptionStatus],
        default=[SubscriptionStatus.SUBSCRIBED.value],
    )
    match = SelectField(
        "Conditions to meet",
        choices=[SelectChoice("all", "All of them"), SelectChoice("any", "Any one of them")],
    )
    conditions = FieldList(FormField(ConditionForm), min_entries=1, max_entries=50)
    behaviour = FieldList(FormField(BehaviourForm), min_entries=1, max_entries=BEHAVIOUR_LIMIT)
