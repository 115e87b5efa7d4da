"""What an import will do with a file, shown before it starts: encoding, columns, first rows.

The preview reads the file with the importer's own reader (csvformat.SupporterCsv), so the
encoding, the delimiter and which column feeds which field are decided by the same code that
will import it; this module only reads that decision back and shows the first rows as they are.
What is plainly not a CSV (a workbook, an image, an empty file) is refused before it is stored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import BinaryIO

from app.supporters.csvencoding import (
    PREFIX_BYTES,
    CsvFileError,
    DecodeError,
    EncodingError,
    LineDecoder,
    codec_name,
    describe,
    detect_encoding,
    is_line_safe,
    wide_lines,
)
from app.supporters.csvformat import SupporterCsv

PREVIEW_ROWS = 5
CSV_EXTENSIONS = (".csv", ".txt")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "postcode": "Postcode",
    "country": "Country",
    "language": "Language",
    "source": "Source",
    "status": "Subscription status (new supporters only)",
}
# Encodings staff can choose when detection guesses wrong. UTF-16 and UTF-32 are not offered:
# Excel writes them with a byte-order mark, which detection never misses.
ENCODING_CHOICES = (
    ("utf-8", "UTF-8"),
    ("cp1252", describe("cp1252")),
    ("iso8859-15", "ISO-8859-15 (Latin-9)"),
    ("mac-roman", "Mac Roman"),
)


@dataclass(frozen=True, slots=True)
class PreviewColumn:
    header: str
    field: str | None  # a standard field name, or the custom field's name
    custom: bool = False

    @property
    def label(self) -> str:
        if self.field is None:
            return "Not imported"
        if self.custom:
            return f"Custom field “{self.field}”"
        return FIELD_LABELS.get(self.field, self.field)


@dataclass(frozen=True, slots=True)
class PreviewRow:
    row_number: int
    cells: list[str]
    rejection: str | None  # why the import will reject this row, if it will


@dataclass(slots=True)
class ImportPreview:
    """What the import will read; `problem` says why the file cannot be imported, if so."""

    encoding: str | None = None
    delimiter: str | None = None
    columns: list[PreviewColumn] = field(default_factory=list)
    rows: list[PreviewRow] = field(default_factory=list)
    problem: str | None = None

    @property
    def encoding_name(self) -> str | None:
        return describe(self.encoding) if self.encoding else None

    @property
    def delimiter_name(self) -> str | None:
        if self.delimiter is None:
            return None
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    @property
    def can_start(self) -> bool:
        return self.problem is None


def refuse_unreadable_upload(
    filename: str | None, stream: BinaryIO, encoding: str | None = None
) -> None:
    """Raise CsvFileError for what is plainly not a CSV in a text encoding we can read.

    Looks at the start of `stream` only (and seeks back), before anything is stored; `encoding`
    is the one staff chose, if any. The same checks as the API's upload.
    """
    head = stream.read(PREFIX_BYTES)
    stream.seek(0)
    whole_file = len(head) < PREFIX_BYTES
    name = (filename or "").lower()
    if not name.endswith(CSV_EXTENSIONS):
        raise CsvFileError(
            "Upload a .csv file (saved from the spreadsheet as “CSV UTF-8” or “CSV”)."
        )
    if not head.strip():
        raise CsvFileError("The file is empty.")
    try:
        codec = codec_name(encoding or detect_encoding(head, whole_file=whole_file))
    except EncodingError:
        if b"\x00" in head:
            raise _not_text() from None
        raise
    # NUL is text only in UTF-16/32; elsewhere it means a binary file (a spreadsheet, an image).
    if is_line_safe(codec) and b"\x00" in head:
        raise _not_text()


def _not_text() -> CsvFileError:
    return CsvFileError(
        "The file is not text: is it an Excel workbook or another binary file? Save it from "
        "the spreadsheet as “CSV UTF-8” and upload that."
    )


def preview_file(path, encoding: str | None = None) -> ImportPreview:
    """Read the header and first rows of a stored upload as the import will read them."""
    preview = ImportPreview()
    try:
        csv_file = SupporterCsv(path, encoding)
    except CsvFileError as exc:  # an encoding name that is not one
        preview.problem = str(exc)
        return preview
    chunks = csv_file.chunks(PREVIEW_ROWS)
    try:
        _, _, rejections = next(chunks, (0, [], []))
    except CsvFileError as exc:
        preview.problem = str(exc)
        rejections = []
    except UnicodeError as exc:  # a codec refusing the file outright (UTF-16 without its mark)
        preview.problem = f"The file cannot be read as {describe(csv_file.encoding)} text: {exc}."
        return preview
    finally:
        chunks.close()
    preview.encoding = csv_file.encoding
    if csv_file.header_width == 0:  # the file could not be read as far as its header
        return preview
    preview.delimiter = csv_file.delimiter
    header, raw_rows = _first_records(path, csv_file.encoding, csv_file.delimiter)
    preview.columns = _columns(csv_file, header)
    reasons = {rejection.row_number: rejection.reason for rejection in rejections}
    width = len(header)
    # Cells past the header have no column to show under; such a row's rejection says so.
    preview.rows = [
        PreviewRow(number, (cells + [""] * width)[:width], reasons.get(number))
        for number, cells in raw_rows
    ]
    return preview


def _columns(csv_file: SupporterCsv, header: list[str]) -> list[PreviewColumn]:
    """Name the field each header column feeds, from the mapping the importer made."""
    standard = {index: name for name, index in csv_file.columns.items()}
    custom = {index: name for name, index in csv_file.custom_columns}
    columns = []
    for index, name in enumerate(header):
        shown = name.lstrip("\ufeff").strip()
        if index in standard:
            columns.append(PreviewColumn(shown, standard[index]))
        elif index in custom:
            columns.append(PreviewColumn(shown, custom[index], custom=True))
        else:
            columns.append(PreviewColumn(shown, None))
    return columns


def _first_records(path, encoding: str, delimiter: str) -> tuple[list[str], list]:
    """Return the header and first non-blank records with their cells as they are in the file.

    Rows are numbered as the importer numbers them (the header is row 1). A file the importer
    refused may break further on; the preview then shows what could be read before that.
    """
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    with open(path, "rb") as f:
        lines = LineDecoder(f, encoding) if is_line_safe(encoding) else wide_lines(f, encoding)
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        try:
            header = next(reader, [])
            for row_number, cells in enumerate(reader, start=2):
                if any(cells):
                    rows.append((row_number, cells))
                    if len(rows) == PREVIEW_ROWS:
                        break
        except (DecodeError, CsvFileError, csv.Error, UnicodeError):
            pass
    return header, rows
