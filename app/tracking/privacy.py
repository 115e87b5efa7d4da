"""The tracking domain's share of GDPR access and erasure: opens, clicks, link revocations.

Events keep their rows on erasure: they are keyed by delivery, which stays, so distinct-recipient
counts are unchanged once the supporters domain unlinks them (supporter_id ON DELETE SET NULL).
They hold no free text (a user-agent class, not the header; no IP address). Opens and clicks
still waiting in the Redis buffer record nothing once the person is gone: the drain joins them
to deliveries by supporter, and an erased one matches none (app/tracking/buffer.py).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from app.extensions import db
from app.mailings.models import MailingLink
from app.supporters.models import Supporter
from app.supporters.privacy import iso
from app.tracking.models import TrackingEvent
from app.tracking.revocations import LinkRevocation, clear_cache


def export_supporter_data(supporter: Supporter) -> dict:
    """Return what the person did with their mail, and the withdrawals of their links."""
    events = db.session.execute(
        select(TrackingEvent, MailingLink.url)
        .outerjoin(MailingLink, MailingLink.id == TrackingEvent.link_id)
        .where(TrackingEvent.supporter_id == supporter.id)
        .order_by(TrackingEvent.id)
    )
    revocations = db.session.scalars(
        select(LinkRevocation)
        .where(LinkRevocation.supporter_id == supporter.id)
        .order_by(LinkRevocation.id)
    )
    return {
        "tracking_events": [
            {
                "kind": event.kind.value,
                "mailing_id": event.mailing_id,
                "delivery_id": event.delivery_id,
                "link_position": event.link_position,
                "link_url": url,
                "occurred_at": iso(event.occurred_at),
                "user_agent_class": event.user_agent_class,
                "machine": event.machine,
                "machine_reason": event.machine_reason,
            }
            for event, url in events
        ],
        "link_revocations": [
            {"revoked_at": iso(r.revoked_at), "reason": r.reason} for r in revocations
        ],
    }


def erase_supporter_data(supporter_id: int) -> None:
    """Delete the withdrawals of the person's links: staff's reasons may describe them."""
    result = db.session.execute(
        delete(LinkRevocation)
        .where(LinkRevocation.supporter_id == supporter_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        clear_cache()
