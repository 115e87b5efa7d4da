"""Freeze an A/B test's variants with the mailing, and split the audience when the send starts.

The test portion is a random sample of the audience, dealt out to the variants in turn, so
each variant gets the same number of recipients give or take one. The rest of the audience is
snapshotted at the same moment, as `held` deliveries with no variant: who gets the mailing is
fixed when it starts, whatever the wait; only which version they get is decided later.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Integer, case, cast, func, insert, literal, select

from app.db import utcnow
from app.extensions import db
from app.mailings.compose.rendering import freeze_sources, sources_of
from app.mailings.models import (
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingLink,
    MailingVariant,
)
from mailers.render import HONEYPOT_POSITION

# A variant only needs its own HTML and text when it changes what is in them.
BODY_FIELDS = ("preheader", "body_mjml", "body_text")
_CLICK_URL = re.compile(r"(\{\{ click_url \}\}/)(\d+)")


def sources_of_variant(mailing: Mailing, variant: MailingVariant) -> dict:
    """The fields the variant is frozen from: the mailing's, with the variant's changes."""
    sources = sources_of(mailing)
    for name in ("subject", "preheader", "body_mjml", "body_text"):
        value = getattr(variant, name)
        if value is not None:
            sources[name] = value
    return sources


def changes_body(variant: MailingVariant) -> bool:
    return any(getattr(variant, name) is not None for name in BODY_FIELDS)


def freeze_variants(mailing: Mailing, freeze_options: dict) -> None:
    """Freeze each variant that differs from the mailing; the mailing is frozen already.

    A variant that changes only the subject or sender keeps the mailing's HTML, text and
    links. One that changes its body gets its own, its links numbered after every link before
    them: a click's position names one link of one variant, so /c/ needs no variant at all.
    The honeypot stays the mailing's (position 0) in every variant.
    """
    next_position = max((link.position for link in mailing.links), default=0) + 1
    for variant in mailing.variants:
        variant.frozen_subject = variant.frozen_html = variant.frozen_text = None
        if variant.subject is None and not changes_body(variant):
            continue
        frozen = freeze_sources(sources_of_variant(mailing, variant), **freeze_options)
        variant.frozen_subject = frozen.subject_source
        if not changes_body(variant):
            continue
        offset = next_position - 1
        renumbered = {
            link.position: link.position + offset
            for link in frozen.links
            if link.position != HONEYPOT_POSITION
        }

        def shift(match: re.Match, renumbered=renumbered) -> str:
            position = int(match.group(2))
            return match.group(1) + str(renumbered.get(position, position))

        variant.frozen_html = _CLICK_URL.sub(shift, frozen.html_source)
        variant.frozen_text = _CLICK_URL.sub(shift, frozen.text_source)
        for link in frozen.links:
            if link.position in renumbered:
                mailing.links.append(
                    MailingLink(
                        position=renumbered[link.position],
                        url=link.url,
                        is_honeypot=False,
                        variant_id=variant.id,
                    )
                )
        next_position += len(renumbered)


def test_portion_size(total: int, fraction: float, variants: int) -> int:
    """How many recipients test: the fraction, at least one per variant, at most everyone."""
    return min(total, max(variants, round(total * fraction)))


def snapshot_split(mailing: Mailing, audience, batch_size: int) -> int:
    """Create the deliveries of an A/B-tested mailing: the test portion queued, each with its
    variant, and the rest held. Returns the number created.

    The test portion's batches come first (numbered 0 … test_batch_count - 1), each in
    supporter-id order like any batch; the held rows' batches follow.
    """
    test = mailing.ab_test
    total = db.session.scalar(select(func.count()).select_from(audience))
    variants = len(mailing.variants)
    in_test_count = test_portion_size(total, test.test_fraction, variants)
    test_batches = -(-in_test_count // batch_size)

    ranked = select(
        audience.c.id.label("supporter_id"),
        (func.row_number().over(order_by=func.random()) - 1).label("rank"),
    ).subquery()
    in_test = ranked.c.rank < in_test_count
    classified = select(
        ranked.c.supporter_id,
        case((in_test, ranked.c.rank % variants), else_=None).label("variant_position"),
        case((in_test, 1), else_=0).label("in_test"),
    ).subquery()
    order_in_part = (
        func.row_number().over(
            partition_by=classified.c.in_test, order_by=classified.c.supporter_id
        )
        - 1
    ).self_group()
    batch_in_part = cast(order_in_part.op("/")(batch_size), Integer)
    numbered = (
        select(
            literal(mailing.id).label("mailing_id"),
            classified.c.supporter_id,
            MailingVariant.id.label("variant_id"),
            cast(
                case(
                    (classified.c.in_test == 1, DeliveryStatus.QUEUED.value),
                    else_=DeliveryStatus.HELD.value,
                ),
                Delivery.__table__.c.status.type,
            ).label("status"),
            case(
                (classified.c.in_test == 1, batch_in_part),
                else_=batch_in_part + test_batches,
            ).label("batch_no"),
        )
        .select_from(classified)
        .outerjoin(
            MailingVariant,
            (MailingVariant.mailing_id == mailing.id)
            & (MailingVariant.position == classified.c.variant_position),
        )
    )
    db.session.execute(
        insert(Delivery).from_select(
            ["mailing_id", "supporter_id", "variant_id", "status", "batch_no"], numbered
        )
    )
    held = total - in_test_count
    mailing.total_recipients = total
    mailing.batch_count = test_batches + -(-held // batch_size)
    test.test_recipients = in_test_count
    test.test_batch_count = test_batches
    test.decide_at = utcnow() + timedelta(minutes=test.wait_minutes)
    return total


def is_ab_tested(mailing: Mailing) -> bool:
    return mailing.ab_test is not None and len(mailing.variants) >= 2


def variant_sent_to(mailing: Mailing, supporter_id: int) -> MailingVariant | None:
    """The variant a recipient was (or will be) sent: their test variant, else the winner."""
    if not is_ab_tested(mailing):
        return None
    variant_id = db.session.scalar(
        select(Delivery.variant_id).where(
            Delivery.mailing_id == mailing.id, Delivery.supporter_id == supporter_id
        )
    )
    if variant_id is not None:
        return db.session.get(MailingVariant, variant_id)
    return mailing.ab_test.winner
