"""Demo supporters: lists, tags, 2,000 fake people in 15 countries, a few suppressed, a segment."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, fields
from datetime import timedelta

from faker import Faker
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.supporters.models import (
    CustomField,
    ListMembership,
    MailingList,
    Segment,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterTag,
    Tag,
)
from app.supporters.services import change_status

SEED = 2026
SUPPORTER_COUNT = 2000
ACTOR = "clarion demo load"

LISTS = {
    "Urgent Action Network": "Supporters who act within days when someone is at risk.",
    "Refugee and Migrant Rights": "Campaign updates on protection for people on the move.",
    "Newsletter": "The monthly newsletter.",
}
# (tag, share of supporters who carry it)
TAGS = {"volunteer": 0.10, "donor": 0.15, "letter-writer": 0.20}
LIST_SHARE = {"Urgent Action Network": 0.45, "Refugee and Migrant Rights": 0.30, "Newsletter": 0.80}
SEGMENT_NAME = "Action network, not donors"

# Faker locale -> (country, language, weight): mostly UK/US, with a spread of scripts and accents.
LOCALES = {
    "en_GB": ("GB", "en", 24),
    "en_US": ("US", "en", 18),
    "fr_FR": ("FR", "fr", 8),
    "de_DE": ("DE", "de", 7),
    "es_ES": ("ES", "es", 6),
    "es_MX": ("MX", "es", 5),
    "pt_BR": ("BR", "pt", 5),
    "it_IT": ("IT", "it", 4),
    "pl_PL": ("PL", "pl", 4),
    "tr_TR": ("TR", "tr", 3),
    "uk_UA": ("UA", "uk", 3),
    "en_NG": ("NG", "en", 3),
    "fr_CA": ("CA", "fr", 3),
    "hi_IN": ("IN", "hi", 3),
    "ja_JP": ("JP", "ja", 2),
}
SOURCES = (
    "website signup",
    "petition: Free the Defenders",
    "event: Write for Rights",
    "import: 2024 CRM",
)
# Reserved example domains: demo data can never reach a real inbox, whatever SMTP_URL says.
DOMAINS = ("example.org", "example.net", "example.com")
# (status, share, channel, detail) for supporters who are no longer subscribed.
SUPPRESSIONS = (
    (
        SubscriptionStatus.UNSUBSCRIBED,
        0.06,
        "one_click",
        "List-Unsubscribe-Post from the newsletter",
    ),
    (SubscriptionStatus.BOUNCED, 0.03, "bounce", "550 5.1.1 mailbox unavailable"),
    (SubscriptionStatus.COMPLAINED, 0.01, "complaint", "feedback loop report"),
)


@dataclass
class DemoSummary:
    """What one load added (all zero when the demo data was already there)."""

    lists: int = 0
    tags: int = 0
    supporters: int = 0
    memberships: int = 0
    supporter_tags: int = 0
    status_changes: int = 0
    segments: int = 0
    mailings: int = 0

    def lines(self) -> list[str]:
        return [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)]


@dataclass(frozen=True)
class DemoSupporter:
    row: dict
    lists: tuple[str, ...]
    tags: tuple[str, ...]
    suppression: tuple | None


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def build_demo_supporters(count: int = SUPPORTER_COUNT) -> list[DemoSupporter]:
    """Return the same `count` fake supporters on every call (Faker and random are seeded)."""
    fake = Faker(list(LOCALES))
    Faker.seed(SEED)
    rng = random.Random(SEED)
    locales = list(LOCALES)
    weights = [LOCALES[locale][2] for locale in locales]
    now = utcnow()
    seen: set[str] = set()
    people = []
    for _ in range(count):
        locale = rng.choices(locales, weights)[0]
        country, language, _weight = LOCALES[locale]
        local_fake = fake[locale]
        first, last = local_fake.first_name(), local_fake.last_name()
        base = ".".join(p for p in (_ascii_slug(first), _ascii_slug(last)) if p) or "supporter"
        domain = rng.choice(DOMAINS)
        email, n = f"{base}@{domain}", 1
        while email in seen:
            n += 1
            email = f"{base}{n}@{domain}"
        seen.add(email)
        created_at = now - timedelta(days=rng.uniform(1, 730))
        roll = rng.random()
        suppression = None
        for status, share, channel, detail in SUPPRESSIONS:
            if roll < share:
                suppression = (status, channel, detail)
                break
            roll -= share
        people.append(
            DemoSupporter(
                row={
                    "email": email,
                    "first_name": first,
                    "last_name": last,
                    "postcode": local_fake.postcode(),
                    "country": country,
                    "language": language,
                    "source": rng.choice(SOURCES),
                    "custom_fields": {"town": local_fake.city()},
                    "status": SubscriptionStatus.SUBSCRIBED,
                    "soft_bounce_count": 0,
                    "created_at": created_at,
                    "updated_at": created_at,
                },
                lists=tuple(name for name, share in LIST_SHARE.items() if rng.random() < share),
                tags=tuple(name for name, share in TAGS.items() if rng.random() < share),
                suppression=suppression,
            )
        )
    return people


def _get_or_create(session: Session, model, name: str, **values) -> tuple[object, bool]:
    found = session.scalar(select(model).where(model.name == name))
    if found is not None:
        return found, False
    created = model(name=name, **values)
    session.add(created)
    session.flush()
    return created, True


def _ids_by_email(session: Session, emails: list[str]) -> dict[str, int]:
    ids = {}
    for start in range(0, len(emails), 500):  # stay far below SQLite's bound-parameter limit
        chunk = emails[start : start + 500]
        ids.update(
            session.execute(
                select(Supporter.email, Supporter.id).where(Supporter.email.in_(chunk))
            ).all()
        )
    return ids


def _insert_missing_pairs(session: Session, model, left: str, wanted: set[tuple[int, int]]) -> int:
    """Insert the (left_id, supporter_id) rows of `wanted` that are not stored yet."""
    if not wanted:
        return 0
    left_col = getattr(model, left)
    left_ids = {pair[0] for pair in wanted}
    rows = session.execute(select(left_col, model.supporter_id).where(left_col.in_(left_ids)))
    existing = {tuple(row) for row in rows}
    missing = sorted(wanted - existing)
    if missing:
        session.execute(insert(model), [{left: a, "supporter_id": b} for a, b in missing])
    return len(missing)


def load_demo_data(session: Session) -> DemoSummary:
    """Add whatever demo lists, tags, supporters and segment are missing. Does not commit."""
    summary = DemoSummary()
    lists = {}
    for name, description in LISTS.items():
        lists[name], created = _get_or_create(session, MailingList, name, description=description)
        summary.lists += created
    tags = {}
    for name in TAGS:
        tags[name], created = _get_or_create(session, Tag, name)
        summary.tags += created
    if session.get(CustomField, "town") is None:
        session.add(CustomField(name="town"))

    people = build_demo_supporters()
    emails = [person.row["email"] for person in people]
    existing = _ids_by_email(session, emails)
    new_people = [person for person in people if person.row["email"] not in existing]
    if new_people:
        session.execute(insert(Supporter), [person.row for person in new_people])
    ids = {**existing, **_ids_by_email(session, [p.row["email"] for p in new_people])}
    summary.supporters = len(new_people)

    if new_people:
        # Every demo supporter gets the consent record a real sign-up would have left.
        session.execute(
            insert(SubscriptionChange),
            [
                {
                    "supporter_id": ids[p.row["email"]],
                    "old_status": None,
                    "new_status": SubscriptionStatus.SUBSCRIBED,
                    "channel": "import",
                    "actor": ACTOR,
                    "detail": f"source: {p.row['source']}",
                    "changed_at": p.row["created_at"],
                }
                for p in new_people
            ],
        )
    summary.status_changes = _apply_suppressions(session, new_people, ids)

    summary.memberships = _insert_missing_pairs(
        session,
        ListMembership,
        "list_id",
        {(lists[name].id, ids[p.row["email"]]) for p in people for name in p.lists},
    )
    summary.supporter_tags = _insert_missing_pairs(
        session,
        SupporterTag,
        "tag_id",
        {(tags[name].id, ids[p.row["email"]]) for p in people for name in p.tags},
    )

    _segment, created = _get_or_create(
        session,
        Segment,
        SEGMENT_NAME,
        definition={
            "include_lists": [lists["Urgent Action Network"].id],
            "exclude_tags": [tags["donor"].id],
        },
    )
    summary.segments += created
    session.flush()
    return summary


def _apply_suppressions(session: Session, new_people: list[DemoSupporter], ids: dict) -> int:
    # Only supporters created by this load: an existing supporter's status may have been
    # changed on purpose since, and the demo must not undo that.
    planned = {ids[p.row["email"]]: p for p in new_people if p.suppression}
    if not planned:
        return 0
    changes = 0
    supporters = session.scalars(
        select(Supporter).where(Supporter.id.in_(planned)).options(selectinload(Supporter.history))
    )
    for supporter in supporters:
        status, channel, detail = planned[supporter.id].suppression
        if change_status(supporter, status, channel=channel, actor=ACTOR, detail=detail):
            supporter.history[-1].changed_at = min(
                supporter.created_at + timedelta(days=30), utcnow()
            )
            changes += 1
    return changes


def demo_counts(session: Session) -> dict[str, int]:
    """Count the rows of each table the demo fills, for summaries and tests."""
    models = (
        MailingList,
        Tag,
        Supporter,
        ListMembership,
        SupporterTag,
        SubscriptionChange,
        Segment,
    )
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model))
        for model in models
    }
