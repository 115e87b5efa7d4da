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
from app.supporters.csvrows import (
    PROFILE_COLUMNS,
    Rejection,
    SupporterChunk,
    SupporterRow,
)
from app.supporters.emails import email_hash
from app.supporters.import_sql import chunk_statements, stage_table_sql
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
    """COPY each chunk into a temporary table, then upsert it with one set-based statement
    (app/supporters/import_sql.py)."""

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
        self.create_stage = stage_table_sql(self.custom_names)
        self.sql, self.sql_on_conflict = chunk_statements(
            self.custom_names, with_list=self.list_id is not None, with_tags=bool(self.tag_ids)
        )

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
    takes the results in the order it submitted them, and never has two chunks in flight
    that share an address (the file's later row must win; app/supporters/importer.py). An
    address another writer (the API, another import) commits meanwhile makes the chunk's plain
    INSERT wait at the unique index and run again through ON CONFLICT (PostgresWriter.write),
    so each address is still one supporter. A chunk that fails rolls back alone; the caller
    stops the import, whose rerun is idempotent.
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
