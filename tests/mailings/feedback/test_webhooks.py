"""POST /webhooks/ses (SNS-signed) and /webhooks/bounces (HMAC-signed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, inspect, select

from app import create_app
from app.extensions import db
from app.mailings.feedback.webhooks import webhooks_blueprint
from app.mailings.models import BounceEvent, BounceKind
from app.security import WEBHOOK_MAX_BYTES
from app.supporters.models import SubscriptionStatus, Supporter
from tests.factories import make_delivery, make_mailing, make_supporter

TOPIC = "arn:aws:sns:eu-west-1:123456789012:clarion-ses-feedback"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000.pem"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
    + TOPIC
    + "&Token=2336412f37"
)
SECRET = "webhook-secret-for-tests"
MESSAGE_ID = "<6f1c2e9a0b3d4e5f8a7b6c5d4e3f2a1b@clarion.test>"


def _make_signer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, CERT_PEM = _make_signer()


def sign(message: dict, version: str = "2") -> dict:
    """Sign an SNS message the way AWS documents it, with the test's own key."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{n}\n{message[n]}\n" for n in names if n in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = KEY.sign(canonical.encode(), padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }


def notification(ses_event: dict, message_id: str = "b6c1f0a2-1111-2222-3333-444455556666"):
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(ses_event),
        "Timestamp": "2024-05-14T09:12:41.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_bounce(email: str, bounce_type: str = "Permanent", feedback_id: str = "fb-1") -> dict:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": feedback_id,
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2024-05-14T09:12:40.000Z",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": "2024-05-14T09:12:30.000Z",
            "source": "alerts@clarion.test",
            "messageId": "0100018f7a1b2c3d-aaaa-bbbb-cccc-000000000000-000000",
            "destination": [email],
            "headers": [{"name": "Message-ID", "value": MESSAGE_ID}],
        },
    }


def ses_complaint(email: str) -> dict:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": "fb-complaint-1",
            "complainedRecipients": [{"emailAddress": email}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2024-05-14T10:00:00.000Z",
        },
        "mail": {"messageId": "0100018f-unrelated", "destination": [email]},
    }


@pytest.fixture(scope="module")
def webhook_app(settings):
    application = create_app(settings, {"TESTING": True})
    if "webhooks" not in application.blueprints:  # until app/pages.py registers it
        application.register_blueprint(webhooks_blueprint)
    return application


@pytest.fixture
def hooks(webhook_app, settings):
    calls = SimpleNamespace(confirmed=[], fetched=[])

    def fetch(url):
        calls.fetched.append(url)
        return CERT_PEM

    webhook_app.extensions["clarion_sns_confirm"] = calls.confirmed.append
    webhook_app.extensions["clarion_sns_cert_fetcher"] = fetch
    webhook_app.extensions.pop("clarion_sns_certs", None)
    webhook_app.config["CLARION"] = replace(
        settings, ses_topic_arns=(TOPIC,), webhook_secret=SECRET
    )
    yield calls
    webhook_app.config["CLARION"] = settings


@pytest.fixture
def hook_client(webhook_app, hooks):
    return webhook_app.test_client()


def post_sns(client, message, raw: bytes | None = None):
    return client.post(
        "/webhooks/ses",
        data=raw if raw is not None else json.dumps(message),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": message.get("Type", "") if message else "",
        },
    )


def reload(supporter) -> Supporter:
    """Load the supporter again: each request ends by removing the session it used."""
    return db.session.get(Supporter, inspect(supporter).identity[0])


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(BounceEvent))


def test_subscription_confirmation_visits_the_subscribe_url(hook_client, hooks):
    message = sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic " + TOPIC,
            "SubscribeURL": SUBSCRIBE_URL,
            "Timestamp": "2024-05-14T09:00:00.000Z",
        }
    )

    response = post_sns(hook_client, message)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "confirmed", "topic": TOPIC}
    assert hooks.confirmed == [SUBSCRIBE_URL]
    assert hooks.fetched == [CERT_URL]


def test_subscription_to_a_foreign_subscribe_url_is_not_visited(hook_client, hooks):
    message = sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "m-2",
            "Token": "t",
            "TopicArn": TOPIC,
            "Message": "subscribe",
            "SubscribeURL": "https://internal.example/admin",
            "Timestamp": "2024-05-14T09:00:00.000Z",
        }
    )
    response = post_sns(hook_client, message)
    assert response.status_code == 400
    assert hooks.confirmed == []


def test_signed_bounce_notification_suppresses_the_supporter(hook_client, hooks):
    ann = make_supporter("ann@example.org")
    delivery_id = make_delivery(make_mailing(), ann, MESSAGE_ID).id
    db.session.commit()  # a request ends by closing the session, dropping anything uncommitted

    response = post_sns(hook_client, sign(notification(ses_bounce("ann@example.org"))))

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "received": 1,
        "recorded": 1,
        "duplicates": 0,
        "unknown_recipients": 0,
        "suppressed": 1,
    }
    ann = reload(ann)
    assert ann.status == SubscriptionStatus.BOUNCED
    assert (ann.history[-1].channel, ann.history[-1].actor) == ("bounce", "ses")
    event = db.session.scalar(select(BounceEvent))
    assert (event.kind, event.source, event.delivery_id) == (BounceKind.HARD, "ses", delivery_id)
    assert event.external_id == "ses:fb-1:ann@example.org"

    # SNS delivers at least once: the same notification again changes nothing.
    again = post_sns(hook_client, sign(notification(ses_bounce("ann@example.org"))))
    assert again.get_json()["duplicates"] == 1
    assert event_count() == 1
    assert hooks.fetched == [CERT_URL]  # the certificate is cached


def test_transient_bounce_counts_as_soft(hook_client):
    bea = make_supporter("bea@example.org")
    db.session.commit()
    response = post_sns(hook_client, sign(notification(ses_bounce(bea.email, "Transient"))))
    assert response.status_code == 200
    bea = reload(bea)
    assert (bea.status, bea.soft_bounce_count) == (SubscriptionStatus.SUBSCRIBED, 1)


def test_signature_version_1_complaint(hook_client):
    cat = make_supporter("cat@example.org")
    db.session.commit()
    response = post_sns(hook_client, sign(notification(ses_complaint(cat.email)), version="1"))
    assert response.status_code == 200, response.get_json()
    cat = reload(cat)
    assert cat.status == SubscriptionStatus.COMPLAINED


def test_delivery_notifications_are_ignored(hook_client):
    response = post_sns(
        hook_client, sign(notification({"notificationType": "Delivery", "mail": {}}))
    )
    assert response.get_json() == {"status": "ignored", "type": "Delivery"}
    assert event_count() == 0


def test_tampered_message_is_refused_and_changes_nothing(hook_client):
    dan = make_supporter("dan@example.org")
    db.session.commit()
    message = sign(notification(ses_bounce("someone.else@example.org")))
    message["Message"] = json.dumps(ses_bounce(dan.email))

    response = post_sns(hook_client, message)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"
    dan = reload(dan)
    assert dan.status == SubscriptionStatus.SUBSCRIBED and event_count() == 0


def test_missing_signature_is_refused(hook_client):
    message = sign(notification(ses_bounce("eve@example.org")))
    del message["Signature"]
    assert post_sns(hook_client, message).status_code == 401
    assert event_count() == 0


def test_foreign_topic_is_refused_before_any_fetch(hook_client, hooks):
    message = notification(ses_bounce("eve@example.org"))
    message["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:someone-else"
    response = post_sns(hook_client, sign(message))
    assert response.status_code == 401
    assert hooks.fetched == [] and event_count() == 0


def test_unconfigured_topics_refuse_everything(hook_client, webhook_app, settings):
    webhook_app.config["CLARION"] = replace(settings, ses_topic_arns=())
    response = post_sns(hook_client, sign(notification(ses_bounce("eve@example.org"))))
    assert response.status_code == 401
    assert "not configured" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com@evil.example/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
    ],
)
def test_certificate_from_a_foreign_host_is_never_fetched(hook_client, hooks, cert_url):
    message = sign(notification(ses_bounce("eve@example.org")))
    message["SigningCertURL"] = cert_url
    response = post_sns(hook_client, message)
    assert response.status_code == 401
    assert hooks.fetched == [] and event_count() == 0


@pytest.mark.parametrize(
    "message",
    [
        {"Type": ["Notification"], "TopicArn": TOPIC, "Signature": "abc"},
        {"Type": "Notification", "TopicArn": TOPIC, "Signature": "\u00e9\u00e9"},
        {"Type": "Notification", "TopicArn": TOPIC, "SignatureVersion": "3"},
        {"Type": "Notification", "TopicArn": [TOPIC]},
        {
            "Type": "Other",
            "TopicArn": TOPIC,
            "SignatureVersion": "2",
            "Signature": "AAAA",
            "SigningCertURL": CERT_URL,
        },
    ],
)
def test_odd_sns_envelopes_are_refused(hook_client, message):
    response = post_sns(hook_client, message)
    assert response.status_code == 401
    assert event_count() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_sns_body_is_a_bad_request(hook_client, raw):
    response = post_sns(hook_client, {}, raw=raw)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_signed_but_malformed_ses_message_is_a_bad_request(hook_client):
    event = ses_bounce("eve@example.org")
    del event["bounce"]["bouncedRecipients"]
    response = post_sns(hook_client, sign(notification(event)))
    assert response.status_code == 400
    assert event_count() == 0


# --- the generic, HMAC-signed webhook -----------------------------------------------------


def post_events(client, payload, *, secret=SECRET, signature=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Clarion-Signature"] = signature
    return client.post("/webhooks/bounces", data=body, headers=headers)


def test_generic_webhook_records_signed_events(hook_client):
    fay = make_supporter("fay@example.org")
    gus = make_supporter("gus@example.org")
    delivery_id = make_delivery(make_mailing(), gus, MESSAGE_ID).id
    db.session.commit()
    events = [
        {
            "type": "bounce",
            "bounce_type": "hard",
            "email": "fay@example.org",
            "id": "ev-1",
            "timestamp": "2024-05-14T09:12:40Z",
            "reason": "550 5.1.1 no such user",
        },
        {"type": "complaint", "message_id": MESSAGE_ID, "id": "ev-2"},
        {"type": "bounce", "bounce_type": "soft", "email": "stranger@example.org", "id": "ev-3"},
    ]

    response = post_events(hook_client, {"events": events})

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "received": 3,
        "recorded": 3,
        "duplicates": 0,
        "unknown_recipients": 1,
        "suppressed": 2,
    }
    fay = reload(fay)
    gus = reload(gus)
    assert fay.status == SubscriptionStatus.BOUNCED
    assert gus.status == SubscriptionStatus.COMPLAINED
    complaint = db.session.scalar(
        select(BounceEvent).where(BounceEvent.external_id == "webhook:ev-2")
    )
    assert complaint.delivery_id == delivery_id
    hard = db.session.scalar(select(BounceEvent).where(BounceEvent.external_id == "webhook:ev-1"))
    assert hard.occurred_at == datetime(2024, 5, 14, 9, 12, 40, tzinfo=UTC)
    assert hard.detail == "550 5.1.1 no such user"

    again = post_events(hook_client, {"events": events})
    assert again.get_json()["duplicates"] == 3 and event_count() == 3


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "sha1=abc", "sha256=not-hex", "sha256=\u00e9t\u00e9"],
)
def test_generic_webhook_refuses_bad_or_missing_signatures(hook_client, signature):
    make_supporter("hal@example.org")
    payload = {"events": [{"type": "complaint", "email": "hal@example.org", "id": "ev-9"}]}
    response = post_events(hook_client, payload, signature=signature or "")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert event_count() == 0


def test_generic_webhook_signed_with_another_secret_is_refused(hook_client):
    payload = {"events": [{"type": "complaint", "email": "hal@example.org", "id": "ev-9"}]}
    response = post_events(hook_client, payload, secret="someone-elses-secret")
    assert response.status_code == 401


def test_generic_webhook_without_a_secret_refuses_everything(hook_client, webhook_app, settings):
    webhook_app.config["CLARION"] = replace(settings, webhook_secret=None)
    payload = {"events": [{"type": "complaint", "email": "hal@example.org", "id": "ev-9"}]}
    response = post_events(hook_client, payload, secret="anything")
    assert response.status_code == 401
    assert "not configured" in response.get_json()["error"]["message"]


def test_one_invalid_event_rejects_the_whole_batch(hook_client):
    ivy = make_supporter("ivy@example.org")
    db.session.commit()
    events = [
        {"type": "bounce", "bounce_type": "hard", "email": "ivy@example.org", "id": "ev-1"},
        {"type": "bounce", "email": "not-an-address", "id": "ev-2", "colour": "red"},
        {"type": "complaint", "bounce_type": "hard", "email": "ivy@example.org", "id": "ev-3"},
    ]

    response = post_events(hook_client, {"events": events})

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    details = error["details"]["events"]
    assert set(details) == {"1", "2"}
    assert {"email", "colour"} <= set(details["1"])
    assert "bounce_type" in details["2"]
    ivy = reload(ivy)
    assert ivy.status == SubscriptionStatus.SUBSCRIBED and event_count() == 0


@pytest.mark.parametrize(
    "body", [b"{oops", b'{"events": []}', b'{"events": "x"}', b"[]", b'{"events": [{}]}']
)
def test_generic_webhook_malformed_bodies_are_bad_requests(hook_client, body):
    response = post_events(hook_client, body)
    assert response.status_code == 400
    assert event_count() == 0


def test_oversized_bodies_are_refused(hook_client):
    response = post_events(hook_client, b"{" + b" " * (3 * 1024 * 1024) + b"}")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


DEEP_JSON = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def test_deeply_nested_sns_body_is_a_bad_request_before_authentication(hook_client):
    response = post_sns(hook_client, {}, raw=DEEP_JSON)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_signed_bounce_body_is_a_bad_request(hook_client, depth):
    body = b'{"events": [' + b"[" * depth + b"]" * depth + b"]}"
    response = post_events(hook_client, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert event_count() == 0


def test_nul_in_a_signed_event_is_a_validation_error(hook_client):
    event = {"type": "complaint", "email": "nul@example.org", "id": "e-1", "reason": "a\x00b"}
    response = post_events(hook_client, {"events": [event]})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"
    assert event_count() == 0


def test_webhook_bodies_above_the_webhook_limit_are_refused(hook_client):
    response = post_events(hook_client, b"{" + b" " * WEBHOOK_MAX_BYTES + b"}")
    assert response.status_code == 413
