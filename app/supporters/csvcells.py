"""What a supporter CSV cell may hold: cleaning imported cells and columns, guarding exports.

The rules for one value each (a country code, a language tag, a status, a custom field's name),
applied a column at a time by the importer (app/supporters/csvformat.py) and one cell at a time
by anything else, and the one guard against formula injection every CSV Clarion writes shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from app.supporters.models import SubscriptionStatus

MAX_CUSTOM_VALUE = 2000
FIELD_LIMITS = {"first_name": 200, "last_name": 200, "source": 200}

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

# Control characters: line breaks and tabs become spaces, the rest (NUL, C1, …) are removed.
_CONTROL = {c: None for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " ", 0x2028: " ", 0x2029: " "})
_FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_FORMULA_START = ("'=", "'+", "'-", "'@")


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


def country_code(value: str) -> str | None:
    """Return the ISO 3166 code a country cell means, or None (an invalid one is dropped)."""
    code = value.upper()
    code = COUNTRY_ALIASES.get(code, code)
    return code if code in ISO_COUNTRIES else None


def language_code(value: str) -> str | None:
    """Return the language tag a cell means ("en_GB" -> "en-gb"), or None if it is not one."""
    code = value.lower().replace("_", "-")
    return code if len(code) <= 16 and _LANGUAGE.fullmatch(code) else None


def subscription_status(value: str | None) -> SubscriptionStatus | None:
    """Return the status a status cell means (empty: subscribed), or None if it is unknown."""
    return STATUS_VALUES.get(re.sub(r"[\s_-]", "", (value or "").lower()))


def clean_column(values: Sequence[str]) -> list[str | None]:
    """Return `[clean_text(v) for v in values]`, checking the whole column at once.

    Nearly every column of a real file is printable text, which needs only stripping; one
    check of the joined column says so instead of a Python call per cell.
    """
    joined = "".join(values)
    if not joined.isprintable():
        return [clean_text(v) for v in values]
    stripped = map(str.strip, values)
    if "'" in joined:
        stripped = map(unquote_spreadsheet_safe, stripped)
    return [v or None for v in stripped]


def by_value(rule: Callable, values: list[str | None]) -> list:
    """Apply `rule` once per distinct value: a column of countries has a few hundred at most."""
    results = {v: rule(v) for v in set(values) if v is not None}
    results[None] = None
    return list(map(results.__getitem__, values))


def cut_at(values: list[str | None], limit: int) -> list[str | None]:
    """Cut values at `limit` characters (names, sources, custom fields)."""
    if max(map(len, filter(None, values)), default=0) <= limit:
        return values
    return [v[:limit] if v else v for v in values]


def _postcodes(values: list[str | None]) -> list[str | None]:
    # A postcode longer than 40 characters is dropped, not cut: a cut postcode is a wrong one.
    if max(map(len, filter(None, values)), default=0) <= 40:
        return values
    return [v if v and len(v) <= 40 else None for v in values]


# How each profile column is made from its cleaned cells.
PROFILE_RULES: dict[str, Callable[[list], list]] = {
    "first_name": lambda values: cut_at(values, FIELD_LIMITS["first_name"]),
    "last_name": lambda values: cut_at(values, FIELD_LIMITS["last_name"]),
    "postcode": _postcodes,
    "country": lambda values: by_value(country_code, values),
    "language": lambda values: by_value(language_code, values),
    "source": lambda values: cut_at(values, FIELD_LIMITS["source"]),
}
