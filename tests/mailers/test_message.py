import email
import email.policy
import email.utils
import re

import pytest

from mailers.message import InvalidAddress
from tests.mailers.conftest import TOKEN, freeze_mailing, make_factory, make_recipient

EXPECTED_HEADERS = [
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "From",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "MIME-Version",
    "Content-Type",
]
INJECTIONS = [
    "Eve\r\nBcc: victim@example.net",
    "Eve\nBcc: victim@example.net",
    "Eve\rBcc: victim@example.net",
    "Eve\u2028Bcc: victim@example.net",
    "Eve\x85Bcc: victim@example.net",
    "Eve\r\n\r\nInjected body",
    "Eve\x00\x0bBcc: victim@example.net",
]


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def parts(message):
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


@pytest.fixture(scope="module")
def town_frozen():
    return freeze_mailing(
        "{{ town }} needs you, {{ first_name }}",
        None,
        "<mj-section><mj-column><mj-text><p>Hello {{ first_name }} {{ last_name }} of "
        "{{ town }}</p></mj-text></mj-column></mj-section>",
    )


def test_message_round_trips_with_unicode(demo_factory):
    built = demo_factory.build(make_recipient())
    message = parse(built.data)
    assert list(message.keys()) == EXPECTED_HEADERS
    assert not message.defects
    assert message["To"].addresses[0].display_name == "Zoë Ñúñez"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["From"].addresses[0].display_name == "Elena Marsh, Rights Watch USA"
    assert message["Subject"] == "28 children could be deported within days"
    assert message["Message-ID"] == built.message_id
    assert re.fullmatch(r"<[0-9a-f]{32}@act\.example\.org>", built.message_id)
    assert email.utils.parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "Zoë, we have just learned" in text and "Zoë, we have just learned" in html
    assert f"Act now (https://act.example.org/a/{TOKEN})" in text
    assert f'href="https://act.example.org/a/{TOKEN}"' in html
    assert f'src="https://act.example.org/o/{TOKEN}.gif"' in html
    assert f'href="https://act.example.org/c/{TOKEN}/0"' in html  # the honeypot
    for part in message.iter_parts():
        assert not part.defects
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"


def test_list_unsubscribe_headers(demo_factory):
    message = parse(demo_factory.build(make_recipient()).data)
    assert message["List-Unsubscribe"] == (
        f"<https://act.example.org/u/{TOKEN}/one-click>, "
        f"<mailto:unsubscribe@act.example.org?subject=unsubscribe-{TOKEN}>"
    )
    assert "zoe@example.com" not in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "<action-alerts.act.example.org>"
    assert message["Feedback-ID"] == "42:alerts:clarion"


def test_every_line_is_crlf_and_at_most_76_chars_in_the_body(demo_factory):
    data = demo_factory.build(make_recipient(first_name="Line\nbreak\rand\r\nmore")).data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    head, body = data.split(b"\r\n\r\n", 1)
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert max(data) < 128  # 7-bit clean: headers are encoded words, bodies quoted-printable


@pytest.mark.parametrize("evil", INJECTIONS)
def test_no_header_injection_through_first_name(demo_factory, evil):
    message = parse(demo_factory.build(make_recipient(first_name=evil)).data)
    assert list(message.keys()) == EXPECTED_HEADERS
    assert "Bcc" not in message and not message.defects
    assert "\n" not in message["To"] and "\u2028" not in message["To"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_no_header_injection_through_subject_and_custom_fields(town_frozen, evil):
    factory = make_factory(town_frozen)
    recipient = make_recipient(town=evil, last_name=evil)
    message = parse(factory.build(recipient).data)
    assert list(message.keys()) == EXPECTED_HEADERS
    assert message["Subject"].startswith("Eve ")
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    text, html = parts(message)
    assert "Hello Zoë Eve" in text


def test_injection_through_subject_prefix_and_mailing_fields_is_refused(town_frozen):
    factory = make_factory(town_frozen)
    message = parse(factory.build(make_recipient(subject_prefix="[TEST]\r\nBcc: x@y.z ")).data)
    assert list(message.keys()) == EXPECTED_HEADERS
    assert message["Subject"].startswith("[TEST] Bcc: x@y.z ")
    with pytest.raises(InvalidAddress):
        make_factory(town_frozen, from_email="a@b.org\r\nBcc: x@y.z")
    with pytest.raises(InvalidAddress):
        make_factory(town_frozen, reply_to="a@b.org\nBcc: x@y.z")
    with pytest.raises(ValueError):
        make_factory(town_frozen, list_id="x\r\nBcc: y")
    message = parse(
        make_factory(town_frozen, from_name="Org\r\nBcc: x@y.z").build(make_recipient()).data
    )
    assert list(message.keys()) == EXPECTED_HEADERS


@pytest.mark.parametrize(
    "address",
    [
        "zoe@example.com\r\nBcc: x@y.z",
        "zoe@example.com\n",
        "zoe @example.com",
        "<zoe@x.org>",
        "zoe@x.org, eve@y.org",
        "zoe",
        "@x.org",
        "zoe@",
        "zo\u2028e@x.org",
        "",
    ],
)
def test_recipient_addresses_with_control_characters_are_refused(demo_factory, address):
    with pytest.raises(InvalidAddress):
        demo_factory.build(make_recipient(email=address))


def test_html_values_are_escaped_but_text_values_are_not(town_frozen):
    factory = make_factory(town_frozen)
    evil = '<script>alert("x")</script>'
    text, html = parts(parse(factory.build(make_recipient(first_name=evil)).data))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert f"Hello {evil}" in text


def test_emoji_and_long_subjects_survive(town_frozen):
    factory = make_factory(town_frozen)
    message = parse(factory.build(make_recipient(town="🚨 Zoë’s town 🏳️‍🌈" * 5)).data)
    assert message["Subject"] == "🚨 Zoë’s town 🏳️‍🌈" * 5 + " needs you, Zoë"
    long_town = "Llanfairpwllgwyngyll and the surrounding villages " * 4
    built = factory.build(make_recipient(town=long_town, first_name="Ana"))
    assert parse(built.data)["Subject"] == " ".join(long_town.split()) + " needs you, Ana"
    head = built.data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"Subject" in line)


def test_ascii_that_looks_like_an_encoded_word_stays_literal(town_frozen):
    factory = make_factory(town_frozen)
    message = parse(factory.build(make_recipient(town="=?utf-8?b?SGk=?=", first_name="Ann")).data)
    assert message["Subject"] == "=?utf-8?b?SGk=?= needs you, Ann"


def test_display_names_with_specials_are_quoted(demo_factory):
    message = parse(
        demo_factory.build(make_recipient(first_name='Pat "PJ"', last_name="O'Neil, Jr.")).data
    )
    assert message["To"].addresses[0].display_name == 'Pat "PJ" O\'Neil, Jr.'


def test_missing_names_fall_back_to_default(demo_factory):
    built = demo_factory.build(make_recipient(first_name=None, last_name=""))
    message = parse(built.data)
    assert message["To"] == "zoe@example.com"
    text, _ = parts(message)
    assert "Friend, we have just learned" in text


def test_test_sends_get_the_subject_prefix(demo_factory):
    message = parse(demo_factory.build(make_recipient(subject_prefix="[TEST] ")).data)
    assert message["Subject"] == "[TEST] 28 children could be deported within days"


def test_a_field_holding_the_boundary_cannot_end_the_part(demo_factory, town_frozen):
    factory = make_factory(town_frozen)
    data = factory.build(make_recipient(town="x")).data
    boundary = parse(data).get_boundary()
    evil = f"\r\n--{boundary}--\r\nContent-Type: text/html\r\n\r\n<b>evil</b>"
    message = parse(factory.build(make_recipient(town=evil)).data)
    assert len(list(message.iter_parts())) == 2
    text, _ = parts(message)
    assert f"--{boundary}--" in text


def test_message_ids_are_unique(demo_factory):
    ids = {demo_factory.build(make_recipient()).message_id for _ in range(200)}
    assert len(ids) == 200
