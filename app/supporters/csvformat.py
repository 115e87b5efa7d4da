"""Reading supporter CSV files: decoding, dialect, header aliases, and cleaning each row.

One parser for every database: the importer hands it a path and gets back clean rows and
rejections; only the writing differs between PostgreSQL and SQLite. Which encoding the bytes are
in is decided in csvencoding.

Choices worth knowing:
- Emails are stripped and lower-cased as a whole (app/supporters/emails.py, the rule the API
  shares). The local part is case-sensitive in theory, but no mainstream mailbox provider
  treats it so, and people type their address in any case;
  keeping "Ann@x.org" and "ann@x.org" apart would create duplicate supporters and, worse, let an
  unsubscribe recorded under one spelling miss mail sent to the other.
- Only a bad or missing email (or an unknown status) rejects a row. Other bad values are dropped
  or cut so the supporter is still imported: an invalid country code or language is dropped,
  names and source are cut at their column length, a postcode longer than 40 characters is
  dropped (a cut postcode is a wrong one), control characters are removed.
- A cell the exporter protected against formula injection ("'=…") loses its leading quote, so
  an export imported back changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from itertools import chain, compress, islice
from typing import BinaryIO

from app.supporters.csvcells import (
    MAX_CUSTOM_VALUE,
    PROFILE_RULES,
    by_value,
    clean_column,
    clean_text,
    custom_field_name,
    cut_at,
    subscription_status,
    unquote_spreadsheet_safe,
)
from app.supporters.csvcount import count_plain_records
from app.supporters.csvencoding import (
    PREFIX_BYTES,
    CsvFileError,
    DecodeError,
    LineDecoder,
    codec_name,
    describe,
    detect_encoding,
    is_line_safe,
    wide_lines,
)
from app.supporters.csvrows import PROFILE_COLUMNS, Rejection, SupporterChunk
from app.supporters.emails import InvalidEmail, fast_forms, normalise_email
from app.supporters.models import SubscriptionStatus

CHECK_BATCH = 1000  # records per step of the counting pass (few alive at once)
MAX_RAW = 2000

# Header names, compared after lower-casing and dropping everything but letters and digits.
# A few German, French and Spanish names too, as exports from European tools use them.
ALIASES = {
    "email": ("email", "emailaddress", "mail", "emailadress", "mailaddress", "courriel", "correo"),
    "first_name": ("firstname", "first", "givenname", "forename", "fname", "vorname", "prénom"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname", "nachname", "nom"),
    "postcode": ("postcode", "postalcode", "zip", "zipcode", "postcodezip", "plz", "codepostal"),
    "country": ("country", "countrycode", "land", "pays", "país"),
    "language": ("language", "lang", "locale", "preferredlanguage", "sprache", "langue"),
    "source": ("source", "signupsource"),
    "status": ("status", "subscriptionstatus", "emailstatus"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in ALIASES.items() for alias in aliases}

# Columns of Clarion's own export that are not imported (the database keeps its own timestamps).
_OWN_COLUMNS = frozenset({"created_at", "updated_at"})


def _alias_key(header: str) -> str:
    return re.sub(r"[\W_]", "", header.lower())


class SupporterCsv:
    """A supporter CSV on disk: check it once, then stream clean rows in chunks.

    `encoding` forces a codec; without it the encoding is detected from the file's first bytes
    (see csvencoding) and `self.encoding` says which one was used once `check` has run.
    """

    def __init__(self, path, encoding: str | None = None):
        self.path = path
        self.encoding = codec_name(encoding) if encoding else None
        self._detected = self.encoding is None
        self.delimiter = ","
        self.columns: dict[str, int] = {}
        self.custom_columns: list[tuple[str, int]] = []
        self.header_width = 0

    def check(self) -> int:
        """Read the whole file once; return its number of data rows or raise CsvFileError."""
        try:
            return self._count_rows()
        except DecodeError as exc:
            if not (self._detected and self.encoding == "utf-8"):
                raise self._decode_failure(exc) from None
            # The prefix was plain ASCII (or UTF-8) but a later line is not UTF-8: decide again
            # from the lines that start there. ASCII reads the same in every encoding detected,
            # so the rows before it stay as they were read.
            with open(self.path, "rb") as f:
                f.seek(exc.line_start)
                sample = f.read(PREFIX_BYTES)
            self.encoding = detect_encoding(sample, whole_file=len(sample) < PREFIX_BYTES)
            try:
                return self._count_rows()
            except DecodeError as again:
                raise self._decode_failure(again) from None

    def _count_rows(self) -> int:
        """Count the data rows without parsing them where the text allows, else parse them."""
        plain = self._count_plain_rows()
        if plain is not None:
            return plain
        return sum(len(numbers) for numbers, _ in self._batches(CHECK_BATCH))

    def _count_plain_rows(self) -> int | None:
        """Read the header, then count the rows a block at a time (csvcount); None if the
        file needs the parser after all. Each line after the header is one row here."""
        with open(self.path, "rb") as f:
            lines = self._open_lines(f)
            if not isinstance(lines, LineDecoder):
                return None
            blocks = lines.blocks()
            header_lines = 1
            try:
                first = io.StringIO(next(blocks, ""))
                try:
                    header = next(csv.reader(first, delimiter=self.delimiter, strict=False), None)
                except csv.Error:
                    return None
                if header is None:
                    return None
                self._map_header(header)
                rest = first.read()
                header_lines = lines.line - rest.count("\n")
                return count_plain_records(chain([rest], blocks), self.delimiter)
            except DecodeError as exc:
                exc.row = exc.line - header_lines + 1
                raise

    def chunks(
        self, size: int, source: str | None = None
    ) -> Iterator[tuple[int, SupporterChunk, list[Rejection]]]:
        """Yield (rows read, clean rows merged by email, rejections) per `size` records.

        Blank records are skipped, so a chunk holds at most `size` rows.
        """
        batches = self._batches(size)
        read = 0
        try:
            for numbers, records in batches:
                read += len(numbers)
                rows, rejections = self._clean(numbers, records, source)
                yield read, rows, rejections
        except DecodeError as exc:  # only if the file changed since `check`
            raise self._decode_failure(exc) from None
        finally:
            batches.close()

    def _batches(self, size: int) -> Iterator[tuple[list[int], list[list[str]]]]:
        """Yield (row numbers, fields) of the non-blank data rows among each `size` records.

        The header is row 1. Records are taken from the CSV reader `size` at a time and blank
        ones dropped with C-level calls: a Python step per row is what made a million slow.
        """
        with open(self.path, "rb") as f:
            lines = self._open_lines(f)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=False)
            row_number = 0  # of the last record read
            batch: list[list[str]] = []
            try:
                header = next(reader, None)
                if header is None:
                    raise CsvFileError("The file is empty.")
                row_number = 1
                self._map_header(header)
                while True:
                    batch = []
                    batch.extend(islice(reader, size))  # keeps what it read if the reader fails
                    if not batch:
                        return
                    numbers = range(row_number + 1, row_number + 1 + len(batch))
                    row_number += len(batch)
                    filled = list(map(any, batch))
                    if all(filled):
                        yield list(numbers), batch
                    elif any(filled):
                        yield list(compress(numbers, filled)), list(compress(batch, filled))
            except DecodeError as exc:
                exc.row = row_number + len(batch) + 1
                raise
            except csv.Error as exc:
                raise CsvFileError(
                    f"Row {row_number + len(batch) + 1} cannot be read as CSV ({exc}); "
                    "is a quote left unclosed?"
                ) from None

    def _open_lines(self, f: BinaryIO) -> Iterator[str]:
        """Decide the encoding and delimiter from the file's start; return its text lines."""
        prefix = f.read(PREFIX_BYTES)
        f.seek(0)
        if self.encoding is None:
            self.encoding = detect_encoding(prefix, whole_file=len(prefix) < PREFIX_BYTES)
        try:
            start = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(prefix)
        except UnicodeError as exc:  # UTF-16/32 asked for, but the file has no byte-order mark
            raise CsvFileError(
                f"The file cannot be read as {describe(self.encoding)} text ({exc}). Leave the "
                "encoding out to have it detected."
            ) from None
        if not start.strip("\ufeff \r\n\t"):
            raise CsvFileError("The file is empty.")
        self.delimiter = _sniff_delimiter(start.split("\n", 1)[0])
        if is_line_safe(self.encoding):
            return LineDecoder(f, self.encoding)
        return wide_lines(f, self.encoding)

    def _decode_failure(self, exc: DecodeError) -> CsvFileError:
        name = describe(self.encoding or "utf-8")
        where = f"row {exc.row} (line {exc.line})"
        if exc.byte is not None:
            where += f" has byte 0x{exc.byte:02X} at byte offset {exc.offset}, which"
        else:
            where += " has bytes that"
        hint = "choose the file's encoding" if self._detected else "check the encoding given"
        return CsvFileError(
            f"The file is not {name} text: {where} cannot be read as {name}. Save it as "
            f'"CSV UTF-8" and upload it again, or {hint}.'
        )

    def _map_header(self, header: list[str]) -> None:
        self.header_width = len(header)
        self.columns, self.custom_columns = {}, []
        custom_seen = set()
        for index, raw_name in enumerate(header):
            name = (clean_text(raw_name) or "").lstrip("\ufeff")
            standard = _ALIAS_TO_FIELD.get(_alias_key(name))
            if standard:
                self.columns.setdefault(standard, index)
            elif (custom := custom_field_name(name)) and custom not in custom_seen | _OWN_COLUMNS:
                custom_seen.add(custom)
                self.custom_columns.append((custom, index))
        if "email" not in self.columns:
            seen = ", ".join(repr(h) for h in header[:20])
            raise CsvFileError(
                f'The file has no email column (looked for a header such as "email" or '
                f'"E-mail"; with delimiter {self.delimiter!r} the header is {seen}).'
            )

    @property
    def custom_field_names(self) -> list[str]:
        return [name for name, _ in self.custom_columns]

    def _clean(
        self, numbers: list[int], records: list[list[str]], source: str | None
    ) -> tuple[SupporterChunk, list[Rejection]]:
        """Clean a batch of records column by column; return its rows and its rejections.

        Only a bad or missing email, an unknown status or cells past the header reject a row.
        """
        problems: dict[int, str] = {}  # index in the batch -> why the row is rejected
        columns = list(zip(*self._fitted(records, problems), strict=True))
        email = _emails(columns[self.columns["email"]], problems)
        profile = {
            name: PROFILE_RULES[name](clean_column(columns[self.columns[name]]))
            if name in self.columns
            else [None] * len(records)
            for name in PROFILE_COLUMNS
        }
        if source:
            profile["source"] = [v or source[:200] for v in profile["source"]]
        status = [SubscriptionStatus.SUBSCRIBED] * len(records)
        if "status" in self.columns:
            cells = clean_column(columns[self.columns["status"]])
            known = by_value(subscription_status, cells)
            for i in [i for i, value in enumerate(known) if value is None and cells[i]]:
                problems.setdefault(i, f"unknown status {cells[i][:40]!r}")
            status = [value or SubscriptionStatus.SUBSCRIBED for value in known]
        custom = {
            name: cut_at(clean_column(columns[index]), MAX_CUSTOM_VALUE)
            for name, index in self.custom_columns
        }
        chunk = SupporterChunk(numbers, email, profile, status, custom)
        if not problems:
            return chunk.merge_duplicates(), []
        rejections = [self._reject(numbers[i], records[i], problems[i]) for i in sorted(problems)]
        keep = [i for i in range(len(records)) if i not in problems]

        def kept(values: list) -> list:
            return [values[i] for i in keep]

        chunk = SupporterChunk(
            kept(numbers),
            kept(email),
            {name: kept(values) for name, values in profile.items()},
            kept(status),
            {name: kept(values) for name, values in custom.items()},
        )
        return chunk.merge_duplicates(), rejections

    def _fitted(self, records: list[list[str]], problems: dict[int, str]) -> list[list[str]]:
        """Return the records as wide as the header: short ones padded, long ones cut.

        A record with values past the header is marked rejected in `problems`.
        """
        width = self.header_width
        if set(map(len, records)) == {width}:
            return records
        fitted = []
        for i, fields in enumerate(records):
            if len(fields) > width and any(fields[width:]):
                problems[i] = (
                    f"row has {len(fields)} fields but the header has {width} "
                    "(an unquoted delimiter inside a value?)"
                )
            fitted.append(fields[:width] + [""] * (width - len(fields)))
        return fitted

    def _reject(self, row_number: int, fields: list[str], reason: str) -> Rejection:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        raw = out.getvalue().replace("\x00", "")[:MAX_RAW]
        return Rejection(row_number, reason.replace("\x00", ""), raw)


def _emails(cells: Sequence[str], problems: dict[int, str]) -> list[str | None]:
    """Normalise a column of addresses; mark the rows whose address is refused in `problems`."""
    values = list(map(str.strip, cells))
    if "'" in "".join(values):
        values = list(map(unquote_spreadsheet_safe, values))
    emails = fast_forms(values)
    for i in [i for i, email in enumerate(emails) if email is None]:
        value = values[i]
        try:
            emails[i] = normalise_email(value)
        except InvalidEmail as exc:
            problems.setdefault(i, f"invalid email: {exc.reason}" if value else "missing email")
        except Exception as exc:  # email_validator on hostile input must not stop the import
            problems.setdefault(i, f"invalid email: {exc}")
    return emails


def _sniff_delimiter(header: str) -> str:
    header = re.sub(r'"[^"]*"', "", header)  # quoted names may hold any
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
