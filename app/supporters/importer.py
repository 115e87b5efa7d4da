"""Import supporters from CSV: streamed in chunks, upserted on email, never resubscribing anyone.

The file is read twice: once to check it can be imported at all (UTF-8, has an email column,
every record parses) and to count its rows, then again to import it chunk by chunk, committing
after each chunk so another process can read the progress. A file that fails the check changes
nothing.

Counts: `created` supporters this import created; `updated` existing supporters whose fields
changed; `unchanged` existing supporters the file did not change; `rejected` rows. Rows repeating
an address within a chunk are merged first and counted once; an address repeated further apart
than one chunk is counted again as updated or unchanged. A restarted import counts the
supporters its first attempt created as unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from queue import Full, Queue

from rq import Retry
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import lazyload

from app.db import dialect_name, utcnow
from app.extensions import db
from app.queues import QueueName, enqueue_after_commit
from app.supporters.csvformat import (
    CsvFileError,
    Rejection,
    SupporterCsv,
    SupporterRow,
    email_hash,
    protect_formula,
)
from app.supporters.models import (
    CustomField,
    ErasedEmail,
    ImportRejection,
    ImportStatus,
    ListMembership,
    MailingList,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterImport,
    SupporterTag,
    Tag,
)

CHUNK_SIZE = 20_000
SUPPRESSED_DETAIL = "imported already suppressed (status column, or an erased address's opt-out)"

Progress = Callable[[int, int], None]


def create_import(
    fileobj,
    filename: str,
    *,
    list_name: str | None,
    tag_names: list[str],
    source: str | None,
    created_by: str | None,
    settings,
) -> SupporterImport:
    """Store an uploaded CSV, record the import and queue its job (after the caller commits)."""
    import_dir = Path(settings.import_dir)
    import_dir.mkdir(parents=True, exist_ok=True)
    path = import_dir / f"{uuid.uuid4().hex}.csv"
    with open(path, "wb") as out:
        first = fileobj.read(0)
        if isinstance(first, str):
            fileobj = io.BytesIO(fileobj.read().encode())
        shutil.copyfileobj(fileobj, out, 1024 * 1024)
    supporter_import = _new_import(path, filename, list_name, tag_names, source, created_by)
    enqueue_after_commit(
        db.session,
        settings,
        QueueName.IMPORTS,
        "workers.imports.run_import",
        supporter_import.id,
        job_id=f"import-{supporter_import.id}",
        job_timeout=3600,
        retry=Retry(max=2),
    )
    return supporter_import


def import_file(
    path,
    *,
    list_name: str | None = None,
    tag_names: Iterable[str] = (),
    source: str | None = None,
    created_by: str | None = None,
    settings,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> SupporterImport:
    """Import a local CSV file now, in this process (the CLI's default)."""
    path = Path(path).resolve()
    supporter_import = _new_import(path, path.name, list_name, tag_names, source, created_by)
    db.session.commit()
    return run_import(supporter_import.id, settings, progress, chunk_size=chunk_size)


def _new_import(path, filename, list_name, tag_names, source, created_by) -> SupporterImport:
    supporter_import = SupporterImport(
        filename=str(filename or "upload.csv")[:300],
        stored_path=str(path),
        list_name=(list_name or "").strip()[:200] or None,
        tag_names=sorted({t.strip()[:100] for t in tag_names if t and t.strip()}),
        source=(source or "").strip()[:200] or None,
        created_by=created_by,
        status=ImportStatus.QUEUED,
    )
    db.session.add(supporter_import)
    db.session.flush()
    return supporter_import


def run_import(
    import_id: int, settings, progress: Progress | None = None, *, chunk_size: int = CHUNK_SIZE
) -> SupporterImport:
    """Run an import from its stored file; a finished one is left alone, a half-done one restarts."""
    supporter_import = db.session.get(SupporterImport, import_id)
    if supporter_import is None:
        raise LookupError(f"there is no import {import_id}")
    if supporter_import.status == ImportStatus.DONE:
        return supporter_import
    # The upsert is idempotent, so a restart simply runs again from the top.
    db.session.execute(delete(ImportRejection).where(ImportRejection.import_id == import_id))
    _reset(supporter_import)
    db.session.commit()
    try:
        _run(supporter_import, progress, chunk_size)
    except CsvFileError as exc:
        db.session.rollback()
        _finish(supporter_import, ImportStatus.FAILED, str(exc))
    except Exception as exc:
        db.session.rollback()
        _finish(supporter_import, ImportStatus.FAILED, f"The import stopped unexpectedly: {exc}")
        raise  # let RQ record it and retry
    return supporter_import


def _reset(supporter_import: SupporterImport) -> None:
    supporter_import.status = ImportStatus.RUNNING
    supporter_import.started_at = utcnow()
    supporter_import.finished_at = None
    supporter_import.error = None
    supporter_import.total_rows = None
    supporter_import.processed_rows = 0
    supporter_import.created_count = supporter_import.updated_count = 0
    supporter_import.unchanged_count = supporter_import.rejected_count = 0


def _finish(supporter_import: SupporterImport, status: ImportStatus, error: str | None) -> None:
    supporter_import.status = status
    supporter_import.error = error
    supporter_import.finished_at = utcnow()
    db.session.commit()


def _run(supporter_import: SupporterImport, progress: Progress | None, chunk_size: int) -> None:
    path = Path(supporter_import.stored_path)
    if not path.is_file():
        raise CsvFileError("The uploaded file is no longer on the server; upload it again.")
    csv_file = SupporterCsv(path)
    total = csv_file.check()
    if total == 0:
        raise CsvFileError("The file has a header but no rows of supporters.")
    supporter_import.total_rows = total
    writer_class = _PostgresWriter if dialect_name(db.session) == "postgresql" else _SqliteWriter
    writer = writer_class(
        supporter_import,
        list_id=_ensure_list(supporter_import.list_name),
        tag_ids=_ensure_tags(supporter_import.tag_names or []),
    )
    _ensure_custom_fields(csv_file.custom_field_names)
    db.session.commit()
    if progress:
        progress(0, total)
    chunks = csv_file.chunks(chunk_size, supporter_import.source)
    for rows_read, rows, rejections in _read_ahead(chunks):
        created, updated = writer.write(rows) if rows else (0, 0)
        writer.reject(rejections)
        supporter_import.created_count += created
        supporter_import.updated_count += updated
        supporter_import.unchanged_count += len(rows) - created - updated
        supporter_import.rejected_count += len(rejections)
        supporter_import.processed_rows = rows_read
        db.session.commit()
        if progress:
            progress(rows_read, total)
    writer.close()
    _finish(supporter_import, ImportStatus.DONE, None)


def _read_ahead(chunks: Iterator) -> Iterator:
    """Parse the next chunk in a thread while the database writes this one.

    The driver releases the GIL while it waits for the server, so on two cores the Python
    parsing and the SQL overlap.
    """
    queue: Queue = Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        queue.put(chunk, timeout=0.5)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put(exc)

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _insert(model):
    dialect = postgresql if dialect_name(db.session) == "postgresql" else sqlite
    return dialect.insert(model)


def _ensure_list(name: str | None) -> int | None:
    if not name:
        return None
    db.session.execute(
        _insert(MailingList).values(name=name, created_at=utcnow()).on_conflict_do_nothing()
    )
    return db.session.scalar(select(MailingList.id).where(MailingList.name == name))


def _ensure_tags(names: list[str]) -> list[int]:
    if not names:
        return []
    now = utcnow()
    db.session.execute(
        _insert(Tag).on_conflict_do_nothing(), [{"name": n, "created_at": now} for n in names]
    )
    return list(db.session.scalars(select(Tag.id).where(Tag.name.in_(names))))


def _ensure_custom_fields(names: list[str]) -> None:
    if names:
        now = utcnow()
        db.session.execute(
            _insert(CustomField).on_conflict_do_nothing(),
            [{"name": n, "created_at": now} for n in names],
        )


def rejections_csv(import_id: int) -> Iterator[str]:
    """Stream an import's rejected rows as CSV: row, reason, raw."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "reason", "raw"])
    stmt = (
        select(ImportRejection.row_number, ImportRejection.reason, ImportRejection.raw)
        .where(ImportRejection.import_id == import_id)
        .order_by(ImportRejection.row_number)
        .execution_options(yield_per=1000)
    )
    for count, (row_number, reason, raw) in enumerate(db.session.execute(stmt), 1):
        writer.writerow([row_number, protect_formula(reason), protect_formula(raw or "")])
        if count % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


class _Writer:
    def __init__(self, supporter_import: SupporterImport, list_id: int | None, tag_ids: list[int]):
        self.import_id = supporter_import.id
        self.actor = f"import:{supporter_import.id}"
        self.list_id = list_id
        self.tag_ids = tag_ids

    def close(self) -> None:
        pass


class _PostgresWriter(_Writer):
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


class _SqliteWriter(_Writer):
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
