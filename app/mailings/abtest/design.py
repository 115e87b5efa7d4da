"""Set up, change or remove a draft mailing's A/B test: the functions the API and staff app call.

Each variant is checked as the mailing is: it must render (merge fields, MJML, links) with its
changes, and no two variants may be the same mail.
"""

from __future__ import annotations

from marshmallow import ValidationError

from app.extensions import db
from app.mailings.abtest.assignment import sources_of_variant
from app.mailings.abtest.schemas import AbTestInSchema
from app.mailings.compose.rendering import freeze_sources
from app.mailings.compose.services import MailingError, require_draft
from app.mailings.delivery.control import record
from app.mailings.delivery.launch import known_custom_fields
from app.mailings.models import (
    VARIANT_FIELDS,
    VARIANT_LABELS,
    AbTest,
    Mailing,
    MailingVariant,
)
from mailers.merge import allowed_fields, validate_template
from mailers.render import FreezeError

_schema = AbTestInSchema()
TEMPLATE_FIELDS = ("subject", "preheader", "body_mjml", "body_text")


def configure_ab_test(mailing: Mailing, data: dict, *, actor: str) -> AbTest:
    """Give the draft an A/B test with these settings and variants, replacing any it had.

    Raises MailingError (422) with the problems by field; changes nothing then. The caller
    commits.
    """
    require_draft(mailing, "A/B tested")
    try:
        values = _schema.load(data)
    except ValidationError as exc:
        raise MailingError("The A/B test is invalid; see details.", exc.messages) from exc
    variants = [_cleaned(v) for v in values.pop("variants")]
    _check_variants(mailing, variants)
    if mailing.ab_test is None:
        mailing.ab_test = AbTest()
    test = mailing.ab_test
    for name, value in values.items():
        setattr(test, name, value)
    mailing.variants.clear()
    db.session.flush()  # the old variants go first: positions are unique per mailing
    mailing.variants.extend(
        MailingVariant(position=position, **variant) for position, variant in enumerate(variants)
    )
    db.session.flush()
    labels = ", ".join(v.label for v in mailing.variants)
    record(actor, "ab_test_configured", mailing, f"variants {labels}; {values['metric']}")
    return test


def remove_ab_test(mailing: Mailing, *, actor: str) -> None:
    """Make the draft a plain mailing again (the caller commits)."""
    require_draft(mailing, "changed")
    if mailing.ab_test is None:
        return
    mailing.ab_test = None
    mailing.variants.clear()
    db.session.flush()
    record(actor, "ab_test_removed", mailing)


def variant_settings(mailing: Mailing) -> list[dict]:
    return [
        {"label": v.label, **{name: getattr(v, name) for name in VARIANT_FIELDS}}
        for v in mailing.variants
    ]


def _cleaned(variant: dict) -> dict:
    cleaned = {}
    for name in VARIANT_FIELDS:
        value = variant.get(name)
        cleaned[name] = value.strip() or None if isinstance(value, str) else None
    return cleaned


def _check_variants(mailing: Mailing, variants: list[dict]) -> None:
    errors: dict = {}
    allowed = allowed_fields(known_custom_fields())
    seen: dict[tuple, int] = {}
    for index, variant in enumerate(variants):
        label = VARIANT_LABELS[index]
        problems: dict[str, list[str]] = {}
        for name in TEMPLATE_FIELDS:
            found = validate_template(variant[name] or "", allowed)
            if found:
                problems[name] = found
        if not problems:
            draft = MailingVariant(position=index, **variant)
            try:
                freeze_sources(
                    sources_of_variant(mailing, draft),
                    organisation_name=None,
                    postal_address=None,
                    custom_fields=known_custom_fields(),
                )
            except FreezeError as exc:
                problems["body_mjml"] = [str(exc)]
        key = tuple(variant[name] for name in VARIANT_FIELDS)
        if key in seen:
            problems.setdefault("variant", []).append(
                f"Variant {label} is the same as variant {VARIANT_LABELS[seen[key]]}: change at least "
                "one of subject, from name, preheader or body."
            )
        seen.setdefault(key, index)
        if problems:
            errors[str(index)] = problems
    if errors:
        raise MailingError("Some variants cannot be used; see details.", {"variants": errors})
