"""CSV export of supporters, on real PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from app.extensions import db
from app.supporters.exporter import ExportError, export_csv, export_supporters
from app.supporters.importer import import_file
from app.supporters.models import Segment, SubscriptionStatus, Supporter


@pytest.fixture
def imported(tmp_path, settings):
    def run(text: str, **options):
        path = tmp_path / "in.csv"
        path.write_text(text, encoding="utf-8")
        return import_file(path, settings=settings, **options)

    return run


def read(pieces) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(pieces))))


def test_export_has_standard_then_custom_columns(imported):
    imported("email,first_name,country,Team,Shirt\na@example.org,Ann,fr,red,\nb@example.org,,,,L\n")
    text = "".join(export_supporters())
    header = text.splitlines()[0]
    assert header == (
        "email,first_name,last_name,postcode,country,language,status,source,created_at,shirt,team"
    )
    rows = read([text])
    assert [r["email"] for r in rows] == ["a@example.org", "b@example.org"]
    assert rows[0]["country"] == "FR" and rows[0]["team"] == "red" and rows[0]["shirt"] == ""
    assert rows[0]["status"] == "subscribed" and rows[0]["created_at"].startswith("20")


def test_formula_injection_is_quoted_and_round_trips(imported, tmp_path, settings):
    payload = "=cmd|' /C calc'!A0"
    imported(f'email,first_name,last_name,note\n-x@example.org,"{payload}",+44 20,@SUM(A1)\n')
    assert db.session.scalar(select(Supporter.first_name)) == payload
    text = "".join(export_supporters())
    row = read([text])[0]
    assert row["first_name"] == "'" + payload
    assert row["email"] == "'-x@example.org"
    assert row["last_name"] == "'+44 20" and row["note"] == "'@SUM(A1)"
    # Importing the export back changes nothing: the importer drops the protective quote.
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    again = import_file(path, settings=settings)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 1)
    assert db.session.scalar(select(Supporter.first_name)) == payload


def test_export_a_list_only(imported):
    imported("email\non@example.org\n", list_name="Members")
    imported("email\noff@example.org\n")
    rows = read(export_supporters(list_name="Members"))
    assert [r["email"] for r in rows] == ["on@example.org"]
    with pytest.raises(ExportError):
        export_supporters(list_name="No such list")


def test_export_a_segment(imported):
    imported("email,country\nfr@example.org,FR\nde@example.org,DE\nfr2@example.org,fr\n")
    person = db.session.scalar(select(Supporter).where(Supporter.email == "fr2@example.org"))
    person.status = SubscriptionStatus.UNSUBSCRIBED
    segment = Segment(
        name="French",
        definition={"conditions": [{"field": "country", "op": "eq", "value": "FR"}]},
    )
    db.session.add(segment)
    db.session.flush()
    rows = read(export_supporters(segment_id=segment.id))
    assert [r["email"] for r in rows] == ["fr@example.org"]
    with pytest.raises(ExportError):
        export_supporters(segment_id=segment.id + 1000)


def test_export_any_select_and_streams_in_pieces(imported):
    imported("email\n" + "".join(f"p{i}@example.org\n" for i in range(2500)))
    pieces = list(export_csv(select(Supporter).where(Supporter.email.like("p1%"))))
    assert len(read(pieces)) == 1 + 10 + 100 + 1000
    assert len(list(export_csv())) >= 3  # a piece per thousand rows, not one big string
