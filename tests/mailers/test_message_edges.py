"""Limits, boundaries and refusals of building a message (see tests/MUTATION.md).

Line lengths (RFC 5322: 78 in headers; RFC 2045: 76 in quoted-printable bodies), encoded words
(RFC 2047: at most 75 characters, each a whole number of characters), the exact header values
and every ValueError a bad mailing or recipient gets. No database.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import quopri
import re
import time
from dataclasses import FrozenInstanceError

import pytest

from mailers.message import InvalidAddress, Recipient, encode_unstructured, quoted_printable
from tests.mailers.conftest import freeze_mailing, make_factory, make_recipient

ENCODED_WORD = re.compile(rb"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=")


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def raw_header(data: bytes, name: str) -> bytes:
    """Return one header as sent: its name, value and any folded continuation lines."""
    head = data.split(b"\r\n\r\n", 1)[0]
    match = re.search(rb"^" + name.encode() + rb": .*?(?=\r\n(?! ))", head, re.M | re.S)
    assert match, f"no {name} header"
    return match.group(0)


def text_payload(data: bytes) -> bytes:
    return parse(data).get_body(("plain",)).get_payload(decode=True)


@pytest.fixture(scope="module")
def plain_frozen():
    # The subject is the town field alone, so a test controls its exact length.
    return freeze_mailing(
        "{{ town }}",
        None,
        "<mj-section><mj-column><mj-text><p>{{ town }}</p></mj-text></mj-column></mj-section>",
        "To {{ email }}: {{ first_name | default('Friend') }} of {{ town }}.\n",
    )


@pytest.fixture
def factory(plain_frozen):
    return make_factory(plain_frozen)


def test_recipients_and_built_messages_cannot_be_changed(factory):
    recipient = make_recipient(town="Leeds")
    built = factory.build(recipient)
    with pytest.raises(FrozenInstanceError):
        recipient.email = "eve@example.net"
    with pytest.raises(FrozenInstanceError):
        built.data = b""


def test_a_recipient_has_no_subject_prefix_unless_given(factory):
    made = make_recipient(town="Leeds")
    recipient = Recipient(made.email, made.fields, made.urls, made.unsubscribe_token)
    assert parse(factory.build(recipient).data)["Subject"] == "Leeds"


def test_the_email_field_and_fields_after_an_empty_one_are_merged(factory):
    made = make_recipient()
    fields = {"first_name": None, "last_name": "", "town": "Leeds"}
    recipient = Recipient(made.email, fields, made.urls, made.unsubscribe_token)
    text = text_payload(factory.build(recipient).data)
    assert text.startswith(b"To zoe@example.com: Friend of Leeds.\r\n")


def test_an_old_mac_line_break_in_a_field_becomes_crlf(factory):
    data = factory.build(make_recipient(first_name="Ann", town="Leeds\rBradford")).data
    assert text_payload(data).startswith(b"To zoe@example.com: Ann of Leeds\r\nBradford.\r\n")


def test_plain_display_names_are_sent_unquoted_and_specials_quoted(factory):
    data = factory.build(make_recipient(first_name="Ann", last_name="O'Neil-Lee", town="x")).data
    assert raw_header(data, "To") == b"To: Ann O'Neil-Lee <zoe@example.com>"
    assert raw_header(data, "From") == (
        b'From: "Elena Marsh, Rights Watch USA" <alerts@act.example.org>'
    )


def test_a_backslash_in_a_display_name_is_escaped(factory):
    data = factory.build(make_recipient(first_name="Ann\\", last_name="Lee", town="x")).data
    assert raw_header(data, "To") == b'To: "Ann\\\\ Lee" <zoe@example.com>'
    assert parse(data)["To"].addresses[0].display_name == "Ann\\ Lee"


def encoded_words(header: bytes) -> list[bytes]:
    words = ENCODED_WORD.findall(header)
    assert words, header
    return [base64.b64decode(word) for word in words]


def test_a_long_unicode_display_name_is_folded_into_whole_encoded_words(factory):
    name = "Zoë Ñúñez-Łukasiewicz " * 4
    data = factory.build(make_recipient(first_name=name, last_name="Ø", town="x")).data
    header = raw_header(data, "To")
    assert header.endswith(b" <zoe@example.com>")
    assert all(len(line) <= 76 for line in header.split(b"\r\n"))
    words = encoded_words(header)
    assert len(words) > 1
    # Each word a whole number of characters (RFC 2047 section 5), together the whole name.
    assert "".join(word.decode("utf-8") for word in words) == " ".join((name + "Ø").split())


@pytest.mark.parametrize("char", ["é", "€", "😀"])
@pytest.mark.parametrize("ascii_before", range(4))
def test_encoded_words_are_at_most_75_chars_and_never_split_a_character(char, ascii_before):
    value = "a" * ascii_before + char * 40
    encoded = encode_unstructured(value, len("Subject: ")).encode()
    words = ENCODED_WORD.findall(encoded)
    assert encoded == b"\r\n ".join(b"=?utf-8?b?" + word + b"?=" for word in words)
    assert all(len(word) + len("=?utf-8?b??=") <= 75 for word in words)
    assert "".join(base64.b64decode(word).decode("utf-8") for word in words) == value


def test_a_non_ascii_subject_is_sent_as_whole_encoded_words(factory):
    town = "Zürich " * 20
    data = factory.build(make_recipient(town=town)).data
    header = raw_header(data, "Subject")
    assert parse(data)["Subject"] == town.strip()
    assert all(len(line) <= 76 for line in header.split(b"\r\n")[1:])
    assert b"".join(encoded_words(header)).decode("utf-8") == town.strip()


def test_the_first_line_of_an_encoded_subject_is_at_most_76_characters(factory):
    # RFC 2047 section 2: a line holding an encoded word is at most 76 characters.
    data = factory.build(make_recipient(town="Zürich " * 20)).data
    assert len(raw_header(data, "Subject").split(b"\r\n")[0]) <= 76


def test_an_ascii_subject_of_78_characters_with_its_name_stays_on_one_line(factory):
    town = "x" * (78 - len("Subject: "))
    data = factory.build(make_recipient(town=town)).data
    assert raw_header(data, "Subject") == b"Subject: " + town.encode()


def test_a_longer_ascii_subject_folds_at_the_last_space_that_fits(factory):
    town = "x" * 60 + " " + "y" * 8 + " " + "z" * 10
    data = factory.build(make_recipient(town=town)).data
    first, second = raw_header(data, "Subject").split(b"\r\n")
    assert len(first) == 78
    assert (first, second) == (b"Subject: " + town[:69].encode(), b" " + b"z" * 10)
    assert parse(data)["Subject"] == town


def test_the_date_header_follows_the_clock(factory, monkeypatch):
    now = [1_700_000_000.25]
    monkeypatch.setattr(time, "time", lambda: now[0])
    first = factory.build(make_recipient(town="x")).data
    now[0] += 61
    second = factory.build(make_recipient(town="x")).data
    assert raw_header(first, "Date") == b"Date: Tue, 14 Nov 2023 22:13:20 GMT"
    assert raw_header(second, "Date") == b"Date: Tue, 14 Nov 2023 22:14:21 GMT"


def test_the_mailing_reference_header(plain_frozen):
    data = make_factory(plain_frozen, mailing_ref="mailing-42").build(make_recipient()).data
    assert raw_header(data, "X-Clarion-Mailing") == b"X-Clarion-Mailing: mailing-42"
    assert "X-Clarion-Mailing" not in parse(make_factory(plain_frozen).build(make_recipient()).data)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("mailing_ref", "mailing 42", "mailing_ref must be printable ASCII without spaces"),
        ("mailing_ref", "", "mailing_ref must be printable ASCII without spaces"),
        ("list_id", "", "list_id must be printable ASCII without spaces"),
        ("list_id", None, "list_id must be printable ASCII without spaces"),
        ("feedback_id", "", "feedback_id must be printable ASCII without spaces"),
        ("feedback_id", "42 alerts", "feedback_id must be printable ASCII without spaces"),
        ("message_id_domain", "", "message_id_domain must be a domain name"),
        ("message_id_domain", None, "message_id_domain must be a domain name"),
    ],
)
def test_mailing_values_that_cannot_go_in_a_header_are_refused(
    plain_frozen, option, value, message
):
    with pytest.raises(ValueError, match=f"^{message}$"):
        make_factory(plain_frozen, **{option: value})


UNSUBSCRIBE_REFUSED = "^unsubscribe URL and token must be plain https/URL-safe text$"


@pytest.mark.parametrize(
    "url, token",
    [
        ("javascript:alert(1)", "abc.DEF-1"),
        ("https://act.example.org/u/x y", "abc.DEF-1"),
        ("https://act.example.org/u/x", ""),
        ("https://act.example.org/u/x", None),
        ("https://act.example.org/u/x", "a b"),
    ],
)
def test_unusable_unsubscribe_links_are_refused(factory, url, token):
    made = make_recipient()
    urls = {**made.urls, "one_click_unsubscribe_url": url}
    with pytest.raises(ValueError, match=UNSUBSCRIBE_REFUSED):
        factory.build(Recipient(made.email, made.fields, urls, token))


def test_an_address_may_be_254_characters_but_not_255(factory):
    local = "a" * 64
    domain = ".".join(["b" * 60] * 3) + "." + "c" * 6
    address = f"{local}@{domain}"
    assert len(address) == 254
    message = parse(factory.build(make_recipient(email=address, town="x")).data)
    assert message["To"].addresses[0].addr_spec == address
    with pytest.raises(InvalidAddress):
        factory.build(make_recipient(email="a" + address, town="x"))


@pytest.mark.parametrize(
    "chunk, encoded",
    [
        # A line that leaves room for the soft break joining it to the next chunk stays whole.
        ("a" * 75, b"a" * 75),
        # 76 octets would need a 77th for that soft break: the line is broken first.
        ("a" * 76, b"a" * 75 + b"=\r\n" + b"a"),
        ("a" * 151, b"a" * 75 + b"=\r\n" + b"a" * 75 + b"=\r\n" + b"a"),
        ("a\r\n" + "a" * 76, b"a\r\n" + b"a" * 75 + b"=\r\n" + b"a"),
        # An escape near the end is never cut in two.
        ("a" * 72 + "=b", b"a" * 72 + b"=3D=\r\nb"),
        ("a" * 70 + "é", b"a" * 70 + b"=C3=\r\n=A9"),
    ],
)
def test_quoted_printable_breaks_lines_only_where_needed(chunk, encoded):
    assert quoted_printable(chunk) == encoded


@pytest.mark.parametrize("tail", ["", "é", "=", " ", "\t", "😀", "=b", "é.", "\x00"])
@pytest.mark.parametrize("prefix", ["", "é", "a" * 80, "é\r\n", "😀" * 20])
def test_quoted_printable_chunks_join_into_lines_of_at_most_76(prefix, tail):
    for length in range(60, 160):
        chunk = prefix + "a" * length + tail
        encoded = quoted_printable(chunk)
        # Chunks are joined with a soft break, so even the last line must leave room for "=".
        lines = encoded.split(b"\r\n")
        assert all(len(line) <= 76 for line in lines[:-1]) and len(lines[-1]) <= 75, chunk
        assert quopri.decodestring(encoded + b"=\r\n" + encoded).decode() == chunk + chunk


def test_an_empty_first_name_falls_back_to_the_default(factory):
    data = factory.build(make_recipient(first_name="", town="Leeds")).data
    assert text_payload(data).startswith(b"To zoe@example.com: Friend of Leeds.\r\n")


def test_a_field_that_is_not_text_is_merged(factory):
    data = factory.build(make_recipient(first_name=42, town="Leeds")).data
    assert text_payload(data).startswith(b"To zoe@example.com: 42 of Leeds.\r\n")


def test_a_unix_line_break_in_a_field_keeps_body_lines_within_76(factory):
    # Quoted-printable encoding of LF-only text lets "=20" before the break run to 78 octets.
    town = "x" * 63 + "😀 \nBradford"
    data = factory.build(make_recipient(first_name="Ann", town=town)).data
    body = data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert text_payload(data).startswith(b"To zoe@example.com: Ann of " + town.encode()[:-9])


def test_a_refused_address_is_named_in_the_error(factory):
    with pytest.raises(InvalidAddress, match=r"^not a usable email address: 'zoe'$"):
        factory.build(make_recipient(email="zoe"))


def test_a_display_name_that_looks_like_an_encoded_word_stays_literal(factory):
    data = factory.build(make_recipient(first_name="=?utf-8?b?SGk=?=", last_name="Lee")).data
    assert parse(data)["To"].addresses[0].display_name == "=?utf-8?b?SGk=?= Lee"


def test_folded_subject_lines_after_the_first_are_filled_to_78(factory):
    town = "x" * 69 + " " + "y" * 38 + " " + "z" * 38 + " " + "w" * 5
    lines = raw_header(factory.build(make_recipient(town=town)).data, "Subject").split(b"\r\n")
    assert lines == [
        b"Subject: " + b"x" * 69,
        b" " + b"y" * 38 + b" " + b"z" * 38,
        b" " + b"w" * 5,
    ]


@pytest.mark.parametrize("blank", [" ", "\t"])
@pytest.mark.parametrize("line_break", ["\r\n", "\n"])
def test_an_escaped_space_before_a_line_break_stays_within_76(blank, line_break):
    # b2a_qp escapes the blank (=20 / =09) without counting it: this line would be 77 octets.
    text = "x" * 50 + "😀😀" + blank + line_break + "end"
    encoded = quoted_printable(text)
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    decoded = binascii.a2b_qp(encoded).decode("utf-8")
    assert decoded == "x" * 50 + "😀😀" + blank + "\r\nend"
