"""Compose and send mailings: the functions the API and the CLI call (previews: previews.py).

Everything a mailing needs to render is checked when it is saved (merge fields, layout, MJML,
audience ids, addresses), so the "send" button only fails for reasons that arose later.
"""

from __future__ import annotations

from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError
from sqlalchemy import Select, func, select

from app.config import Settings
from app.db import utcnow
from app.errors import Invalid
from app.extensions import db
from app.mailings.compose.rendering import TEMPLATES_DIR, freeze_sources
from app.mailings.compose.schemas import MailingDataSchema
from app.mailings.delivery.campaign_gate import linked_campaign
from app.mailings.delivery.control import progress, record
from app.mailings.delivery.launch import (
    SendError,
    audience_of,
    known_custom_fields,
    request_send,
)
from app.mailings.models import Mailing, MailingStatus
from app.supporters.models import MailingList, Segment, Tag
from app.supporters.segments import SegmentDefinitionError
from mailers.merge import allowed_fields, validate_template
from mailers.message import InvalidAddress, check_address
from mailers.render import FreezeError

SEGMENT_KEYS = ("segments", "exclude_segments")
TEMPLATE_FIELDS = ("subject", "preheader", "body_mjml", "body_text")
OPTIONAL_TEXT = ("preheader", "from_name", "from_email", "reply_to", "layout", "body_mjml")
SENDER_FIELDS = ("from_name", "from_email", "reply_to")
EDITABLE = (
    "name",
    *TEMPLATE_FIELDS,
    *SENDER_FIELDS,
    "layout",
    "audience",
    "send_rate",
    "campaign_id",
)


class MailingError(Invalid, ValueError):
    """A request the mailing cannot take; `status` is the HTTP status the API answers with."""

    def __init__(
        self,
        message: str,
        details: dict | None = None,
        *,
        status: int = 422,
        code: str | None = None,
    ):
        code = code or ("validation_error" if status == 422 else "conflict")
        super().__init__(message, details, code=code, status=status)


_data_schema = MailingDataSchema()


# --- compose ---------------------------------------------------------------------------------


def create_mailing(data: dict) -> Mailing:
    """Validate and add a new draft mailing (the caller commits)."""
    values = {key: None for key in EDITABLE} | {"audience": {}} | _load(data)
    _validate(values)
    mailing = Mailing(**values)
    db.session.add(mailing)
    db.session.flush()
    return mailing


def update_mailing(mailing: Mailing, data: dict) -> Mailing:
    """Change some fields of a draft, validating the mailing as it would then be."""
    require_draft(mailing, "edited")
    changes = _load(data)
    values = {key: getattr(mailing, key) for key in EDITABLE} | changes
    _validate(values)
    for key, value in changes.items():
        setattr(mailing, key, value)
    db.session.flush()
    return mailing


def delete_mailing(mailing: Mailing) -> None:
    """Delete a draft; a mailing that was ever scheduled stays for its statistics."""
    require_draft(mailing, "deleted")
    db.session.delete(mailing)
    db.session.flush()


def available_layouts() -> list[str]:
    if not TEMPLATES_DIR.is_dir():
        return []
    return sorted(p.name for p in TEMPLATES_DIR.iterdir() if (p / "body.mjml").is_file())


def require_draft(mailing: Mailing, what: str) -> None:
    if not mailing.is_editable:
        raise MailingError(
            f"Only a draft can be {what}; this mailing is {mailing.status.value}.",
            {"status": mailing.status.value},
            status=409,
        )


def _load(data: dict) -> dict:
    try:
        values = _data_schema.load(data)
    except ValidationError as exc:
        raise MailingError("Some of the input is invalid; see details.", exc.messages) from exc
    for key in ("name", "subject"):
        if key in values:
            values[key] = values[key].strip()
    for key in OPTIONAL_TEXT:
        if key in values:
            values[key] = (values[key] or "").strip() or None
    if "body_text" in values and not (values["body_text"] or "").strip():
        values["body_text"] = None
    if "audience" in values:
        values["audience"] = {k: sorted(set(v)) for k, v in values["audience"].items() if v}
    return values


def _validate(values: dict) -> None:
    """Raise MailingError with every problem, by field, or return if the mailing would render."""
    errors: dict = {}
    if values["layout"] is not None and values["layout"] not in available_layouts():
        errors["layout"] = [
            f"Unknown layout {values['layout']!r}; choose one of: "
            + (", ".join(available_layouts()) or "(none installed)")
        ]
    if not values["layout"] and not values["body_mjml"]:
        errors["body_mjml"] = ["A mailing needs a body: give body_mjml or a layout."]
    if not values["name"]:
        errors["name"] = ["A mailing needs a name."]
    if not values["subject"]:
        errors["subject"] = ["A mailing needs a subject."]
    allowed = allowed_fields(known_custom_fields())
    for key in TEMPLATE_FIELDS:
        problems = validate_template(values[key] or "", allowed)
        if problems:
            errors.setdefault(key, []).extend(problems)
    for key in ("from_email", "reply_to"):
        if values[key]:
            problem = address_problem(values[key])
            if problem:
                errors[key] = [problem]
    audience_errors = _audience_problems(values["audience"] or {})
    if audience_errors:
        errors["audience"] = audience_errors
    campaign_id = values["campaign_id"]
    if campaign_id is not None and linked_campaign(campaign_id) is None:
        # Linking a draft is fine (staff write both at once); sending checks it is open.
        errors["campaign_id"] = [f"No campaign with id {campaign_id}."]
    if not errors:
        # A dry run of the real freeze surfaces MJML and link errors now, not at send time.
        try:
            # The organisation's name and address are left out: they are checked when it is sent.
            freeze_sources(
                values,
                organisation_name=None,
                postal_address=None,
                custom_fields=known_custom_fields(),
            )
        except FreezeError as exc:
            errors["body_mjml" if values["body_mjml"] else "layout"] = [str(exc)]
    if errors:
        raise MailingError("The mailing cannot be saved as it is; see details.", errors)


def _audience_problems(audience: dict) -> dict:
    problems = {}
    for key, model, label in (
        ("include_lists", MailingList, "list"),
        ("exclude_lists", MailingList, "list"),
        ("include_tags", Tag, "tag"),
        ("exclude_tags", Tag, "tag"),
        ("segments", Segment, "segment"),
        ("exclude_segments", Segment, "segment"),
    ):
        ids = audience.get(key) or []
        found = set(db.session.scalars(select(model.id).where(model.id.in_(ids)))) if ids else set()
        missing = [i for i in ids if i not in found]
        if missing:
            problems[key] = [f"No {label} with id {i}." for i in missing]
    return problems


def address_problem(address: str) -> str | None:
    """Return why an address cannot be used, or None (no DNS lookups)."""
    try:
        # test_environment lets the reserved .test domain through for local runs and tests.
        validate_email(address, check_deliverability=False, test_environment=True)
        check_address(address)
    except (EmailNotValidError, InvalidAddress) as exc:
        return f"{address!r} is not a usable email address: {exc}"
    return None


# --- send ------------------------------------------------------------------------------------


def audience_size(mailing: Mailing) -> int:
    """Count the subscribed supporters the audience selects right now."""
    try:
        query = audience_of(mailing)
    except SegmentDefinitionError as exc:
        raise MailingError(str(exc), {"audience": exc.details}) from exc
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def send_mailing(
    mailing: Mailing, settings: Settings, *, actor: str, at: datetime | None = None
) -> None:
    """Freeze and schedule a draft (now, or at the aware datetime `at`); the caller commits.

    A mailing whose audience selects nobody is refused: it would go straight to "sent" with no
    recipients, which is almost always a mistake in the audience.
    """
    require_draft(mailing, "sent")
    if at is not None and at.tzinfo is None:
        raise MailingError("Give the send time with a timezone.", {"at": ["No timezone."]})
    if audience_size(mailing) == 0:
        raise MailingError(
            "The audience is empty: no subscribed supporter matches it.",
            {"audience": ["The audience is empty."]},
        )
    later = at is not None and at > utcnow()  # a time already past sends now
    try:
        request_send(mailing, settings, at=at if later else None)
    except FreezeError as exc:
        raise MailingError(str(exc), {"body_mjml": [str(exc)]}) from exc
    except SendError as exc:
        raise MailingError(str(exc), exc.details, status=409, code=exc.code) from exc
    if later:
        record(actor, "mailing_scheduled", mailing, f"scheduled for {at.isoformat()}")
    else:
        record(actor, "mailing_sent", mailing, "sending now")


def status_report(mailing: Mailing) -> dict:
    """Return the mailing's progress with its schedule and start and finish times."""
    return progress(mailing).as_dict() | {
        "id": mailing.id,
        "scheduled_at": mailing.scheduled_at,
        "started_at": mailing.started_at,
        "finished_at": mailing.finished_at,
    }


def unfinished_mailings_using_segment(segment_id: int) -> list[int]:
    """Return the ids of the mailings not yet sent (draft, scheduled, paused) using a segment.

    Either way round: a segment the audience leaves out shapes it as much as one it adds.
    """
    open_statuses = (MailingStatus.DRAFT, MailingStatus.SCHEDULED, MailingStatus.PAUSED)
    rows = db.session.execute(
        select(Mailing.id, Mailing.audience).where(Mailing.status.in_(open_statuses))
    )
    return [
        mailing_id
        for mailing_id, audience in rows
        if any(segment_id in ((audience or {}).get(key) or []) for key in SEGMENT_KEYS)
    ]


def mailings_newest_first(status: str | None = None) -> Select:
    """Select mailings, newest first, of one status when given (the API pages it, the CLI lists)."""
    stmt = select(Mailing).order_by(Mailing.id.desc())
    if status:
        stmt = stmt.where(Mailing.status == status)
    return stmt
