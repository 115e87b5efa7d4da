"""Count a CSV's records a block of text at a time, where no record needs the CSV parser.

The import reads a file twice (app/supporters/importer.py): the first pass checks it and counts
its rows, so progress can say "n of N" and a file that cannot be read changes nothing. Parsing
every record just to count them was most of that pass. Text without a quote character holds
one record per line, so its records can be counted with a few C-level string operations per
block; any block the parser might read otherwise makes the count give up, and the caller
parses the file record by record as before.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable


def count_plain_records(blocks: Iterable[str], delimiter: str) -> int | None:
    """Return how many non-blank records `blocks` hold, each line one record; or None.

    `blocks` are runs of whole lines (the last may lack its newline). A record is blank, and
    not counted, when all its fields are empty, as the import skips those. None means some
    block needs the CSV parser: a quote (which may open a field spanning lines), a carriage
    return that does not end a line (which the parser refuses), or a line long enough to hold
    a field over the parser's limit (which it refuses too).
    """
    limit = csv.field_size_limit()
    records = 0
    for text in blocks:
        returns = text.count("\r")
        if '"' in text or (returns and returns != text.count("\r\n")):
            return None
        # What is left of a blank line is an empty one (str.translate is ten times slower).
        emptied = text.replace(delimiter, "")
        lines = (emptied.replace("\r", "") if returns else emptied).split("\n")
        if lines[-1] == "":  # what follows the last newline
            lines.pop()
        if lines and max(map(len, lines)) > limit:
            return None
        records += len(lines) - lines.count("")
    return records
