"""The database side of a CSV import: write each parsed chunk of supporters and rejections."""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import lazyload

from app.db import utcnow
from app.extensions import db
from app.supporters.csvformat import (
    PROFILE_COLUMNS,
    Rejection,
    SupporterChunk,
    SupporterRow,
)
from app.supporters.emails import email_hash
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
    def __init__(
        self,
        supporter_import: SupporterImport,
        list_id: int | None,
        tag_ids: list[int],
        custom_names: list[str] = (),
    ):
        self.import_id = supporter_import.id
        self.actor = f"import:{supporter_import.id}"
        self.list_id = list_id
        self.tag_ids = tag_ids
        self.custom_names = list(custom_names)

    def prepare(self, chunk: SupporterChunk):
        """Do the Python half of writing `chunk`; `write` takes what this returns.

        The importer calls it in its reader thread, so the database never waits on it.
        """
        return chunk


# custom_field_name() makes names of these characters only, so they can be spelt into SQL.
_CUSTOM_NAME = re.compile(r"[0-9a-z_]{1,100}")
# jsonb_build_object takes at most 100 arguments: 50 custom fields per call.
_PAIRS_PER_CALL = 50
# What COPY's text format would read as something else (the cleaning leaves none but "\\").
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def copy_text(columns: list[list]) -> str:
    """Return columns of str/None as the rows of COPY's text format (tabs, \\N for NULL).

    Built with joins over whole columns rather than a Python call per row: at a million rows
    this is most of the difference between Python and COPY's own speed.
    """
    formatted = []
    for values in columns:
        if _COPY_SPECIAL.search("".join(filter(None, values))):
            values = [v and _COPY_SPECIAL.sub(lambda m: _COPY_ESCAPES[m[0]], v) for v in values]
        formatted.append(["\\N" if v is None else v for v in values])
    return "\n".join(map("\t".join, zip(*formatted, strict=True))) + "\n"


class PostgresWriter(_Writer):
    """COPY each chunk into a temporary table, then upsert it with one set-based statement."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.custom_names:
            if not _CUSTOM_NAME.fullmatch(name):
                raise ValueError(f"not a custom field name: {name!r}")
        self.params = {
            "actor": self.actor,
            "detail": SUPPRESSED_DETAIL,
            "list_id": self.list_id,
            "tag_ids": self.tag_ids,
        }
        # The stage holds the custom fields one text column each (c0, c1 …); `matched` folds
        # them into the jsonb the supporters table keeps, dropping the empty ones.
        custom = [f"c{i} text" for i in range(len(self.custom_names))]
        self.create_stage = (
            'CREATE TEMP TABLE import_stage (email text COLLATE "C", '
            + ", ".join(f"{name} text" for name in PROFILE_COLUMNS)
            + ", status subscription_status"
            + "".join(f", {c}" for c in custom)
            + ") ON COMMIT DROP"
        )
        # One statement per chunk: each step reads the previous one's RETURNING, no re-joins.
        # The usual one inserts the addresses `matched` did not find with a plain INSERT, as
        # ON CONFLICT's speculative insertion costs a third more per row; if another writer
        # committed one of them meanwhile, the chunk runs again with every row through it.
        grouping = [_HISTORY_SQL]
        if self.list_id is not None or self.tag_ids:
            grouping.append(_CHUNK_IDS_SQL)
        if self.list_id is not None:
            grouping.append(_LIST_SQL)
        if self.tag_ids:
            grouping.append(_TAGS_SQL)
        matched = _matched_sql(self.custom_names)
        self.sql = _statement([matched, _CREATED_SQL, _CHANGED_SQL, _UPSERTED_SQL, *grouping])
        self.sql_on_conflict = _statement([matched, _UPSERT_SQL, *grouping])

    def _session_connection(self):
        return db.session.connection().connection.driver_connection

    @staticmethod
    def _execute(conn, sql: str, params=None):
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def prepare(self, chunk: SupporterChunk) -> str:
        """Return the chunk as the COPY text of the stage's rows."""
        return copy_text(
            [
                chunk.email,
                *(chunk.profile[name] for name in PROFILE_COLUMNS),
                chunk.status,
                *(chunk.custom[name] for name in self.custom_names),
            ]
        )

    def write(self, stage_rows: str, conn=None) -> tuple[int, int]:
        """Write a prepared chunk in `conn`'s open transaction (the session's by default)."""
        conn = conn or self._session_connection()
        # A new stage per chunk (dropped at commit), as each chunk may get another pooled
        # connection; an outer transaction (a test's) may span several chunks, hence the DROP.
        self._execute(conn, "DROP TABLE IF EXISTS pg_temp.import_stage")
        self._execute(conn, self.create_stage)
        # The chunk's sort and materialised steps fit in memory instead of temporary files.
        self._execute(conn, "SET LOCAL work_mem = '64MB'")
        # The chunk's commit need not wait for its WAL to reach the disk. A crash may lose the
        # last chunks, never the import's end: the commit that marks it done is synchronous,
        # and flushing it flushes every chunk before it. Until then a crash fails the job,
        # whose rerun is idempotent.
        self._execute(conn, "SET LOCAL synchronous_commit = off")
        with conn.cursor() as cur, cur.copy("COPY import_stage FROM STDIN") as copy:
            copy.write(stage_rows)
        self._execute(conn, "SAVEPOINT import_chunk")
        try:
            counts = self._execute(conn, self.sql, self.params)[0]
        except psycopg.errors.UniqueViolation:
            self._execute(conn, "ROLLBACK TO SAVEPOINT import_chunk")
            counts = self._execute(conn, self.sql_on_conflict, self.params)[0]
        self._execute(conn, "RELEASE SAVEPOINT import_chunk")
        return tuple(counts)

    def reject(self, rejections: list[Rejection], conn=None) -> None:
        if not rejections:
            return
        conn = conn or self._session_connection()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY import_rejections (import_id, row_number, reason, raw) FROM STDIN"
            ) as copy,
        ):
            for r in rejections:
                copy.write_row((self.import_id, r.row_number, r.reason, r.raw))


class SessionWrites:
    """Write each chunk in the session's transaction, one at a time, as `submit` is called.

    For SQLite, for a single writer, and for an import run inside a caller's transaction (a
    test's), which must see and roll back everything the import wrote.
    """

    count = 1  # the caller's commit of its progress commits each chunk too

    def __init__(self, writer: _Writer):
        self.writer = writer

    def submit(self, prepared, rejections: list[Rejection]) -> Future:
        future: Future = Future()
        try:
            future.set_result(self.writer.write(prepared) if prepared is not None else (0, 0))
            self.writer.reject(rejections)
        except Exception as exc:
            future.set_exception(exc)
        return future

    def close(self) -> None:
        pass  # each chunk's stage is dropped at the commit that follows it


class ChunkWriters:
    """Write chunks on connections of their own, several at once, each chunk one transaction.

    `submit` hands a prepared chunk and its rejections to a free connection and returns a
    Future of its (created, updated) counts; the caller keeps at most `count` in flight and
    takes the results in the order it submitted them. Chunks written at once may repeat an
    address: the later one waits at the unique index for the earlier one's commit, then runs
    again through ON CONFLICT (PostgresWriter.write), so each address is still one supporter.
    A chunk that fails rolls back alone; the caller stops the import, whose rerun is
    idempotent.
    """

    def __init__(self, writer: PostgresWriter, engine, count: int):
        self.writer = writer
        self.engine = engine
        self.count = count
        self._local = threading.local()
        self._connections: list = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="import-writer")

    def submit(self, stage_rows: str | None, rejections: list[Rejection]) -> Future:
        return self._pool.submit(self._write, stage_rows, rejections)

    def _connection(self):
        if (conn := getattr(self._local, "conn", None)) is None:
            conn = self._local.conn = self.engine.raw_connection()
            with self._lock:
                self._connections.append(conn)
        return conn

    def _write(self, stage_rows: str | None, rejections: list[Rejection]) -> tuple[int, int]:
        conn = self._connection()
        try:
            driver = conn.driver_connection
            counts = self.writer.write(stage_rows, driver) if stage_rows else (0, 0)
            self.writer.reject(rejections, driver)
            driver.commit()
        except BaseException:
            conn.rollback()
            raise
        return counts

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for conn in self._connections:
            conn.close()


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


def _custom_fields_sql(names: list[str]) -> str:
    """SQL for the jsonb of a staged row's non-empty custom fields."""
    if not names:
        return "'{}'::jsonb"
    pairs = [f"'{name}', c{i}" for i, name in enumerate(names)]
    calls = [
        "jsonb_build_object(" + ", ".join(pairs[i : i + _PAIRS_PER_CALL]) + ")"
        for i in range(0, len(pairs), _PAIRS_PER_CALL)
    ]
    return "jsonb_strip_nulls(" + " || ".join(calls) + ")"


# `matched` looks each address up once, read-only: rows that would change nothing are not sent
# through ON CONFLICT at all (which locks and WAL-logs every row it meets), so a re-import of an
# unchanged file writes nothing. LATERAL … LIMIT 1 keeps that lookup an index probe per row
# even when the planner's statistics for a fast-growing table are stale (it would otherwise
# hash the whole supporters table once per chunk).
def _matched_sql(custom_names: list[str]) -> str:
    return f"""
matched AS MATERIALIZED (
    SELECT s.*, cur.id AS existing_id,
        cur.id IS NULL OR {_changes("s", "cur")} AS needs_write
    FROM (
        SELECT email, {", ".join(PROFILE_COLUMNS)}, status,
            {_custom_fields_sql(custom_names)} AS custom_fields
        FROM import_stage
    ) s
    LEFT JOIN LATERAL (
        SELECT * FROM supporters sp WHERE sp.email = s.email LIMIT 1
    ) cur ON true
)"""


# Existing supporters keep their status whatever the file says (an import never resubscribes
# anyone). The update repeats the change test in case a row changed since `matched` read it, so
# updated_at moves only when a value does. `xmax = 0` is true only for rows this statement
# inserted. Sorting by email locks rows in one order, so imports running at once cannot
# deadlock on each other; byte order (COLLATE "C") is any such order, and cheaper to sort by.
# The opt-out an erased address's hash remembers (app/supporters/privacy.py), so it comes back
# suppressed. Hashing every address costs more than the rest of the lookup, so it is done only
# when some address has been erased at all: the EXISTS is an InitPlan, run once per statement.
_ERASED_STATUS_SQL = """CASE WHEN (SELECT EXISTS (SELECT FROM erased_emails)) THEN (
            SELECT e.status FROM erased_emails e
            WHERE e.email_hash = encode(sha256(convert_to(m.email, 'UTF8')), 'hex')
        ) END"""

_COLUMNS = """(email, first_name, last_name, postcode, country, language, source,
        custom_fields, status, soft_bounce_count, created_at, updated_at)"""
_VALUES = f"""m.email, m.first_name, m.last_name, m.postcode, m.country, m.language, m.source,
        m.custom_fields, COALESCE({_ERASED_STATUS_SQL}, m.status), 0, now(), now()"""
_ON_CONFLICT = f"""ON CONFLICT (email) DO UPDATE SET
        {_assignments("EXCLUDED", "sp")},
        updated_at = EXCLUDED.updated_at
    WHERE {_changes("EXCLUDED", "sp")}
    RETURNING sp.id, sp.status, (xmax = 0) AS inserted"""

# The addresses `matched` did not find, in one order so two imports cannot deadlock on them.
_CREATED_SQL = f"""
created AS (
    INSERT INTO supporters AS sp {_COLUMNS}
    SELECT {_VALUES}
    FROM matched m
    WHERE m.existing_id IS NULL
    ORDER BY m.email COLLATE "C"
    RETURNING sp.id, sp.status
)"""

# The supporters `matched` found with something to change (or erased since: inserted again).
_CHANGED_SQL = f"""
changed AS (
    INSERT INTO supporters AS sp {_COLUMNS}
    SELECT {_VALUES}
    FROM matched m
    WHERE m.existing_id IS NOT NULL AND m.needs_write
    ORDER BY m.email COLLATE "C"
    {_ON_CONFLICT}
)"""

_UPSERTED_SQL = """
upserted AS (
    SELECT id, status, true AS inserted FROM created
    UNION ALL
    SELECT id, status, inserted FROM changed
)"""

# Every row that needs writing through ON CONFLICT: the statement a chunk falls back to.
_UPSERT_SQL = f"""
upserted AS (
    INSERT INTO supporters AS sp {_COLUMNS}
    SELECT {_VALUES}
    FROM matched m
    WHERE m.needs_write
    ORDER BY m.email COLLATE "C"
    {_ON_CONFLICT}
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


def _statement(steps: list[str]) -> str:
    return "WITH " + ",\n".join(steps) + _COUNT_SQL


class SqliteWriter(_Writer):
    """The same rules row by row through the ORM: correct, not fast (local development)."""

    MERGED = ("first_name", "last_name", "postcode", "country", "language")

    def write(self, chunk: SupporterChunk) -> tuple[int, int]:
        rows = list(chunk)
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
