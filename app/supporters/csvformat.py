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
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

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
from app.supporters.emails import InvalidEmail, normalise_email
from app.supporters.models import SubscriptionStatus

MAX_CUSTOM_VALUE = 2000
MAX_RAW = 2000
FIELD_LIMITS = {"first_name": 200, "last_name": 200, "source": 200}

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

# A status column may only make a *new* supporter suppressed; it never changes an existing one.
STATUS_VALUES = {
    "": SubscriptionStatus.SUBSCRIBED,
    "subscribed": SubscriptionStatus.SUBSCRIBED,
    "active": SubscriptionStatus.SUBSCRIBED,
    "unsubscribed": SubscriptionStatus.UNSUBSCRIBED,
    "optedout": SubscriptionStatus.UNSUBSCRIBED,
    "optout": SubscriptionStatus.UNSUBSCRIBED,
    "bounced": SubscriptionStatus.BOUNCED,
    "cleaned": SubscriptionStatus.BOUNCED,
    "complained": SubscriptionStatus.COMPLAINED,
    "spam": SubscriptionStatus.COMPLAINED,
}

ISO_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC
    EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK
    HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB
    LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU
    RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN
    TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW""".split()  # noqa: SIM905
)
COUNTRY_ALIASES = {"UK": "GB"}
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")

# Columns of Clarion's own export that are not imported (the database keeps its own timestamps).
_OWN_COLUMNS = frozenset({"created_at", "updated_at"})

# Control characters: line breaks and tabs become spaces, the rest (NUL, C1, …) are removed.
_CONTROL = {c: None for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " ", 0x2028: " ", 0x2029: " "})
_FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_FORMULA_START = ("'=", "'+", "'-", "'@")


@dataclass(slots=True)
class SupporterRow:
    row_number: int
    email: str
    first_name: str | None = None
    last_name: str | None = None
    postcode: str | None = None
    country: str | None = None
    language: str | None = None
    source: str | None = None
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED
    custom: dict = field(default_factory=dict)

    def merge(self, later: SupporterRow) -> None:
        """Fold a later row for the same address into this one: its non-empty values win."""
        for name in ("first_name", "last_name", "postcode", "country", "language", "source"):
            value = getattr(later, name)
            if value is not None:
                setattr(self, name, value)
        if later.status != SubscriptionStatus.SUBSCRIBED:
            self.status = later.status
        self.custom.update(later.custom)
        self.row_number = later.row_number


@dataclass(slots=True)
class Rejection:
    row_number: int
    reason: str
    raw: str


def email_hash(email: str) -> str:
    """Return the hash ErasedEmail stores for a (normalised) address."""
    return hashlib.sha256(email.encode()).hexdigest()


def clean_text(value: str) -> str | None:
    """Strip a cell, remove control characters and an exporter's anti-formula quote."""
    if not value.isprintable():
        value = value.translate(_CONTROL)
    return unquote_spreadsheet_safe(value.strip()) or None


def spreadsheet_safe(value: str) -> str:
    """Quote a cell a spreadsheet would run as a formula (OWASP's CSV injection advice).

    The one guard every CSV Clarion writes goes through (exports, import reports, letters).
    """
    if value and value[0] in _FORMULA_TRIGGERS:
        return "'" + value
    return value


def unquote_spreadsheet_safe(value: str) -> str:
    """Undo `spreadsheet_safe` on a stripped cell, so Clarion's own exports import unchanged."""
    # Tab and CR are not undone: the importer turns them into spaces and strips them anyway.
    return value[1:] if value.startswith(_FORMULA_START) else value


def custom_field_name(header: str) -> str:
    """Turn a column header into a custom field name usable as a merge field."""
    return re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")[:100]


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
            return sum(1 for _ in self._records())
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
                return sum(1 for _ in self._records())
            except DecodeError as again:
                raise self._decode_failure(again) from None

    def chunks(self, size: int, source: str | None = None) -> Iterator[tuple[int, list, list]]:
        """Yield (rows read, clean rows merged by email, rejections) per `size` data rows."""
        merged: dict[str, SupporterRow] = {}
        rejections: list[Rejection] = []
        read = 0
        try:
            for row_number, fields in self._records():
                read += 1
                parsed = self._parse(row_number, fields, source)
                if isinstance(parsed, Rejection):
                    rejections.append(parsed)
                elif (earlier := merged.get(parsed.email)) is not None:
                    earlier.merge(parsed)
                else:
                    merged[parsed.email] = parsed
                if read % size == 0:
                    yield read, list(merged.values()), rejections
                    merged, rejections = {}, []
        except DecodeError as exc:  # only if the file changed since `check`
            raise self._decode_failure(exc) from None
        if merged or rejections or read % size:
            yield read, list(merged.values()), rejections

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (row number, fields) for each non-blank data row; the header is row 1."""
        with open(self.path, "rb") as f:
            lines = self._open_lines(f)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=False)
            row_number = 0
            try:
                header = next(reader, None)
                if header is None:
                    raise CsvFileError("The file is empty.")
                row_number = 1
                self._map_header(header)
                for fields in reader:
                    row_number += 1
                    if any(fields):
                        yield row_number, fields
            except DecodeError as exc:
                exc.row = row_number + 1
                raise
            except csv.Error as exc:
                raise CsvFileError(
                    f"Row {row_number + 1} cannot be read as CSV ({exc}); is a quote left unclosed?"
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

    def _parse(self, row_number: int, fields: list[str], source: str | None):
        width = len(fields)
        if width > self.header_width and any(fields[self.header_width :]):
            return self._reject(
                row_number,
                fields,
                f"row has {width} fields but the header has {self.header_width} "
                "(an unquoted delimiter inside a value?)",
            )
        columns = self.columns
        raw_email = fields[columns["email"]] if columns["email"] < width else ""
        try:
            email = normalise_email(unquote_spreadsheet_safe(raw_email.strip()))
        except InvalidEmail as exc:
            reason = "missing email" if not raw_email.strip() else f"invalid email: {exc.reason}"
            return self._reject(row_number, fields, reason)
        except Exception as exc:  # email_validator on hostile input must not stop the import
            return self._reject(row_number, fields, f"invalid email: {exc}")
        row = SupporterRow(row_number, email)
        for name, index in columns.items():
            if name == "email" or index >= width or not fields[index]:
                continue
            value = clean_text(fields[index])
            if value is None:
                continue
            if name == "status":
                status = STATUS_VALUES.get(re.sub(r"[\s_-]", "", value.lower()))
                if status is None:
                    return self._reject(row_number, fields, f"unknown status {value[:40]!r}")
                row.status = status
            elif name == "country":
                code = value.upper()
                code = COUNTRY_ALIASES.get(code, code)
                row.country = code if code in ISO_COUNTRIES else None
            elif name == "language":
                code = value.lower().replace("_", "-")
                row.language = code if len(code) <= 16 and _LANGUAGE.fullmatch(code) else None
            elif name == "postcode":
                row.postcode = value if len(value) <= 40 else None
            else:
                setattr(row, name, value[: FIELD_LIMITS[name]])
        if row.source is None and source:
            row.source = source[:200]
        for name, index in self.custom_columns:
            if index < width and fields[index] and (value := clean_text(fields[index])):
                row.custom[name] = value[:MAX_CUSTOM_VALUE]
        return row

    def _reject(self, row_number: int, fields: list[str], reason: str) -> Rejection:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        raw = out.getvalue().replace("\x00", "")[:MAX_RAW]
        return Rejection(row_number, reason.replace("\x00", ""), raw)


def _sniff_delimiter(header: str) -> str:
    header = re.sub(r'"[^"]*"', "", header)  # quoted names may hold any
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
