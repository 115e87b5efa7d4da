"""Supporter records and how they are grouped."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Enum,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import BigId, JsonDict, UtcDateTime, utcnow
from app.extensions import db


class SubscriptionStatus(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


# Statuses that mean "never email again" until the supporter opts back in themselves.
SUPPRESSED_STATUSES = (
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriptionStatus.BOUNCED,
    SubscriptionStatus.COMPLAINED,
)

status_enum = Enum(
    SubscriptionStatus,
    name="subscription_status",
    values_callable=lambda members: [m.value for m in members],
    validate_strings=True,
)

# The standard fields of a supporter; anything else a CSV or the API brings is a custom field.
STANDARD_FIELDS = ("email", "first_name", "last_name", "postcode", "country", "language", "source")


class Supporter(db.Model):
    __tablename__ = "supporters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Byte order on PostgreSQL (migration 0016): one unique index serves `=` and `LIKE 'ab%'`.
    email: Mapped[str] = mapped_column(
        String(320).with_variant(String(320, collation="C"), "postgresql"), unique=True
    )
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(200))
    custom_fields: Mapped[dict] = mapped_column(JsonDict, default=dict)
    status: Mapped[SubscriptionStatus] = mapped_column(
        status_enum, default=SubscriptionStatus.SUBSCRIBED
    )
    soft_bounce_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    lists: Mapped[list[MailingList]] = relationship(
        secondary="list_memberships", back_populates="supporters", lazy="selectin"
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary="supporter_tags", back_populates="supporters", lazy="selectin"
    )
    history: Mapped[list[SubscriptionChange]] = relationship(
        back_populates="supporter",
        primaryjoin="Supporter.id == foreign(SubscriptionChange.supporter_id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubscriptionChange.id",
    )

    __table_args__ = (
        # The ids of subscribed supporters, in order: segment counts scan it index-only.
        Index(
            "ix_supporters_subscribed_id",
            "id",
            postgresql_where=text("status = 'subscribed'"),
            sqlite_where=text("status = 'subscribed'"),
        ),
        # The others by status (migration 0016): the few a search by status looks for, and a
        # newly subscribed supporter costs this index nothing.
        Index(
            "ix_supporters_not_subscribed_status",
            "status",
            postgresql_where=text("status <> 'subscribed'"),
            sqlite_where=text("status <> 'subscribed'"),
        ),
    )

    @property
    def is_suppressed(self) -> bool:
        return self.status in SUPPRESSED_STATUSES

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


# Prefix search in the staff directory (app/supporters/directory.py); created by migration 0007.
# PostgreSQL only: text_pattern_ops lets LIKE 'abc%' use the index whatever the collation. The
# address needs none: its column is byte-ordered, so its unique index serves prefixes (0016).
Index(
    "ix_supporters_first_name_prefix",
    func.lower(Supporter.first_name).label("first_name_lower"),
    postgresql_ops={"first_name_lower": "text_pattern_ops"},
).ddl_if(dialect="postgresql")
Index(
    "ix_supporters_last_name_prefix",
    func.lower(Supporter.last_name).label("last_name_lower"),
    postgresql_ops={"last_name_lower": "text_pattern_ops"},
).ddl_if(dialect="postgresql")
Index(
    "ix_supporters_postcode_prefix",
    func.lower(func.replace(Supporter.postcode, " ", "")).label("postcode_key"),
    postgresql_ops={"postcode_key": "text_pattern_ops"},
).ddl_if(dialect="postgresql")


def may_be_mailed() -> ColumnElement[bool]:
    """SQL: the supporter may be sent campaign mail (subscribed: not opted out, bounced or complained).

    The one rule the audience snapshot, the list member counts and each batch's re-check before
    sending share. NULL, and so false, for a supporter missing from an outer join (erased).
    """
    return Supporter.status == SubscriptionStatus.SUBSCRIBED


class SubscriptionChange(db.Model):
    """One change of subscription status: the consent record (when, how, by whom)."""

    __tablename__ = "subscription_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: triggers delete a supporter's history with them (migration 0017), as
    # checking the key on every import row cost a quarter of a large import's time.
    supporter_id: Mapped[int] = mapped_column(BigId, index=True)
    old_status: Mapped[SubscriptionStatus | None] = mapped_column(status_enum)
    new_status: Mapped[SubscriptionStatus] = mapped_column(status_enum)
    channel: Mapped[str] = mapped_column(String(40))  # import, api, one_click, link, bounce, …
    actor: Mapped[str | None] = mapped_column(String(200))  # token name, import id, "supporter"
    detail: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    supporter: Mapped[Supporter] = relationship(
        back_populates="history",
        primaryjoin="foreign(SubscriptionChange.supporter_id) == Supporter.id",
    )


class MailingList(db.Model):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    supporters: Mapped[list[Supporter]] = relationship(
        secondary="list_memberships", back_populates="lists", lazy="raise"
    )


class ListMembership(db.Model):
    __tablename__ = "list_memberships"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    supporter_id: Mapped[int] = mapped_column(
        ForeignKey("supporters.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # (supporter_id, list_id) rather than supporter_id alone: segment counts read it index-only,
    # in supporter order, and merge-join it with ix_supporters_subscribed_id (see segments.py).
    __table_args__ = (Index("ix_list_memberships_supporter_id", "supporter_id", "list_id"),)


# Each connection adds to its own slot (backend pid % LIST_COUNT_SLOTS) of a list's counts, so
# two imports into one list, or an import and a stream of unsubscribes, do not queue on one row.
LIST_COUNT_SLOTS = 8


class ListMemberCount(db.Model):
    """One connection's share of a list's members and subscribed members (sum the slots).

    PostgreSQL triggers on list_memberships and supporters (migration 0015) keep these in the
    transaction that changes a membership or a status, so the counts are exact under the same
    snapshot as the GROUP BY they replace (services.count_list_members, which SQLite uses).
    "Subscribed" is may_be_mailed(); the triggers hold the same rule in SQL, and
    tests/supporters/test_list_counts.py fails if the two part.
    """

    __tablename__ = "list_member_counts"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    members: Mapped[int] = mapped_column(BigInteger)
    subscribed: Mapped[int] = mapped_column(BigInteger)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    supporters: Mapped[list[Supporter]] = relationship(
        secondary="supporter_tags", back_populates="tags", lazy="raise"
    )


class SupporterTag(db.Model):
    __tablename__ = "supporter_tags"

    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    supporter_id: Mapped[int] = mapped_column(
        ForeignKey("supporters.id", ondelete="CASCADE"), primary_key=True
    )

    # Covering (supporter_id, tag_id) for the same reason as list_memberships.
    __table_args__ = (Index("ix_supporter_tags_supporter_id", "supporter_id", "tag_id"),)


class CustomField(db.Model):
    """A custom field name seen on some supporter, so templates can be checked against it."""

    __tablename__ = "custom_fields"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Segment(db.Model):
    """A saved audience: include/exclude lists and tags plus field conditions, stored as data."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[dict] = mapped_column(JsonDict, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ErasedEmail(db.Model):
    """A one-way hash of an erased supporter's address that was suppressed when erased.

    Erasure removes the person, but a later import of an old export must not make them
    "subscribed" again; the hash remembers the opt-out without keeping the address.
    """

    __tablename__ = "erased_emails"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[SubscriptionStatus] = mapped_column(status_enum)
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SupporterImport(db.Model):
    """A CSV import: where the file is, how far it got and what it changed."""

    __tablename__ = "supporter_imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    stored_path: Mapped[str] = mapped_column(String(1000))
    list_name: Mapped[str | None] = mapped_column(String(200))
    tag_names: Mapped[list] = mapped_column(JsonDict, default=list)
    source: Mapped[str | None] = mapped_column(String(200))
    # The codec asked for at upload, else the one detected once the file is read.
    encoding: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[ImportStatus] = mapped_column(
        Enum(
            ImportStatus,
            name="import_status",
            values_callable=lambda members: [m.value for m in members],
        ),
        default=ImportStatus.QUEUED,
    )
    total_rows: Mapped[int | None] = mapped_column()
    processed_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    unchanged_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ImportRejection(db.Model):
    """A CSV row an import could not use, with its row number and why."""

    __tablename__ = "import_rejections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(
        ForeignKey("supporter_imports.id", ondelete="CASCADE"), index=True
    )
    row_number: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("import_id", "row_number"),)
