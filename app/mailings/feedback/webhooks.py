"""Machine-to-machine endpoints where mail services report bounces and complaints.

No cookies, no CSRF: each request proves itself (an SNS signature or an HMAC of the body).
A request that fails its check changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime

from flask import Blueprint, current_app, request
from marshmallow import ValidationError, fields, validate, validates_schema

from app.api.errors import error_body
from app.api.schemas import ClarionSchema as Schema
from app.extensions import db
from app.mailings.feedback import sns
from app.mailings.feedback.bounces import BounceKind, record_bounce
from app.security import parse_json

log = logging.getLogger(__name__)

webhooks_blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Bodies are capped for every /webhooks/ route in app/security.py.
SES_BOUNCE_KINDS = {
    "Permanent": BounceKind.HARD,
    "Transient": BounceKind.SOFT,
    "Undetermined": BounceKind.SOFT,
}
SIGNATURE_HEADER = "X-Clarion-Signature"


def _settings():
    return current_app.config["CLARION"]


@webhooks_blueprint.post("/ses")
def ses_notification():
    """Receive an Amazon SES bounce or complaint through an SNS HTTPS subscription."""
    settings = _settings()
    message = _json_object(request.get_data())
    if message is None:
        return error_body(400, "invalid_json", "The request body is not a JSON object.")
    if not settings.ses_topic_arns:
        return error_body(
            401, "unauthorized", "SES notifications are not configured (set SES_TOPIC_ARNS)."
        )
    if message.get("TopicArn") not in settings.ses_topic_arns:
        return error_body(401, "unauthorized", "The message is from a topic we do not accept.")
    try:
        sns.verify_message(
            message,
            current_app.extensions.get("clarion_sns_cert_fetcher", sns.fetch_certificate),
            current_app.extensions.setdefault("clarion_sns_certs", {}),
        )
    except sns.SnsVerificationError as exc:
        log.warning("rejected an SNS message: %s", exc)
        return error_body(401, "invalid_signature", f"The SNS signature is not valid: {exc}")

    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        return _confirm(message)
    if kind == "Notification":
        return _ses_event(message, settings)
    return {"status": "ignored", "type": kind}


def _confirm(message: dict):
    url = message.get("SubscribeURL", "")
    if not sns.is_sns_url(url):
        return error_body(400, "bad_request", "SubscribeURL is not an HTTPS URL on an SNS host.")
    confirm = current_app.extensions.get("clarion_sns_confirm", sns.confirm_subscription)
    try:
        confirm(url)
    except (OSError, ValueError) as exc:
        log.warning("could not confirm SNS subscription to %s: %s", message["TopicArn"], exc)
        return error_body(502, "confirmation_failed", f"Could not confirm the subscription: {exc}")
    log.info("confirmed SNS subscription to %s", message["TopicArn"])
    return {"status": "confirmed", "topic": message["TopicArn"]}


def _ses_event(message: dict, settings):
    event = _json_object(message["Message"].encode())
    if event is None:
        return error_body(400, "bad_request", "The SNS Message is not an SES JSON notification.")
    event_type = event.get("notificationType") or event.get("eventType")
    try:
        reports = list(_ses_reports(event_type, event))
        mail = event.get("mail") or {}
        message_id = _header(mail, "Message-ID") or mail.get("messageId")
    except (KeyError, TypeError, AttributeError, ValueError):
        return error_body(400, "bad_request", f"The SES {event_type} notification is malformed.")
    if not reports:
        return {"status": "ignored", "type": event_type}
    counts = _Counts()
    for report in reports:
        # One notification can name several recipients under one feedback id.
        event_key = report.pop("feedback_id") or message["MessageId"]
        counts.add(
            record_bounce(
                **report,
                source="ses",
                message_id=message_id if isinstance(message_id, str) else None,
                external_id=f"ses:{event_key}:{report['email'].lower()}",
                payload=event,
                soft_bounce_limit=settings.soft_bounce_limit,
            )
        )
    db.session.commit()
    return counts.as_dict()


def _ses_reports(event_type: str | None, event: dict):
    """Yield record_bounce arguments for each recipient an SES bounce or complaint names."""
    if event_type == "Bounce":
        bounce = event["bounce"]
        kind = SES_BOUNCE_KINDS.get(bounce["bounceType"], BounceKind.SOFT)
        for recipient in bounce["bouncedRecipients"]:
            reason = recipient.get("diagnosticCode") or recipient.get("status")
            detail = f"{bounce['bounceType']}/{bounce.get('bounceSubType', '')}"
            yield {
                "kind": kind,
                "email": _string(recipient["emailAddress"]),
                "detail": f"{detail}: {reason}" if reason else detail,
                "occurred_at": _timestamp(bounce.get("timestamp")),
                "feedback_id": bounce.get("feedbackId"),
            }
    elif event_type == "Complaint":
        complaint = event["complaint"]
        for recipient in complaint["complainedRecipients"]:
            yield {
                "kind": BounceKind.COMPLAINT,
                "email": _string(recipient["emailAddress"]),
                "detail": str(complaint.get("complaintFeedbackType") or "") or None,
                "occurred_at": _timestamp(complaint.get("timestamp")),
                "feedback_id": complaint.get("feedbackId"),
            }


def _header(mail: dict, name: str) -> str | None:
    for header in mail.get("headers") or ():
        if isinstance(header, dict) and str(header.get("name", "")).lower() == name.lower():
            return _string(header.get("value"))
    return (mail.get("commonHeaders") or {}).get("messageId")


def _string(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def _timestamp(value) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else None


class EventSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(["bounce", "complaint"]))
    bounce_type = fields.String(validate=validate.OneOf(["hard", "soft"]))
    email = fields.Email(validate=validate.Length(max=320))
    message_id = fields.String(validate=validate.Length(min=1, max=300))
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    timestamp = fields.AwareDateTime()
    reason = fields.String(validate=validate.Length(max=2000), allow_none=True)

    @validates_schema
    def _consistent(self, data, **kwargs):
        if not data.get("email") and not data.get("message_id"):
            raise ValidationError("Give the recipient's email, the message_id, or both.", "email")
        if data["type"] == "bounce" and not data.get("bounce_type"):
            raise ValidationError("A bounce needs bounce_type: hard or soft.", "bounce_type")
        if data["type"] == "complaint" and data.get("bounce_type"):
            raise ValidationError("Only bounces have a bounce_type.", "bounce_type")


class EventBatchSchema(Schema):
    events = fields.List(
        fields.Nested(EventSchema), required=True, validate=validate.Length(min=1, max=1000)
    )


@webhooks_blueprint.post("/bounces")
def generic_bounces():
    """Receive bounces and complaints in Clarion's own JSON shape, signed with WEBHOOK_SECRET."""
    settings = _settings()
    body = request.get_data()
    if not settings.webhook_secret:
        return error_body(
            401, "unauthorized", "Bounce webhooks are not configured (set WEBHOOK_SECRET)."
        )
    given = request.headers.get(SIGNATURE_HEADER, "")
    scheme, _, digest = given.partition("=")
    expected = hmac.new(settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    given_digest = digest.strip().lower().encode("utf-8", "replace")
    if scheme != "sha256" or not hmac.compare_digest(given_digest, expected.encode()):
        return error_body(
            401,
            "invalid_signature",
            f"{SIGNATURE_HEADER} must be sha256=<hex HMAC-SHA256 of the body with the webhook "
            "secret>.",
        )
    data = _json_object(body)
    if data is None:
        return error_body(400, "invalid_json", "The request body is not a JSON object.")
    try:
        events = EventBatchSchema().load(data)["events"]
    except ValidationError as exc:
        # Nothing is recorded unless every event is valid, so a corrected retry is simple.
        return error_body(
            400,
            "validation_error",
            "Some events are invalid; none were recorded.",
            _string_keys(exc.messages),
        )
    counts = _Counts()
    for event in events:
        kind = BounceKind.COMPLAINT if event["type"] == "complaint" else event["bounce_type"]
        counts.add(
            record_bounce(
                kind=kind,
                source="webhook",
                email=event.get("email"),
                message_id=event.get("message_id"),
                detail=event.get("reason"),
                external_id=f"webhook:{event['id']}",
                occurred_at=event.get("timestamp"),
                payload=_json_ready(event),
                soft_bounce_limit=settings.soft_bounce_limit,
            )
        )
    db.session.commit()
    return counts.as_dict()


class _Counts:
    def __init__(self):
        self.values = {
            "received": 0,
            "recorded": 0,
            "duplicates": 0,
            "unknown_recipients": 0,
            "suppressed": 0,
        }

    def add(self, outcome) -> None:
        self.values["received"] += 1
        if outcome.duplicate:
            self.values["duplicates"] += 1
            return
        self.values["recorded"] += 1
        self.values["unknown_recipients"] += int(outcome.unknown_recipient)
        self.values["suppressed"] += int(outcome.suppressed)

    def as_dict(self) -> dict:
        return dict(self.values)


def _json_object(raw: bytes) -> dict | None:
    # Depth-limited: the SNS envelope is parsed before its signature can be checked.
    try:
        data = parse_json(raw)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _json_ready(event: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in event.items()}


def _string_keys(messages):
    """Make list indexes in marshmallow's messages JSON keys (sorting mixed keys would fail)."""
    if isinstance(messages, dict):
        return {str(key): _string_keys(value) for key, value in messages.items()}
    return messages
