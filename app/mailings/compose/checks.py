"""What staff look at before and around a send: the pre-send check, and the reads the pages need.

The pre-send check renders the mailing exactly as sending would (the same freeze, the same
message builder) and counts the audience with the same query the snapshot uses, so what it
reports is what "send" would do now; nothing is stored.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.auth.models import AuditEntry
from app.config import Settings
from app.extensions import db
from app.links.tokens import TokenService
from app.mailings.compose.previews import frozen_for_preview
from app.mailings.compose.recipients import build_factory
from app.mailings.compose.rendering import Mode, recipient_in, sample_person
from app.mailings.compose.services import (
    MailingError,
    audience_size,
    mailings_newest_first,
)
from app.mailings.delivery.campaign_gate import CampaignGate, linked_campaign
from app.mailings.delivery.launch import audience_of, campaign_refusal
from app.mailings.models import Delivery, DeliveryStatus, Mailing
from app.supporters.models import (
    MailingList,
    Segment,
    SubscriptionStatus,
    Supporter,
    Tag,
    may_be_mailed,
)
from mailers.render import FrozenLink

SPAMASSASSIN_TIMEOUT_SECONDS = 60
_SPAM_STATUS = re.compile(
    r"^X-Spam-Status: .*?score=(-?[\d.]+).*?tests=(.*?)\s+autolearn", re.MULTILINE | re.DOTALL
)
AUDIT_ACTIONS = (
    "mailing_scheduled",
    "mailing_sent",
    "mailing_paused",
    "mailing_resumed",
    "mailing_cancelled",
    "test_sent",
)


@dataclass
class SpamScore:
    available: bool
    score: float | None = None
    rules: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class PreSendCheck:
    recipients: int
    # Matched by the audience but not mailed: supporter status -> how many.
    suppressed_by_status: dict[str, int]
    # The footer adds the unsubscribe link and a frozen mailing without one cannot exist, so
    # this is True whenever the mailing renders; None when it does not render at all.
    unsubscribe_link: bool | None
    campaign_id: int | None
    campaign: CampaignGate | None
    campaign_refusal: str | None
    links: list[FrozenLink]
    spam: SpamScore
    problems: list[str]

    @property
    def suppressed(self) -> int:
        return sum(self.suppressed_by_status.values())

    @property
    def can_send(self) -> bool:
        return not self.problems and not self.campaign_refusal and self.recipients > 0


def pre_send_check(
    mailing: Mailing, settings: Settings, *, spam_check: bool = True
) -> PreSendCheck:
    """Check what sending the mailing now would do: who gets it, how it renders, what links."""
    problems: list[str] = []
    try:
        recipients = audience_size(mailing)
        suppressed = suppressed_by_status(mailing)
    except MailingError as exc:
        problems.append(exc.message)
        recipients, suppressed = 0, {}
    frozen = None
    try:
        frozen = frozen_for_preview(mailing, settings)
    except MailingError as exc:
        problems.append(exc.message)
    campaign = linked_campaign(mailing.campaign_id)
    spam = SpamScore(available=False, problem="The mailing does not render.")
    if frozen is not None and spam_check:
        spam = spam_score(_message_bytes(mailing, settings, frozen))
    return PreSendCheck(
        recipients=recipients,
        suppressed_by_status=suppressed,
        unsubscribe_link=frozen is not None or None,
        campaign_id=mailing.campaign_id,
        campaign=campaign,
        campaign_refusal=campaign_refusal(mailing.campaign_id, campaign),
        links=[link for link in frozen.links if not link.is_honeypot] if frozen else [],
        spam=spam,
        problems=problems,
    )


def suppressed_by_status(mailing: Mailing) -> dict[str, int]:
    """Count the supporters the audience matches but may not mail, by status.

    The audience query with its "may be mailed" condition left out, so the rule stays the
    snapshot's own. Erased supporters are deleted rows: no audience can select them.
    """
    matched = audience_of(mailing, mailable_only=False).subquery()
    rows = db.session.execute(
        select(Supporter.status, func.count())
        .where(Supporter.id.in_(select(matched.c.id)), ~may_be_mailed())
        .group_by(Supporter.status)
    ).all()
    return {SubscriptionStatus(status).value: n for status, n in rows}


def _message_bytes(mailing: Mailing, settings: Settings, frozen) -> bytes:
    """Build the message a sample recipient would get, as sending builds it."""
    factory = build_factory(mailing, settings, frozen)
    tokens = TokenService(settings.secret_keys)
    recipient = recipient_in(Mode.SEND, mailing.id, sample_person(), settings, tokens)
    return factory.build(recipient).data


def spam_score(message: bytes) -> SpamScore:
    """Score a message with SpamAssassin where it is installed (no Bayes: no training data)."""
    program = shutil.which("spamassassin")
    if program is None:
        return SpamScore(available=False, problem="SpamAssassin is not installed here.")
    try:
        result = subprocess.run(  # noqa: S603 - a fixed program and arguments, the message on stdin
            [program, "-L", "-t", "--cf=use_bayes 0"],
            input=message,
            capture_output=True,
            timeout=SPAMASSASSIN_TIMEOUT_SECONDS,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return SpamScore(available=True, problem="SpamAssassin took too long to answer.")
    except (subprocess.CalledProcessError, OSError) as exc:
        return SpamScore(available=True, problem=f"SpamAssassin failed: {exc}")
    match = _SPAM_STATUS.search(result.stdout.decode("utf-8", "replace"))
    if match is None:
        return SpamScore(available=True, problem="SpamAssassin gave no score.")
    rules = [rule.strip() for rule in match.group(2).split(",") if rule.strip()]
    return SpamScore(available=True, score=float(match.group(1)), rules=rules)


def count_audience(audience: dict) -> int:
    """Count the subscribed supporters an audience definition (not yet saved) selects."""
    return audience_size(Mailing(audience=audience))


# --- what the staff pages read ---------------------------------------------------------------


def mailings_page(
    status: str | None, after: int | None, limit: int
) -> tuple[list[Mailing], int | None]:
    """Return up to `limit` mailings older than id `after`, and the `after` of the next page."""
    stmt = mailings_newest_first(status)
    if after is not None:
        stmt = stmt.where(Mailing.id < after)
    rows = list(db.session.scalars(stmt.limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def sent_counts(mailing_ids: list[int]) -> dict[int, int]:
    """Return how many messages each mailing has sent (one grouped, indexed query)."""
    if not mailing_ids:
        return {}
    rows = db.session.execute(
        select(Delivery.mailing_id, func.count())
        .where(Delivery.mailing_id.in_(mailing_ids), Delivery.status == DeliveryStatus.SENT)
        .group_by(Delivery.mailing_id)
    )
    return dict(rows.all())


def audience_choices() -> dict[str, list[tuple[int, str]]]:
    """Return the lists, tags and saved segments an audience is picked from, by name."""

    def named(model) -> list[tuple[int, str]]:
        rows = db.session.execute(select(model.id, model.name).order_by(model.name))
        return [(row.id, row.name) for row in rows]

    return {"lists": named(MailingList), "tags": named(Tag), "segments": named(Segment)}


def audit_entries(mailing_id: int, limit: int = 50) -> list[AuditEntry]:
    """Return the audit log's entries about one mailing, newest first."""
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_type == "mailing", AuditEntry.subject_id == mailing_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )
