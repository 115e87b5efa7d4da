"""Text encodings of imported CSV files: detected, recorded, overridable, refused when unknown."""

from __future__ import annotations

import codecs
import io

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.supporters.csvencoding import PREFIX_BYTES
from app.supporters.importer import import_file, run_import
from app.supporters.models import ImportStatus, Supporter, SupporterImport
from tests.api.test_api_base import assert_error

# What Windows Excel's plain "CSV" writes in Western Europe: Windows-1252, semicolons in German
# locales, curly quotes and the euro sign from AutoCorrect.
EXCEL_ROWS = (
    "E-Mail;Vorname;Nachname;Notiz\r\n"
    "jose@example.org;José;Groß;“Spende” 5 €\r\n"
    "zoe@example.org;Zoë;O’Brien;‚ok‘ – „gut“\r\n"
)


@pytest.fixture
def write_csv(tmp_path):
    def write(content: bytes, name: str = "people.csv"):
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return write


@pytest.fixture
def do_import(settings):
    def run(path, **options):
        return import_file(path, settings=settings, **options)

    return run


def people() -> dict[str, tuple]:
    rows = db.session.execute(
        select(Supporter.email, Supporter.first_name, Supporter.last_name, Supporter.custom_fields)
    )
    return {email: (first, last, custom.get("notiz")) for email, first, last, custom in rows}


EXPECTED = {
    "jose@example.org": ("José", "Groß", "“Spende” 5 €"),
    "zoe@example.org": ("Zoë", "O’Brien", "‚ok‘ – „gut“"),
}


def test_windows_excel_csv_is_read_as_cp1252(write_csv, do_import):
    content = EXCEL_ROWS.encode("cp1252")
    assert b"\x80" in content and b"\x93" in content and b"\xdf" in content  # €, “, ß
    result = do_import(write_csv(content))
    assert result.status == ImportStatus.DONE, result.error
    assert result.encoding == "cp1252"
    assert people() == EXPECTED


def test_utf8_with_and_without_bom(write_csv, do_import):
    result = do_import(write_csv(EXCEL_ROWS.encode("utf-8-sig")))
    assert (result.status, result.encoding) == (ImportStatus.DONE, "utf-8-sig")
    assert people() == EXPECTED
    result = do_import(write_csv(EXCEL_ROWS.replace("Spende", "Gabe").encode(), "b.csv"))
    assert (result.status, result.encoding) == (ImportStatus.DONE, "utf-8")
    assert people()["jose@example.org"][2] == "“Gabe” 5 €"


def test_excel_unicode_text_is_utf16_with_tabs(write_csv, do_import):
    content = codecs.BOM_UTF16_LE + EXCEL_ROWS.replace(";", "\t").encode("utf-16-le")
    result = do_import(write_csv(content, "people.txt"))
    assert (result.status, result.encoding) == (ImportStatus.DONE, "utf-16"), result.error
    assert people() == EXPECTED


def test_multibyte_character_split_at_the_prefix_boundary(write_csv, do_import):
    start = b"email,first_name\n"
    last = b"last@example.org,"
    row = len(b"p000000@example.org,Pat\n")
    count = (PREFIX_BYTES - 1 - len(start) - len(last) - 50) // row
    start += b"".join(b"p%06d@example.org,Pat\n" % i for i in range(count)) + last
    name = "Z" * (PREFIX_BYTES - 1 - len(start)) + "ë"
    content = start + f"{name}\n".encode()
    assert content[PREFIX_BYTES - 1 : PREFIX_BYTES + 1] == "ë".encode()  # split by the prefix
    result = do_import(write_csv(content))
    assert (result.status, result.encoding) == (ImportStatus.DONE, "utf-8"), result.error
    found = db.session.scalar(select(Supporter).where(Supporter.email == "last@example.org"))
    assert found.first_name == name


def test_ascii_start_and_cp1252_later_is_detected_again(write_csv, do_import):
    rows = b"".join(b"p%06d@example.org,Pat\n" % i for i in range(5000))
    assert len(rows) > PREFIX_BYTES
    content = b"email,first_name\n" + rows + "late@example.org,Renée\n".encode("cp1252")
    result = do_import(write_csv(content))
    assert (result.status, result.encoding) == (ImportStatus.DONE, "cp1252"), result.error
    assert result.created_count == 5001
    late = db.session.scalar(select(Supporter).where(Supporter.email == "late@example.org"))
    assert late.first_name == "Renée"


def test_file_in_no_known_encoding_is_refused_clearly(write_csv, do_import):
    content = b"email,name\na@example.org,\x81\x8d\x90\x9d\xff\xfe\x00\x01\x02\x03\n"
    result = do_import(write_csv(content))
    assert result.status == ImportStatus.FAILED
    assert "encoding could not be recognised" in result.error
    assert "CSV UTF-8" in result.error
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 0


def test_forced_encoding_is_used_and_its_failure_named(write_csv, do_import):
    content = "email,first_name\na@example.org,Ann\nb@example.org,Andr\xe9\n".encode("cp1252")
    result = do_import(write_csv(content), encoding="UTF8")
    assert result.status == ImportStatus.FAILED
    assert result.encoding == "utf-8"
    assert "not UTF-8 text" in result.error and "row 3" in result.error
    assert "0xE9" in result.error and "check the encoding given" in result.error

    result = do_import(write_csv(content, "b.csv"), encoding="latin-1")
    assert (result.status, result.encoding) == (ImportStatus.DONE, "iso8859-1")
    names = db.session.scalars(select(Supporter.first_name).order_by(Supporter.email))
    assert list(names) == ["Ann", "André"]


def test_unknown_encoding_is_refused_before_anything_is_stored(write_csv, do_import):
    with pytest.raises(ValueError, match="not a known text encoding"):
        do_import(write_csv(b"email\na@example.org\n"), encoding="klingon")
    with pytest.raises(ValueError, match="not a text encoding"):
        do_import(write_csv(b"email\na@example.org\n"), encoding="base64")
    assert db.session.scalar(select(func.count()).select_from(SupporterImport)) == 0


def test_cli_reports_encoding_and_takes_an_override(app, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(EXCEL_ROWS.encode("cp1252"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["supporters", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Read as Windows-1252" in result.output
    assert people() == EXPECTED

    result = runner.invoke(args=["supporters", "import", str(path), "--encoding", "nope"])
    assert result.exit_code == 2
    assert "not a known text encoding" in result.output

    result = runner.invoke(args=["supporters", "import", str(path), "--encoding", "utf-8"])
    assert result.exit_code == 1
    assert "not UTF-8 text" in result.output


def upload(client, headers, content: bytes, **form):
    data = {"file": (io.BytesIO(content), "people.csv"), **form}
    return client.post(
        "/api/v1/imports", data=data, headers=headers, content_type="multipart/form-data"
    )


def test_api_accepts_cp1252_and_reports_the_encoding(client, api_token, settings):
    headers = api_token("campaigner")
    response = upload(client, headers, EXCEL_ROWS.encode("cp1252"))
    assert response.status_code == 202, response.get_data(as_text=True)
    import_id = response.get_json()["id"]
    run_import(import_id, settings)  # what the worker's job does
    body = client.get(f"/api/v1/imports/{import_id}", headers=headers).get_json()
    assert body["status"] == "done"
    assert body["encoding"] == "cp1252"
    assert body["encoding_name"].startswith("Windows-1252")
    assert people() == EXPECTED


def test_api_encoding_field_overrides_and_is_validated(client, api_token, settings):
    headers = api_token("campaigner")
    response = upload(client, headers, b"email\na@example.org\n", encoding="klingon")
    assert "encoding" in assert_error(response, 422, "validation_error")["details"]

    response = upload(
        client, headers, "email,n\na@example.org,Andr\xe9\n".encode(), encoding="latin-1"
    )
    assert response.status_code == 202
    import_id = response.get_json()["id"]
    assert db.session.get(SupporterImport, import_id).encoding == "iso8859-1"
    run_import(import_id, settings)
    body = client.get(f"/api/v1/imports/{import_id}", headers=headers).get_json()
    assert (body["status"], body["encoding"]) == ("done", "iso8859-1")


def test_api_refuses_bytes_in_no_text_encoding_as_not_text(client, api_token):
    # The same check as the staff upload's (app/supporters/import_preview.py): NUL bytes outside
    # UTF-16/32 mean a spreadsheet or another binary file, which is what the message says.
    response = upload(client, api_token("campaigner"), b"email\n\x81\x8d\x90\x9d\xff\x00\x01")
    error = assert_error(response, 422, "invalid_import")
    assert "The file is not text" in error["message"]
