"""The one email rule: every entry point stores an address the same way."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError

from app.supporters.emails import (
    InvalidEmail,
    InvalidSupporterData,
    email_for_lookup,
    normalise_email,
)
from app.supporters.services import upsert_supporter


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Ann.Lee@Example.ORG ", "ann.lee@example.org"),  # the fast ASCII path
        ("ann+urgent@example.org", "ann+urgent@example.org"),
        ("a@xn--bcher-kva.de", "a@bücher.de"),  # email_validator's normalised form
        ("A@BÜCHER.de", "a@bücher.de"),
    ],
)
def test_normalise_email_gives_the_stored_form(typed, stored):
    assert normalise_email(typed) == stored


@pytest.mark.parametrize("typed", [None, "", "   ", "nobody@", "@example.org", "a@b@c.org"])
def test_invalid_addresses_raise_one_error_every_caller_understands(typed):
    with pytest.raises(InvalidEmail) as caught:
        normalise_email(typed)
    # Services and the API see InvalidSupporterData (a 422), the importer EmailNotValidError.
    assert isinstance(caught.value, InvalidSupporterData)
    assert isinstance(caught.value, EmailNotValidError)
    assert caught.value.details == {"email": [caught.value.reason]}
    assert caught.value.reason


def test_lookup_never_refuses_and_finds_the_stored_form():
    assert email_for_lookup(" A@XN--BCHER-KVA.de ") == "a@bücher.de"
    assert email_for_lookup(" Not An Address ") == "not an address"
    assert email_for_lookup(None) == ""


def test_api_and_csv_store_an_idn_address_the_same_way():
    # Before #10 the API kept "xn--" while the import stored Unicode: one person, two rows.
    supporter, created = upsert_supporter({"email": "Zoe@XN--BCHER-KVA.de"}, actor="test")
    again, created_again = upsert_supporter({"email": "zoe@bücher.de"}, actor="test")
    assert created and not created_again
    assert again.id == supporter.id and supporter.email == "zoe@bücher.de"
