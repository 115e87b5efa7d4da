"""The database side of a CSV import: write each parsed chunk of supporters and rejections."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import lazyload

from app.db import utcnow
from app.extensions import db
from app.supporters.csvformat import Rejection, SupporterRow, email_hash
from app.supporters.models import (
    ErasedEmail,
    ImportRejection,
    ListMembership,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterImport,
    SupporterTag,
)

SUPPRESSED_DETAIL = "imported already suppressed (status column, or an erased address's opt-out)"


class _Writer:
    def __init__(self, supporter_import: SupporterImport, list_id: int | None, tag_ids: list[int]):
        self.import_id = supporter_import.id
        self.actor = f"import:{supporter_import.id}"
        self.list_id = list_id
        self.tag_ids = tag_ids

    def close(self) -> None:
        pass


class PostgresWriter(_Writer):
    """COPY each chunk into a temporary table, then upsert it with a few set-based statements."""

    STAGE_COLUMNS = (
        "email, first_name, last_name, postcode, country, language, source, status, custom_fields"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params = {
            "actor": self.actor,
            "detail": SUPPRESSED_DETAIL,
            "list_id": self.list_id,
            "tag_ids": self.tag_ids,
        }
        # One statement per chunk: each step reads the previous one's RETURNING, no re-joins.
        steps = [_MATCHED_SQL, _UPSERT_SQL, _HISTORY_SQL]
        if self.list_id is not None or self.tag_ids:
            steps.append(_CHUNK_IDS_SQL)
        if self.list_id is not None:
            steps.append(_LIST_SQL)
        if self.tag_ids:
            steps.append(_TAGS_SQL)
        self.sql = "WITH " + ",\n".join(steps) + _COUNT_SQL

    def _driver(self):
        return db.session.connection().connection.driver_connection

    def _execute(self, sql: str, params=None):
        with self._driver().cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def write(self, rows: list[SupporterRow]) -> tuple[int, int]:
        # Each chunk may get another pooled connection, so make sure the table is there; empty
        # it too, as an outer transaction (a test's) may span several chunks without committing.
        self._execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_stage (email text, first_name text,"
            " last_name text, postcode text, country text, language text, source text,"
            " status subscription_status, custom_fields jsonb) ON COMMIT DELETE ROWS"
        )
        self._execute("TRUNCATE import_stage")
        with (
            self._driver().cursor() as cur,
            cur.copy(f"COPY import_stage ({self.STAGE_COLUMNS}) FROM STDIN") as copy,
        ):
            for r in rows:
                copy.write_row(
                    (
                        r.email,
                        r.first_name,
                        r.last_name,
                        r.postcode,
                        r.country,
                        r.language,
                        r.source,
                        r.status.value,
                        json.dumps(r.custom) if r.custom else "{}",
                    )
                )
        return tuple(self._execute(self.sql, self.params)[0])

    def reject(self, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        with (
            self._driver().cursor() as cur,
            cur.copy(
                "COPY import_rejections (import_id, row_number, reason, raw) FROM STDIN"
            ) as copy,
        ):
            for r in rejections:
                copy.write_row((self.import_id, r.row_number, r.reason, r.raw))

    def close(self) -> None:
        self._execute("DROP TABLE IF EXISTS pg_temp.import_stage")


# The file's values merged over a supporter's: non-empty values win, the first source stays.
_MERGED = {
    "first_name": "COALESCE({new}.first_name, {old}.first_name)",
    "last_name": "COALESCE({new}.last_name, {old}.last_name)",
    "postcode": "COALESCE({new}.postcode, {old}.postcode)",
    "country": "COALESCE({new}.country, {old}.country)",
    "language": "COALESCE({new}.language, {old}.language)",
    "source": "COALESCE({old}.source, {new}.source)",
    "custom_fields": "{old}.custom_fields || {new}.custom_fields",
}


def _changes(new: str, old: str) -> str:
    merged = ", ".join(expr.format(new=new, old=old) for expr in _MERGED.values())
    current = ", ".join(f"{old}.{name}" for name in _MERGED)
    return f"({current}) IS DISTINCT FROM ({merged})"


def _assignments(new: str, old: str) -> str:
    return ", ".join(f"{name} = {expr.format(new=new, old=old)}" for name, expr in _MERGED.items())


# `matched` looks each address up once, read-only: rows that would change nothing are not sent
# through ON CONFLICT at all (which locks and WAL-logs every row it meets), so a re-import of an
# unchanged file writes nothing. LATERAL … LIMIT 1 keeps that lookup an index probe per row
# even when the planner's statistics for a fast-growing table are stale (it would otherwise
# hash the whole supporters table once per chunk).
_MATCHED_SQL = f"""
matched AS MATERIALIZED (
    SELECT s.*, cur.id AS existing_id,
        cur.id IS NULL OR {_changes("s", "cur")} AS needs_write
    FROM import_stage s
    LEFT JOIN LATERAL (
        SELECT * FROM supporters sp WHERE sp.email = s.email LIMIT 1
    ) cur ON true
)"""

# Existing supporters keep their status whatever the file says (an import never resubscribes
# anyone). The update repeats the change test in case a row changed since `matched` read it, so
# updated_at moves only when a value does. `xmax = 0` is true only for rows this statement
# inserted. Sorting by email locks rows in one order, so imports running at once cannot
# deadlock on each other.
_UPSERT_SQL = f"""
upserted AS (
    INSERT INTO supporters AS sp (email, first_name, last_name, postcode, country, language,
        source, custom_fields, status, soft_bounce_count, created_at, updated_at)
    SELECT m.email, m.first_name, m.last_name, m.postcode, m.country, m.language, m.source,
        m.custom_fields, COALESCE(e.status, m.status), 0, now(), now()
    FROM matched m
    LEFT JOIN erased_emails e ON e.email_hash = encode(sha256(convert_to(m.email, 'UTF8')), 'hex')
    WHERE m.needs_write
    ORDER BY m.email
    ON CONFLICT (email) DO UPDATE SET
        {_assignments("EXCLUDED", "sp")},
        updated_at = EXCLUDED.updated_at
    WHERE {_changes("EXCLUDED", "sp")}
    RETURNING sp.id, sp.status, (xmax = 0) AS inserted
)"""

_HISTORY_SQL = """
history AS (
    INSERT INTO subscription_changes (supporter_id, old_status, new_status, channel, actor,
        detail, changed_at)
    SELECT id, NULL, status, 'import', %(actor)s,
        CASE WHEN status <> 'subscribed' THEN %(detail)s END, now()
    FROM upserted WHERE inserted
)"""

# Every supporter of the chunk: the ones just inserted and the ones that already existed.
_CHUNK_IDS_SQL = """
chunk_ids AS (
    SELECT id FROM upserted WHERE inserted
    UNION ALL
    SELECT existing_id FROM matched WHERE existing_id IS NOT NULL
)"""

_LIST_SQL = """
listed AS (
    INSERT INTO list_memberships (list_id, supporter_id, created_at)
    SELECT %(list_id)s, id, now() FROM chunk_ids ORDER BY id
    ON CONFLICT DO NOTHING
)"""

_TAGS_SQL = """
tagged AS (
    INSERT INTO supporter_tags (tag_id, supporter_id)
    SELECT t.id, c.id FROM chunk_ids c CROSS JOIN unnest(%(tag_ids)s::bigint[]) AS t(id)
    ORDER BY c.id
    ON CONFLICT DO NOTHING
)"""

_COUNT_SQL = """
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""


class SqliteWriter(_Writer):
    """The same rules row by row through the ORM: correct, not fast (local development)."""

    MERGED = ("first_name", "last_name", "postcode", "country", "language")

    def write(self, rows: list[SupporterRow]) -> tuple[int, int]:
        created = updated = 0
        for start in range(0, len(rows), 500):
            batch = rows[start : start + 500]
            emails = [r.email for r in batch]
            existing = {
                s.email: s
                for s in db.session.scalars(
                    select(Supporter)
                    .where(Supporter.email.in_(emails))
                    .options(lazyload(Supporter.lists), lazyload(Supporter.tags))
                )
            }
            erased = dict(
                db.session.execute(
                    select(ErasedEmail.email_hash, ErasedEmail.status).where(
                        ErasedEmail.email_hash.in_([email_hash(e) for e in emails])
                    )
                ).all()
            )
            for row in batch:
                supporter = existing.get(row.email)
                if supporter is None:
                    self._create(row, erased.get(email_hash(row.email)))
                    created += 1
                elif self._update(supporter, row):
                    updated += 1
            db.session.flush()
            ids = list(db.session.scalars(select(Supporter.id).where(Supporter.email.in_(emails))))
            self._group(ids)
        return created, updated

    def _create(self, row: SupporterRow, erased_status: SubscriptionStatus | None) -> None:
        status = erased_status or row.status
        supporter = Supporter(
            email=row.email,
            **{name: getattr(row, name) for name in self.MERGED},
            source=row.source,
            custom_fields=dict(row.custom),
            status=status,
            soft_bounce_count=0,
        )
        supporter.history.append(
            SubscriptionChange(
                old_status=None,
                new_status=status,
                channel="import",
                actor=self.actor,
                detail=SUPPRESSED_DETAIL if status != SubscriptionStatus.SUBSCRIBED else None,
            )
        )
        db.session.add(supporter)

    def _update(self, supporter: Supporter, row: SupporterRow) -> bool:
        changes = {
            name: getattr(row, name)
            for name in self.MERGED
            if getattr(row, name) is not None and getattr(row, name) != getattr(supporter, name)
        }
        if supporter.source is None and row.source is not None:
            changes["source"] = row.source
        custom = {**(supporter.custom_fields or {}), **row.custom}
        if custom != (supporter.custom_fields or {}):
            changes["custom_fields"] = custom
        for name, value in changes.items():
            setattr(supporter, name, value)
        return bool(changes)

    def _group(self, supporter_ids: list[int]) -> None:
        if self.list_id is not None and supporter_ids:
            now = utcnow()
            db.session.execute(
                sqlite.insert(ListMembership).on_conflict_do_nothing(),
                [
                    {"list_id": self.list_id, "supporter_id": i, "created_at": now}
                    for i in supporter_ids
                ],
            )
        for tag_id in self.tag_ids:
            db.session.execute(
                sqlite.insert(SupporterTag).on_conflict_do_nothing(),
                [{"tag_id": tag_id, "supporter_id": i} for i in supporter_ids],
            )

    def reject(self, rejections: list[Rejection]) -> None:
        if rejections:
            db.session.execute(
                sqlite.insert(ImportRejection),
                [
                    {
                        "import_id": self.import_id,
                        "row_number": r.row_number,
                        "reason": r.reason,
                        "raw": r.raw,
                    }
                    for r in rejections
                ],
            )
