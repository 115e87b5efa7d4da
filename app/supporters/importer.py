"""Import supporters from CSV: streamed in chunks, upserted on email, never resubscribing anyone.

The file is read twice: once to check it can be imported at all (its text encoding is known or
detected, it has an email column, every record parses) and to count its rows, then again to
import it chunk by chunk, committing after each chunk so another process can read the progress.
A file that fails the check changes nothing. The import records the encoding it read the file in.

Counts: `created` supporters this import created; `updated` existing supporters whose fields
changed; `unchanged` existing supporters the file did not change; `rejected` rows. Rows repeating
an address within a chunk are merged first and counted once; an address repeated further apart
than one chunk is counted again as updated or unchanged. A restarted import counts the
supporters its first attempt created as unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from queue import Full, Queue

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from app.db import dialect_name, utcnow
from app.errors import NotFound
from app.extensions import db
from app.jobs import RUN_IMPORT, enqueue
from app.supporters.csvcells import spreadsheet_safe
from app.supporters.csvencoding import codec_name
from app.supporters.csvformat import CsvFileError, SupporterCsv
from app.supporters.import_writers import (
    ChunkWriters,
    PostgresWriter,
    SessionWrites,
    SqliteWriter,
)
from app.supporters.models import (
    CustomField,
    ImportRejection,
    ImportStatus,
    MailingList,
    SupporterImport,
    Tag,
)
from app.supporters.uploads import store_upload

CHUNK_SIZE = 20_000

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
    encoding: str | None = None,
) -> SupporterImport:
    """Store an uploaded CSV, record the import and queue its job (after the caller commits).

    `encoding` forces the file's text encoding; without it the import detects it.
    """
    encoding = codec_name(encoding) if encoding else None  # refused before anything is stored
    return queue_stored_import(
        store_upload(fileobj, settings),
        filename,
        list_name=list_name,
        tag_names=tag_names,
        source=source,
        created_by=created_by,
        settings=settings,
        encoding=encoding,
    )


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
    encoding: str | None = None,
) -> SupporterImport:
    """Import a local CSV file now, in this process (the CLI's default)."""
    path = Path(path).resolve()
    encoding = codec_name(encoding) if encoding else None
    supporter_import = _new_import(
        path, path.name, list_name, tag_names, source, created_by, encoding
    )
    db.session.commit()
    return run_import(supporter_import.id, settings, progress, chunk_size=chunk_size)


def _new_import(
    path, filename, list_name, tag_names, source, created_by, encoding
) -> SupporterImport:
    supporter_import = SupporterImport(
        filename=str(filename or "upload.csv")[:300],
        stored_path=str(path),
        list_name=(list_name or "").strip()[:200] or None,
        tag_names=sorted({t.strip()[:100] for t in tag_names if t and t.strip()}),
        source=(source or "").strip()[:200] or None,
        created_by=created_by,
        encoding=encoding,
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
        with _without_cyclic_gc():
            _run(supporter_import, progress, chunk_size, settings.import_writers)
    except CsvFileError as exc:
        db.session.rollback()
        _finish(supporter_import, ImportStatus.FAILED, str(exc))
    except Exception as exc:
        db.session.rollback()
        _finish(supporter_import, ImportStatus.FAILED, f"The import stopped unexpectedly: {exc}")
        raise  # let RQ record it and retry
    return supporter_import


@contextlib.contextmanager
def _without_cyclic_gc():
    """Pause Python's cycle collector for the import, and run it once at the end.

    The CSV reader makes a list per record and a chunk keeps 20,000 of them alive, so the
    collector's generations fill and it rescans them again and again: a third of the import's
    Python time at a million rows, measured, for nothing, as an import makes no reference
    cycles worth collecting early. Reference counting still frees every chunk as it goes.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


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


def _run(
    supporter_import: SupporterImport,
    progress: Progress | None,
    chunk_size: int,
    writer_count: int,
) -> None:
    path = Path(supporter_import.stored_path)
    if not path.is_file():
        raise CsvFileError("The uploaded file is no longer on the server; upload it again.")
    csv_file = SupporterCsv(path, supporter_import.encoding)
    total = csv_file.check()
    supporter_import.encoding = csv_file.encoding
    if total == 0:
        raise CsvFileError("The file has a header but no rows of supporters.")
    supporter_import.total_rows = total
    writer_class = PostgresWriter if dialect_name(db.session) == "postgresql" else SqliteWriter
    writer = writer_class(
        supporter_import,
        list_id=_ensure_list(supporter_import.list_name),
        tag_ids=_ensure_tags(supporter_import.tag_names or []),
        custom_names=csv_file.custom_field_names,
    )
    _ensure_custom_fields(csv_file.custom_field_names)
    db.session.commit()
    if progress:
        progress(0, total)
    writes = _writes(writer, writer_count)
    # Chunks written at once must not share an address: the later row of the file must win,
    # and of two chunks in flight either may commit first. So a chunk that repeats an address
    # of one still being written waits for it (a file rarely does; a set costs ~1 ms).
    chunks = (
        (rows_read, len(rows), writer.prepare(rows) if rows else None, rejections, set(rows.email))
        for rows_read, rows, rejections in csv_file.chunks(chunk_size, supporter_import.source)
    )

    def account(rows_read, row_count, rejected, written: Future) -> None:
        created, updated = written.result()
        supporter_import.created_count += created
        supporter_import.updated_count += updated
        supporter_import.unchanged_count += row_count - created - updated
        supporter_import.rejected_count += rejected
        supporter_import.processed_rows = rows_read
        db.session.commit()
        if progress:
            progress(rows_read, total)

    try:
        _write_in_order(writes, _read_ahead(chunks), account)
    finally:
        writes.close()
    _finish(supporter_import, ImportStatus.DONE, None)


def _write_in_order(writes, chunks: Iterator, account: Callable) -> None:
    """Hand each chunk to `writes`, at most `writes.count` at once, and `account` for each
    written chunk in file order; a chunk sharing an address with one in flight waits for it."""
    in_flight: deque = deque()  # (addresses, what `account` takes), oldest first
    for rows_read, row_count, prepared, rejections, emails in chunks:
        while in_flight and (
            len(in_flight) >= writes.count or any(emails & earlier for earlier, _ in in_flight)
        ):
            account(*in_flight.popleft()[1])
        written = writes.submit(prepared, rejections)
        in_flight.append((emails, (rows_read, row_count, len(rejections), written)))
    while in_flight:
        account(*in_flight.popleft()[1])


def _writes(writer, count: int):
    """Where the chunks are written: on `count` connections of their own where that can be."""
    bind = db.session.get_bind()
    if count > 1 and isinstance(writer, PostgresWriter) and not isinstance(bind, Connection):
        return ChunkWriters(writer, bind, count)
    return SessionWrites(writer)


def _read_ahead(chunks: Iterator) -> Iterator:
    """Parse (and prepare) the next chunk in a thread while the database writes this one.

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
        writer.writerow([row_number, spreadsheet_safe(reason), spreadsheet_safe(raw or "")])
        if count % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def queue_stored_import(
    path: Path,
    filename: str,
    *,
    list_name: str | None,
    tag_names: list[str],
    source: str | None,
    created_by: str | None,
    settings,
    encoding: str | None = None,
) -> SupporterImport:
    """Record an import of a stored upload and queue its job (after the caller commits)."""
    encoding = codec_name(encoding) if encoding else None
    supporter_import = _new_import(
        path, filename, list_name, tag_names, source, created_by, encoding
    )
    enqueue(RUN_IMPORT, settings, supporter_import.id, after_commit_of=db.session)
    return supporter_import


def import_of_stored_upload(path: Path) -> SupporterImport | None:
    """Return the import already made from a stored upload (a second "start" finds it)."""
    return db.session.scalar(
        select(SupporterImport)
        .where(SupporterImport.stored_path == str(path))
        .order_by(SupporterImport.id)
        .limit(1)
    )


def get_import(import_id: int) -> SupporterImport:
    """Return import `import_id`, or raise NotFound."""
    supporter_import = db.session.get(SupporterImport, import_id)
    if supporter_import is None:
        raise NotFound(f"There is no import {import_id}.")
    return supporter_import


def recent_imports(*, limit: int, before_id: int | None = None) -> list[SupporterImport]:
    """Newest first, `limit` imports older than `before_id` (keyset pagination by id)."""
    stmt = select(SupporterImport).order_by(SupporterImport.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(SupporterImport.id < before_id)
    return list(db.session.scalars(stmt))
