"""The one rule for a supporter's email address: how it is stored, so one person is one row.

The API, the CSV import, campaign forms, confirmations and bounce lookups all go through
`normalise_email` (or `email_for_lookup`, which never refuses), so an address typed in any of
them finds the same supporter.
"""

from __future__ import annotations

import hashlib
import re

from email_validator import EmailNotValidError, validate_email

from app.errors import Invalid

# Plain ASCII addresses that email_validator certainly accepts unchanged (after lower-casing):
# at most 254 characters, a local part of at most 64, no "--" in the domain (IDN punycode) and
# no special-use top-level domain. Anything else goes to email_validator itself. The CSV import
# runs a whole column through this one pattern (`fast_forms`), so this is what keeps it fast.
_FAST_EMAIL = re.compile(
    r"(?=.{1,254}\Z)(?=[^@]{1,64}@)"
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?!.*--)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
    r"(?<!\.arpa)(?<!\.invalid)(?<!\.local)(?<!\.localhost)(?<!\.onion)(?<!\.test)"
)


class InvalidSupporterData(Invalid, ValueError):
    """Input a service cannot use; `details` maps field names to messages."""


class InvalidEmail(InvalidSupporterData, EmailNotValidError):
    """An address email_validator refuses; `reason` says why in its words."""

    def __init__(self, reason: str):
        super().__init__("Invalid email address.", {"email": [reason]})
        self.reason = reason


def normalise_email(raw: str | None) -> str:
    """Return the address as Clarion stores it (stripped, lower-cased), or raise InvalidEmail."""
    value = (raw or "").strip()
    email = value.lower()
    if _FAST_EMAIL.fullmatch(email):
        return email
    if not email:
        raise InvalidEmail("The email address is empty.")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc


def fast_forms(stripped: list[str]) -> list[str | None]:
    """Return each stripped address's stored form where the fast pattern settles it, else None.

    What `normalise_email` returns for those, for a whole column in C-level calls; the None
    ones need `normalise_email` itself.
    """
    lowered = "\n".join(stripped).lower().split("\n")
    if len(lowered) != len(stripped):  # a value with a line break in it: one at a time
        lowered = [value.lower() for value in stripped]
    return [
        email if match else None
        for email, match in zip(lowered, map(_FAST_EMAIL.fullmatch, lowered), strict=True)
    ]


def email_for_lookup(raw: str | None) -> str:
    """Return the stored form of an address to search for; an invalid one as typed, lower-cased.

    Searching never refuses: an address that cannot be valid simply matches nobody.
    """
    try:
        return normalise_email(raw)
    except InvalidEmail:
        return (raw or "").strip().lower()


def email_hash(email: str) -> str:
    """Return the hash ErasedEmail stores for a (normalised) address: the one hash erasure and
    imports share, so an erased address is recognised when a file brings it back."""
    return hashlib.sha256(email.encode()).hexdigest()
