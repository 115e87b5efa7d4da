"""Export supporters as CSV, streamed from a server-side cursor so memory stays flat.

Every cell a spreadsheet would treat as a formula (starting with = + - @, tab or CR) gets a
leading apostrophe, as OWASP advises against CSV injection; the importer removes it again, so an
export imported back changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from sqlalchemy import Select, select

from app.errors import NotFound
from app.extensions import db
from app.supporters.csvcells import spreadsheet_safe
from app.supporters.models import CustomField, ListMembership, MailingList, Segment, Supporter
from app.supporters.segments import segment_query

STANDARD_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "postcode",
    "country",
    "language",
    "status",
    "source",
    "created_at",
)
ROWS_PER_PIECE = 1000


class ExportError(NotFound, LookupError):
    """The list or segment asked for does not exist."""


def export_supporters(
    *, list_name: str | None = None, segment_id: int | None = None
) -> Iterator[str]:
    """Stream every supporter, or those on a list or in a saved segment, as CSV text."""
    if list_name is not None and segment_id is not None:
        raise ExportError("Export a list or a segment, not both.")
    if list_name is not None:
        list_id = db.session.scalar(select(MailingList.id).where(MailingList.name == list_name))
        if list_id is None:
            raise ExportError(f"There is no list named {list_name!r}.")
        ids = select(ListMembership.supporter_id).where(ListMembership.list_id == list_id)
        return export_csv(ids)
    if segment_id is not None:
        segment = db.session.get(Segment, segment_id)
        if segment is None:
            raise ExportError(f"There is no segment {segment_id}.")

        return export_csv(segment_query(segment.definition or {}))
    return export_csv(None)


def export_csv(supporters: Select | None = None) -> Iterator[str]:
    """Stream the supporters a select returns (ids or Supporter rows; all if None) as CSV text."""
    custom_names = list(db.session.scalars(select(CustomField.name).order_by(CustomField.name)))
    stmt = select(*(getattr(Supporter, c) for c in STANDARD_COLUMNS), Supporter.custom_fields)
    if supporters is not None:
        chosen = supporters.subquery()
        id_column = chosen.c.id if "id" in chosen.c else next(iter(chosen.c))
        stmt = stmt.where(Supporter.id.in_(select(id_column)))
    stmt = stmt.order_by(Supporter.id).execution_options(yield_per=ROWS_PER_PIECE)
    return _write(stmt, custom_names)


def _write(stmt: Select, custom_names: list[str]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*STANDARD_COLUMNS, *(spreadsheet_safe(n) for n in custom_names)])
    for count, row in enumerate(db.session.execute(stmt), 1):
        *standard, custom = row
        cells = [_cell(value) for value in standard]
        custom = custom or {}
        cells.extend(_cell(custom.get(name)) for name in custom_names)
        writer.writerow(cells)
        if count % ROWS_PER_PIECE == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str):
        return spreadsheet_safe(value)
    if isinstance(value, (dict, list)):
        return spreadsheet_safe(json.dumps(value, ensure_ascii=False))
    return spreadsheet_safe(str(getattr(value, "value", value)))
