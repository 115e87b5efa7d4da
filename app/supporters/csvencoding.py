"""Which text encoding a supporter CSV is in, decided from its first bytes.

Staff upload what their spreadsheet saved: "CSV UTF-8" (often with a byte-order mark), plain
"CSV" from Windows Excel (Windows-1252 in Western Europe and the Americas) or "Unicode text"
(UTF-16 with a byte-order mark). The order of the checks matters:

1. A byte-order mark is certain.
2. Strict UTF-8 next: text that decodes as UTF-8 is almost never meant as anything else, and
   pure ASCII is the same in every encoding staff use.
3. charset-normalizer for the rest. When Windows-1252 reads the bytes exactly as its best guess
   does (a French or German file gives "cp1250" and "cp1252" the same text), Windows-1252 wins,
   because that is what Excel writes there.
4. Windows-1252 itself if every byte decodes and the text has no control characters.

Only a prefix is examined (files can hold a million rows); the file is then decoded as a stream.
"""

from __future__ import annotations

import codecs
import io
import unicodedata
from collections.abc import Iterator
from typing import BinaryIO

import charset_normalizer

from app.errors import Invalid

PREFIX_BYTES = 64 * 1024
WINDOWS_EXCEL = "cp1252"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose mark it starts with
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ALLOWED_CONTROLS = frozenset("\t\r\n")


class CsvFileError(Invalid, ValueError):
    """The file as a whole cannot be imported; the message says why in words staff understand."""

    code = "invalid_import"


class EncodingError(CsvFileError):
    """No text encoding fits the file (or the one asked for does not exist)."""


def codec_name(name: str) -> str:
    """Return Python's canonical name for a text encoding, or raise EncodingError."""
    try:
        info = codecs.lookup(name.strip())
    except (LookupError, ValueError):
        raise EncodingError(
            f"{name!r} is not a known text encoding (try utf-8 or cp1252)."
        ) from None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib …: bytes to bytes
        raise EncodingError(f"{name!r} is not a text encoding (try utf-8 or cp1252).")
    return info.name


def describe(codec: str) -> str:
    """Name an encoding the way spreadsheet users know it."""
    return {
        "utf-8": "UTF-8",
        "utf-8-sig": "UTF-8 with byte-order mark",
        "utf-16": "UTF-16 (Excel “Unicode text”)",
        "utf-32": "UTF-32",
        "cp1252": "Windows-1252 (Excel “CSV” on Windows)",
    }.get(codec, codec)


def is_line_safe(codec: str) -> bool:
    """Say whether a newline byte can only ever mean a newline (not so in UTF-16/32)."""
    return not codec.startswith(("utf-16", "utf-32"))


def detect_encoding(prefix: bytes, *, whole_file: bool) -> str:
    """Return the codec to read a file starting with `prefix`, or raise EncodingError.

    `whole_file` says the prefix is the entire file; otherwise a character may be cut at its end,
    so UTF-8 is decoded incrementally and the other guesses look only at complete lines.
    """
    for bom, codec in _BOMS:
        if prefix.startswith(bom):
            return codec
    try:
        codecs.getincrementaldecoder("utf-8")().decode(prefix, final=whole_file)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    sample = prefix if whole_file else prefix[: prefix.rfind(b"\n") + 1] or prefix
    best = charset_normalizer.from_bytes(sample).best()
    if best is not None:
        if WINDOWS_EXCEL in best.could_be_from_charset:
            return WINDOWS_EXCEL
        return codec_name(best.encoding)
    if _plausible(sample, WINDOWS_EXCEL):
        return WINDOWS_EXCEL
    raise EncodingError(
        "The file's text encoding could not be recognised (it is not UTF-8, UTF-16 or "
        'Windows-1252). Save it from the spreadsheet as "CSV UTF-8" and upload it again, or '
        "name its encoding."
    )


def _plausible(sample: bytes, codec: str) -> bool:
    try:
        text = sample.decode(codec)
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in text)


MAX_LINE_BYTES = 1024 * 1024  # a longer "line" is not a CSV of supporters


class DecodeError(Exception):
    def __init__(self, line: int, line_start: int, offset: int, byte: int | None):
        self.line, self.line_start, self.offset, self.byte = line, line_start, offset, byte
        self.row = 0


class LineDecoder:
    """Iterate a binary file as text lines, saying exactly where a bad byte is.

    Only for encodings where b"\n" never occurs inside a multi-byte character (UTF-8, the
    Windows and ISO code pages, Shift-JIS, GB18030 …), so splitting there first is safe and
    any run of whole lines decodes on its own (the stateful ISO-2022 codes return to ASCII
    before every line end). The file is decoded a block of whole lines at a time, in C: a
    Python step per line was a second of a million-row import, twice. A block that does not
    decode is decoded again line by line, so the error names the line and byte offset.
    """

    BLOCK_BYTES = 1024 * 1024

    def __init__(self, f: BinaryIO, encoding: str = "utf-8"):
        self.f = f
        self.first_encoding = encoding  # "utf-8-sig" drops the mark, which only line 1 has
        self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self.line = 0  # lines decoded so far
        self.offset = 0  # bytes decoded so far

    def __iter__(self) -> Iterator[str]:
        for text in self.blocks():
            yield from io.StringIO(text)

    def blocks(self) -> Iterator[str]:
        """Yield the file's text in runs of whole lines (the last may lack its newline)."""
        rest = b""
        while block := self.f.read(self.BLOCK_BYTES):
            data = rest + block
            end = data.rfind(b"\n") + 1
            if end == 0:
                if len(data) > MAX_LINE_BYTES:
                    raise self._too_long(self.line + 1)
                rest = data
                continue
            rest = data[end:]
            yield from self._decode(data[:end])
        if rest:
            yield from self._decode(rest)

    def _decode(self, lines: bytes) -> Iterator[str]:
        """Yield the text of whole lines that start at line `self.line + 1`: all of it at once,
        or line by line up to a line that does not decode. Checks each line's length."""
        if max(map(len, lines.split(b"\n"))) >= MAX_LINE_BYTES:  # with its b"\n", longer
            pieces = lines.split(b"\n")
            raise self._too_long(self.line + 1 + pieces.index(max(pieces, key=len)))
        try:
            text = lines.decode(self.encoding if self.line else self.first_encoding)
        except UnicodeDecodeError:
            yield from self._by_line(lines)
            return
        self.line += lines.count(b"\n")
        self.offset += len(lines)
        yield text

    def _by_line(self, lines: bytes) -> Iterator[str]:
        """Yield the lines one by one up to the first that does not decode; raise DecodeError."""
        for raw in _split_lf(lines):
            try:
                text = raw.decode(self.encoding if self.line else self.first_encoding)
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    self.line + 1, self.offset, self.offset + exc.start, raw[exc.start]
                ) from None
            self.line += 1
            self.offset += len(raw)
            yield text

    def _too_long(self, line: int) -> CsvFileError:
        return CsvFileError(
            f"Line {line} is longer than {MAX_LINE_BYTES // 1024} KiB; "
            "this does not look like a CSV file of supporters."
        )


def _split_lf(data: bytes) -> list[bytes]:
    """Split after each b"\n", keeping it (bytes.splitlines also splits at a lone b"\r")."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def wide_lines(f: BinaryIO, encoding: str) -> Iterator[str]:
    """Yield the text lines of a UTF-16/32 file, decoded as a stream."""
    text = io.TextIOWrapper(f, encoding=encoding, newline="")
    line = 0
    try:
        while piece := text.readline(MAX_LINE_BYTES + 1):
            line += 1
            if len(piece) > MAX_LINE_BYTES:
                raise CsvFileError(
                    f"Line {line} is longer than {MAX_LINE_BYTES // 1024} KiB; "
                    "this does not look like a CSV file of supporters."
                )
            yield piece
    except UnicodeDecodeError:
        raise DecodeError(line + 1, 0, 0, None) from None
    finally:
        text.detach()
