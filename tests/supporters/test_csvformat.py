"""Edge cases of reading (and protecting) supporter CSV files, through SupporterCsv's public API.

These tests read files only; nothing is written to the database (test_import.py covers that).
"""

from __future__ import annotations

import pytest

from app.supporters.csvcells import (
    clean_text,
    custom_field_name,
    spreadsheet_safe,
    unquote_spreadsheet_safe,
)
from app.supporters.csvencoding import CsvFileError
from app.supporters.csvformat import SupporterCsv
from app.supporters.emails import normalise_email
from app.supporters.models import SubscriptionStatus


@pytest.fixture
def read(tmp_path):
    """Return a function reading CSV content into (file, rows, rejections)."""

    def read_csv(content: str | bytes, source: str | None = None):
        path = tmp_path / "people.csv"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        csv_file = SupporterCsv(path)
        csv_file.check()
        rows, rejections = [], []
        for _, chunk_rows, chunk_rejections in csv_file.chunks(1000, source=source):
            rows += chunk_rows
            rejections += chunk_rejections
        return csv_file, rows, rejections

    return read_csv


@pytest.mark.parametrize(
    "content, delimiter",
    [
        ("email,first_name\nann@example.org,Ann\n", ","),
        ("email;first_name\nann@example.org;Ann\n", ";"),
        ("email\tfirst_name\nann@example.org\tAnn\n", "\t"),
        # Delimiters inside quoted header names do not count.
        ('"Name; or, names"\temail\nAnn\tann@example.org\n', "\t"),
        ('"a,b,c";email;first_name\nx;ann@example.org;Ann\n', ";"),
        # One column only: comma by default.
        ("email\nann@example.org\n", ","),
        # The most frequent wins; the data rows are not looked at.
        ("email;first_name,last_name;postcode\nann@example.org;Ann,Lee;1\n", ";"),
    ],
)
def test_delimiter_is_sniffed_from_the_header(read, content, delimiter):
    csv_file, rows, rejections = read(content)
    assert csv_file.delimiter == delimiter
    assert [r.email for r in rows] == ["ann@example.org"] and rejections == []


def test_a_pipe_delimited_file_has_no_email_column(read):
    with pytest.raises(CsvFileError, match="no email column.*delimiter ','"):
        read("email|first_name\nann@example.org|Ann\n")


@pytest.mark.parametrize(
    "content",
    [
        "\ufeffEmail,First Name\r\nann@example.org,Ann\r\n".encode("utf-8"),
        "\ufeffEmail;First Name\r\nann@example.org;Ann\r\n".encode("utf-8"),
        "\ufeffEmail,First Name\r\nann@example.org,Ann\r\n".encode("utf-16-le"),
        "\ufeffEmail,First Name\r\nann@example.org,Ann\r\n".encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8-semicolon", "utf-16-le", "utf-16-be"],
)
def test_byte_order_mark_is_not_part_of_the_first_header(read, content):
    csv_file, rows, _ = read(content)
    assert csv_file.custom_field_names == []
    assert [(r.email, r.first_name) for r in rows] == [("ann@example.org", "Ann")]


@pytest.mark.parametrize(
    "content",
    ["", "\ufeff", "\r\n\r\n", "   \n\t\n", b"\xef\xbb\xbf\r\n"],
    ids=["empty", "bom", "crlf", "blank", "bom-crlf"],
)
def test_empty_files_are_refused(read, content):
    with pytest.raises(CsvFileError, match="The file is empty"):
        read(content)


@pytest.mark.parametrize(
    "header, field",
    [
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("Mail", "email"),
        ("Courriel", "email"),
        ("correo", "email"),
        ("First Name", "first_name"),
        ("Given name", "first_name"),
        ("Vorname", "first_name"),
        ("Prénom", "first_name"),
        ("fname", "first_name"),
        ("Last_Name", "last_name"),
        ("Surname", "last_name"),
        ("Nachname", "last_name"),
        ("Nom", "last_name"),
        ("ZIP code", "postcode"),
        ("Postal Code", "postcode"),
        ("Postcode/ZIP", "postcode"),
        ("PLZ", "postcode"),
        ("Code postal", "postcode"),
        ("Country Code", "country"),
        ("Land", "country"),
        ("País", "country"),
        ("Preferred Language", "language"),
        ("locale", "language"),
        ("Sprache", "language"),
        ("Signup Source", "source"),
        ("Subscription Status", "status"),
        ("Email Status", "status"),
    ],
)
def test_header_aliases(read, header, field):
    values = {
        "email": "ann@example.org",
        "first_name": "Ann",
        "last_name": "Lee",
        "postcode": "12345",
        "country": "fr",
        "language": "fr",
        "source": "stall",
        "status": "unsubscribed",
    }
    if field == "email":
        content = f"{header}\n{values['email']}\n"
    else:
        content = f"email,{header}\nann@example.org,{values[field]}\n"
    csv_file, (row,), _ = read(content)
    assert csv_file.custom_field_names == []
    expected = {"country": "FR", "status": SubscriptionStatus.UNSUBSCRIBED}.get(
        field, values[field]
    )
    assert getattr(row, field) == expected


def test_first_of_two_columns_for_one_field_wins_and_the_rest_are_ignored(read):
    csv_file, (row,), _ = read("Email,Mail,First,Vorname\nann@example.org,x@y.org,Ann,Anna\n")
    assert (row.email, row.first_name) == ("ann@example.org", "Ann")
    assert csv_file.custom_field_names == []


def test_custom_columns_are_named_for_merge_fields_once_each(read):
    csv_file, (row,), _ = read(
        "email,Shoe Size!,shoe size,created_at,updated_at,,Town\n"
        "ann@example.org,42,43,2024-01-01,2024-01-02,x,Leeds\n"
    )
    assert csv_file.custom_field_names == ["shoe_size", "town"]
    assert row.custom == {"shoe_size": "42", "town": "Leeds"}
    assert custom_field_name("  Ünïcode -- Town  ") == "n_code_town"
    assert custom_field_name("x" * 150) == "x" * 100


def test_quoted_newlines_stay_in_one_row_and_rows_are_numbered_by_record(read):
    _, rows, rejections = read(
        "email,first_name,notes\n"
        'ann@example.org,"Ann\nMarie","line one\r\nline two"\n'
        "not-an-email,Bob,x\n"
        'cy@example.org,Cy,"a ""quoted"" word"\n'
    )
    ann, cy = rows
    assert (ann.row_number, ann.first_name, ann.custom) == (
        2,
        "Ann Marie",
        {"notes": "line one  line two"},
    )
    assert (cy.row_number, cy.custom) == (4, {"notes": 'a "quoted" word'})
    (bad,) = rejections
    assert (bad.row_number, bad.raw) == (3, "not-an-email,Bob,x")
    assert bad.reason.startswith("invalid email: ")


def test_empty_rows_are_skipped_but_still_counted(read):
    _, rows, rejections = read("email,first_name\n\n,\n  ,\nann@example.org,Ann\n,,\n\n")
    # "  ," has a non-empty cell, so it is a row with a missing email.
    assert [(r.row_number, r.email) for r in rows] == [(5, "ann@example.org")]
    assert [(r.row_number, r.reason) for r in rejections] == [(4, "missing email")]


def test_rows_wider_than_the_header_are_rejected_unless_the_extra_cells_are_empty(read):
    _, rows, rejections = read(
        "email,first_name\nann@example.org,Ann,,\nbob@example.org,Bob,oops\ncy@example.org\n"
    )
    assert [r.email for r in rows] == ["ann@example.org", "cy@example.org"]
    assert [(r.row_number, r.reason) for r in rejections] == [
        (3, "row has 3 fields but the header has 2 (an unquoted delimiter inside a value?)")
    ]


def test_later_rows_for_the_same_address_fill_in_and_win(read):
    _, rows, _ = read(
        "email,first_name,last_name,status\n"
        "Ann@Example.org,Ann,,\n"
        " ann@example.org ,,Lee,\n"
        "ANN@EXAMPLE.ORG,Anna,,unsubscribed\n"
    )
    (ann,) = rows
    assert (ann.row_number, ann.first_name, ann.last_name, ann.status) == (
        4,
        "Anna",
        "Lee",
        SubscriptionStatus.UNSUBSCRIBED,
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Opted-Out", SubscriptionStatus.UNSUBSCRIBED),
        ("opt_out", SubscriptionStatus.UNSUBSCRIBED),
        ("Active", SubscriptionStatus.SUBSCRIBED),
        ("cleaned", SubscriptionStatus.BOUNCED),
        ("SPAM", SubscriptionStatus.COMPLAINED),
        ("", SubscriptionStatus.SUBSCRIBED),
    ],
)
def test_status_values(read, value, expected):
    _, (row,), _ = read(f"email,status\nann@example.org,{value}\n")
    assert row.status == expected


def test_unknown_status_rejects_the_row(read):
    _, rows, (rejection,) = read("email,status\nann@example.org,maybe later\n")
    assert rows == [] and rejection.reason == "unknown status 'maybe later'"


def test_values_are_cleaned_cut_or_dropped(read):
    _, (row,), _ = read(
        "email,first_name,country,language,postcode,source\n"
        f"ann@example.org,{'N' * 250},uk,fr_CA,{'9' * 41},\n",
        source="import 2026",
    )
    assert (row.first_name, row.country, row.language, row.postcode, row.source) == (
        "N" * 200,
        "GB",
        "fr-ca",
        None,
        "import 2026",
    )


def test_invalid_codes_are_dropped_and_control_characters_removed(read):
    _, (bob,), _ = read(
        "email,first_name,country,language,postcode\n"
        "bob@example.org,\x00Bob\x07,XX,french!,SW1A 1AA\n"
    )
    assert (bob.first_name, bob.country, bob.language, bob.postcode) == (
        "Bob",
        None,
        None,
        "SW1A 1AA",
    )


@pytest.mark.parametrize("value", ["=SUM(A1:A9)", "+1", "-1", "@cmd", "\tx", "\rx"])
def test_export_quotes_cells_a_spreadsheet_would_run(value):
    assert spreadsheet_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["", "Ann", "'quoted", " =x", "1+1", "a@b.org"])
def test_export_leaves_other_cells_alone(value):
    assert spreadsheet_safe(value) == value


@pytest.mark.parametrize("value", ["=SUM(A1:A9)", "+44 20 7946 0000", "-5", "@handle"])
def test_protected_cells_read_back_unchanged(read, value):
    assert clean_text(spreadsheet_safe(value)) == value
    assert clean_text("'hello") == "'hello"  # only the exporter's quote is removed
    _, (row,), _ = read(f"email,first_name\nann@example.org,{spreadsheet_safe(value)}\n")
    assert (row.email, row.first_name) == ("ann@example.org", value)


def test_emails_are_lower_cased_as_a_whole():
    assert normalise_email("  Ann.Lee@Example.ORG ") == "ann.lee@example.org"


@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@x", "plain", ""])
def test_the_importer_undoes_exactly_the_guard(value):
    assert unquote_spreadsheet_safe(spreadsheet_safe(value)) == value
