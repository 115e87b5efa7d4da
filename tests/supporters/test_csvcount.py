"""Counting records a block at a time agrees with the CSV parser, or gives up.

Files only, no database (like test_csvformat.py).
"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.supporters.csvcount import count_plain_records
from app.supporters.csvencoding import CsvFileError
from app.supporters.csvformat import SupporterCsv


def parsed_records(text: str, delimiter: str) -> int:
    """What the import's second pass reads: the non-blank records of the parser."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=False)
    return sum(1 for record in reader if any(record))


def blocks_of(text: str, cuts: list[int]) -> list[str]:
    """Cut `text` into runs of whole lines after the given line numbers."""
    *whole, last = text.split("\n")
    lines = [line + "\n" for line in whole] + ([last] if last else [])
    edges = sorted({min(c, len(lines)) for c in cuts} | {0, len(lines)})
    return ["".join(lines[a:b]) for a, b in zip(edges, edges[1:], strict=False) if a < b]


@given(
    text=st.text(alphabet='ab ,;\t\r\n"é', max_size=200),
    delimiter=st.sampled_from([",", ";", "\t"]),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=5),
)
def test_a_count_is_what_the_parser_reads(text, delimiter, cuts):
    try:
        expected = parsed_records(text, delimiter)
    except csv.Error:
        expected = None  # the parser refuses it: the count must not accept it
    counted = count_plain_records(blocks_of(text, cuts), delimiter)
    if counted is not None:
        assert counted == expected
    if '"' not in text and "\r" not in text:
        assert counted == expected  # plain text is always counted


@pytest.mark.parametrize(
    "text",
    [
        'a@example.org,"Smith, Ann"\n',  # a quote may hold a delimiter or a newline
        "a@example.org,Ann\rb@example.org\n",  # a lone CR: the parser refuses it
        "a@example.org," + "x" * (csv.field_size_limit() + 1) + "\n",  # over the field limit
    ],
)
def test_it_gives_up_where_the_parser_reads_otherwise(text):
    assert count_plain_records([text], ",") is None


def test_blank_and_delimiter_only_lines_are_not_counted():
    text = "a@example.org,Ann\r\n\r\n,,\n   \nb@example.org,Ben"
    assert count_plain_records([text], ",") == 3 == parsed_records(text, ",")


@pytest.mark.parametrize(
    "body",
    [
        "a@example.org,Ann\n\n,\nb@example.org,Ben\r\n",
        'a@example.org,"Ann\nMarie"\n\nb@example.org,Ben\n',  # the parser's count
    ],
)
def test_check_counts_what_the_chunks_read(tmp_path, body):
    path = tmp_path / "people.csv"
    path.write_text("email,first_name\n" + body * 500)
    csv_file = SupporterCsv(path)
    total = csv_file.check()
    assert total == 1000
    *_, (rows_read, _, _) = csv_file.chunks(300)
    assert rows_read == total


def test_a_bad_byte_after_plain_rows_names_its_row(tmp_path):
    path = tmp_path / "people.csv"
    rows = b"".join(b"p%d@example.org,Pat\n" % i for i in range(10))
    path.write_bytes(b"email,first_name\n" + rows + b"late@example.org,Ren\xff\n")
    with pytest.raises(CsvFileError) as caught:
        SupporterCsv(path, "utf-8").check()
    assert "row 12 (line 12)" in str(caught.value)


def test_a_header_without_an_email_column_is_refused_before_counting(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name,town\nAnn,Leeds\n")
    with pytest.raises(CsvFileError, match="no email column"):
        SupporterCsv(path).check()
