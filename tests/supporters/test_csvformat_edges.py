"""Limits, boundaries and error messages of reading supporter CSV files (see tests/MUTATION.md).

Like test_csvformat.py these read files only and need no database; the mutation run
(scripts/mutate.sh) runs them first, without the conftest.
"""

from __future__ import annotations

import pytest

from app.supporters.csvcells import clean_text, spreadsheet_safe
from app.supporters.csvencoding import PREFIX_BYTES, CsvFileError
from app.supporters.csvformat import SupporterCsv
from app.supporters.import_preview import preview_file
from app.supporters.models import SubscriptionStatus

# Enough plain ASCII rows to fill the 64 KiB the encoding is detected from.
ASCII_ROWS = b"".join(b"p%06d@example.org,Pat\n" % i for i in range(3000))


@pytest.fixture
def write(tmp_path):
    """Return a function writing CSV content to a file and returning its path."""

    def write_csv(content: str | bytes):
        path = tmp_path / "people.csv"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write_csv


@pytest.fixture
def read(write):
    """Return a function reading CSV content into (file, rows, rejections)."""

    def read_csv(content: str | bytes, source: str | None = None, encoding: str | None = None):
        csv_file = SupporterCsv(write(content), encoding)
        csv_file.check()
        rows, rejections = [], []
        for _, chunk_rows, chunk_rejections in csv_file.chunks(1000, source=source):
            rows += chunk_rows
            rejections += chunk_rejections
        return csv_file, rows, rejections

    return read_csv


def refusal(read, content, encoding=None) -> str:
    with pytest.raises(CsvFileError) as caught:
        read(content, encoding=encoding)
    return str(caught.value)


@pytest.mark.parametrize(
    "header, field",
    [
        ("Email Adress", "email"),
        ("Mail Address", "email"),
        ("Forename", "first_name"),
        ("Last", "last_name"),
        ("Family Name", "last_name"),
        ("lname", "last_name"),
        ("ZIP", "postcode"),
        ("Pays", "country"),
        ("Lang", "language"),
        ("Langue", "language"),
        ("Source", "source"),
    ],
)
def test_more_header_aliases(read, header, field):
    values = {
        "last_name": "Lee",
        "postcode": "12345",
        "country": "FR",
        "language": "fr",
        "source": "stall",
    }
    if field == "email":
        csv_file, (row,), _ = read(f"{header},first_name\nann@example.org,Ann\n")
        assert (row.email, row.first_name) == ("ann@example.org", "Ann")
    elif field == "first_name":
        csv_file, (row,), _ = read(f"email,{header}\nann@example.org,Ann\n")
        assert row.first_name == "Ann"
    else:
        csv_file, (row,), _ = read(f"email,{header}\nann@example.org,{values[field]}\n")
        assert getattr(row, field) == values[field]
    assert csv_file.custom_field_names == []


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Subscribed", SubscriptionStatus.SUBSCRIBED),
        ("Bounced", SubscriptionStatus.BOUNCED),
        ("Complained", SubscriptionStatus.COMPLAINED),
        # A dash or underscore is how some tools write "no value": it is not an unknown status.
        ("-", SubscriptionStatus.SUBSCRIBED),
        ("_", SubscriptionStatus.SUBSCRIBED),
    ],
)
def test_more_status_values(read, value, expected):
    _, (row,), rejections = read(f"email,status\nann@example.org,{value}\n")
    assert row.status == expected and rejections == []


def test_an_unknown_status_is_quoted_cut_at_40_characters(read):
    _, rows, (rejection,) = read(f"email,status\nann@example.org,{'z' * 60}\n")
    assert rows == [] and rejection.reason == f"unknown status {'z' * 40!r}"


def test_columns_that_are_absent_or_empty_stay_unset(read):
    _, (ann, bob), _ = read("email,notes\nann@example.org,x\nbob@example.org,\n")
    for name in ("first_name", "last_name", "postcode", "country", "language", "source"):
        assert getattr(ann, name) is None, name
    assert (ann.status, ann.custom, bob.custom) == (
        SubscriptionStatus.SUBSCRIBED,
        {"notes": "x"},
        {},
    )


def test_a_later_row_with_empty_cells_keeps_the_earlier_values(read):
    _, (ann,), _ = read(
        "email,first_name,last_name,postcode,country,language,source\n"
        "ann@example.org,Ann,Lee,LS1 1AA,GB,en,stall\n"
        "ann@example.org,,,,,,\n"
    )
    assert (ann.row_number, ann.first_name, ann.last_name, ann.postcode) == (
        3,
        "Ann",
        "Lee",
        "LS1 1AA",
    )
    assert (ann.country, ann.language, ann.source) == ("GB", "en", "stall")


def test_a_cell_that_cleans_to_nothing_does_not_stop_the_next_columns(read):
    _, (ann,), _ = read("email,first_name,last_name,country\nann@example.org,\x00 \x07,Lee,FR\n")
    assert (ann.first_name, ann.last_name, ann.country) == (None, "Lee", "FR")


def test_names_source_and_custom_values_are_cut_at_their_limits(read):
    _, (ann,), _ = read(
        "email,first_name,last_name,source,notes\n"
        f"ann@example.org,{'F' * 201},{'L' * 201},{'S' * 201},{'n' * 2001}\n"
    )
    assert (ann.first_name, ann.last_name, ann.source) == ("F" * 200, "L" * 200, "S" * 200)
    assert ann.custom == {"notes": "n" * 2000}
    _, (bob,), _ = read("email\nbob@example.org\n", source="x" * 201)
    assert bob.source == "x" * 200


def test_postcodes_and_language_tags_up_to_their_limit_are_kept(read):
    _, (ann, bob), _ = read(
        "email,postcode,language\n"
        f"ann@example.org,{'9' * 40},sr-latn-rs-12345\n"
        f"bob@example.org,{'9' * 41},sr-latn-rs-123456\n"
    )
    assert (ann.postcode, ann.language) == ("9" * 40, "sr-latn-rs-12345")
    assert (bob.postcode, bob.language) == (None, None)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("Ann\x7fMarie", "AnnMarie"),  # DEL
        ("Ann\x80Marie", "AnnMarie"),  # the first C1 control
        ("Ann\x9fMarie", "AnnMarie"),  # the last C1 control
        ("Jean\xa0Luc", "Jean\xa0Luc"),  # a no-break space is text, not a control character
        ("Ann\tMarie", "Ann Marie"),
        ("Ann\u2028Marie", "Ann Marie"),
        ("Ann\u2029Marie", "Ann Marie"),
    ],
)
def test_control_characters_are_removed_and_line_separators_become_spaces(read, cell, expected):
    assert clean_text(cell) == expected
    _, (row,), _ = read(f'email,first_name\nann@example.org,"{cell}"\n')
    assert row.first_name == expected


def test_export_leaves_a_name_starting_with_x_alone():
    assert spreadsheet_safe("Xavier") == "Xavier"


def test_a_custom_column_named_with_a_leading_x_keeps_it(read):
    csv_file, (row,), _ = read("email,X Handle\nann@example.org,@ann\n")
    assert row.custom == {"x_handle": "@ann"}


def test_a_quote_inside_an_unquoted_cell_is_read_leniently(read):
    _, (row,), rejections = read('email,first_name\nann@example.org,"Ann" Marie\n')
    assert (row.first_name, rejections) == ("Ann Marie", [])


def test_rows_shorter_than_the_header_leave_the_missing_cells_unset(read):
    _, rows, (rejection,) = read("first_name,email,town\nAnn\nBob,bob@example.org\n")
    (bob,) = rows
    assert (rejection.row_number, rejection.reason, rejection.raw) == (2, "missing email", "Ann")
    assert (bob.first_name, bob.custom) == ("Bob", {})


def test_a_rejected_row_is_kept_without_nul_and_cut_at_2000_characters(read):
    _, _, (nul, wide) = read(f"email,notes\nnot-an-email,a\x00b\nalso-not-an-email,{'w' * 2100}\n")
    assert nul.raw == "not-an-email,ab"
    assert wide.raw == ("also-not-an-email," + "w" * 2100)[:2000]


def test_the_delimiter_is_decided_by_the_header_line_alone(read):
    csv_file, (row,), _ = read("email,notes\nann@example.org,a;b;c;d\n")
    assert (csv_file.delimiter, row.custom) == (",", {"notes": "a;b;c;d"})
    csv_file, (row,), _ = read("email,first_name,Notes; misc\nann@example.org,Ann,x\n")
    assert (csv_file.delimiter, row.first_name, row.custom) == (",", "Ann", {"notes_misc": "x"})


def test_a_file_of_one_word_is_not_empty(read):
    message = refusal(read, "XX\n")
    assert message.startswith("The file has no email column")


def test_empty_file_message(read):
    assert refusal(read, "\r\n \r\n") == "The file is empty."


def test_the_missing_email_column_message_shows_the_first_20_headers(read):
    header = ",".join(f"c{i}" for i in range(25))
    shown = ", ".join(repr(f"c{i}") for i in range(20))
    assert refusal(read, header + "\n1\n") == (
        'The file has no email column (looked for a header such as "email" or "E-mail"; '
        f"with delimiter ',' the header is {shown})."
    )


def test_check_counts_the_data_rows(write):
    assert SupporterCsv(write("email\na@example.org\n\nb@example.org\nnot-an-email\n")).check() == 3


@pytest.mark.parametrize(
    "rows, size, reads",
    [(5, 2, [2, 4, 5]), (4, 2, [2, 4]), (1, 1, [1]), (0, 3, [])],
)
def test_chunks_report_the_rows_read_so_far(write, rows, size, reads):
    content = "email\n" + "".join(f"p{i}@example.org\n" for i in range(rows))
    csv_file = SupporterCsv(write(content))
    chunks = list(csv_file.chunks(size))
    assert [read for read, _, _ in chunks] == reads
    emails = [row.email for _, chunk_rows, _ in chunks for row in chunk_rows]
    assert emails == [f"p{i}@example.org" for i in range(rows)]


def test_a_chunk_holds_only_its_own_rows_and_rejections(write):
    content = "email\na@example.org\nbad\nb@example.org\nworse\nc@example.org\n"
    chunks = list(SupporterCsv(write(content)).chunks(2))
    assert [
        (read, [r.email for r in rows], [r.row_number for r in rejections])
        for read, rows, rejections in chunks
    ] == [(2, ["a@example.org"], [3]), (4, ["b@example.org"], [5]), (5, ["c@example.org"], [])]


def test_an_ascii_start_and_a_windows_1252_line_later_is_detected_again(write):
    path = write(b"email,first_name\n" + ASCII_ROWS + "late@example.org,Renée\n".encode("cp1252"))
    assert len(ASCII_ROWS) > PREFIX_BYTES
    csv_file = SupporterCsv(path)
    assert csv_file.check() == 3001
    assert csv_file.encoding == "cp1252"
    (_, rows, _), *_ = csv_file.chunks(5000)
    assert rows[-1].first_name == "Renée"


def test_a_character_cut_by_the_end_of_the_prefix_is_still_utf8(write):
    rows_before = ASCII_ROWS[: ASCII_ROWS.rfind(b"\n", 0, PREFIX_BYTES - 1000) + 1]
    start = b"email,notes\n" + rows_before + b"last@example.org,"
    notes = "Z" * (PREFIX_BYTES - 1 - len(start)) + "ë"
    content = start + f"{notes}\n".encode()
    assert content[PREFIX_BYTES - 1 : PREFIX_BYTES + 1] == "ë".encode()
    csv_file = SupporterCsv(write(content))
    csv_file.check()
    assert csv_file.encoding == "utf-8"
    (_, rows, _), *_ = csv_file.chunks(5000)
    assert (rows[-1].email, rows[-1].custom) == ("last@example.org", {"notes": notes})


def test_a_forced_encoding_is_used(read):
    csv_file, (row,), _ = read("email,first_name\nann@example.org,André\n", encoding="cp1252")
    assert (csv_file.encoding, row.first_name) == ("cp1252", "AndrÃ©")


def test_a_forced_utf8_is_not_second_guessed(read):
    content = "email,first_name\na@example.org,Ann\nb@example.org,André\n".encode("cp1252")
    offset = content.index("é".encode("cp1252"))
    assert refusal(read, content, encoding="utf-8") == (
        f"The file is not UTF-8 text: row 3 (line 3) has byte 0xE9 at byte offset "
        f'{offset}, which cannot be read as UTF-8. Save it as "CSV UTF-8" '
        "and upload it again, or check the encoding given."
    )


def test_a_bad_byte_in_the_header_is_reported_in_row_1(read):
    content = "email,prénom\na@example.org,Ann\n".encode("cp1252")
    message = refusal(read, content, encoding="utf-8")
    assert message.startswith(
        "The file is not UTF-8 text: row 1 (line 1) has byte 0xE9 at byte offset 8, which"
    )


def test_a_forced_windows_1252_failure_names_that_encoding(read):
    content = b"email,first_name\na@example.org,Ann\nb@example.org,\x81\n"
    offset = content.index(b"\x81")
    assert refusal(read, content, encoding="cp1252") == (
        "The file is not Windows-1252 (Excel “CSV” on Windows) text: row 3 (line 3) has byte "
        f"0x81 at byte offset {offset}, which cannot be read as Windows-1252 "
        "(Excel “CSV” on "
        'Windows). Save it as "CSV UTF-8" and upload it again, or check the encoding given.'
    )


def test_a_detected_encoding_that_fails_asks_to_choose_one(read):
    content = "\ufeffemail,first_name\r\nann@example.org,Ann\r\n".encode("utf-16-le")
    content += b"\x00\xd8a\x00\r\x00\n\x00"  # a lone surrogate
    assert refusal(read, content) == (
        "The file is not UTF-16 (Excel “Unicode text”) text: row 1 (line 1) has bytes that "
        'cannot be read as UTF-16 (Excel “Unicode text”). Save it as "CSV UTF-8" and upload '
        "it again, or choose the file's encoding."
    )


def test_a_cell_too_big_for_csv_is_refused_naming_its_row(read):
    content = "email,notes\na@example.org,x\nb@example.org," + "x" * 140_000 + "\n"
    assert refusal(read, content) == (
        "Row 3 cannot be read as CSV (field larger than field limit (131072)); "
        "is a quote left unclosed?"
    )


def test_a_file_refused_before_its_header_is_read_previews_no_columns(write):
    content = "email,prénom\na@example.org,Ann\n".encode("cp1252")
    preview = preview_file(write(content), "utf-8")
    assert preview.problem.startswith("The file is not UTF-8 text: row 1 (line 1)")
    assert (preview.delimiter, preview.columns, preview.rows) == (None, [], [])


def test_utf16_asked_for_a_file_without_its_byte_order_mark_is_refused(read):
    assert refusal(read, b"email\na@example.org\n", encoding="utf-16") == (
        "The file cannot be read as UTF-16 (Excel “Unicode text”) text (UTF-16 stream does not "
        "start with BOM). Leave the encoding out to have it detected."
    )
