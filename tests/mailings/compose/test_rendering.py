"""One render function for one person: each mode's links, every call site using it, pure freezing."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from app.extensions import db
from app.links.tokens import Purpose, TokenService
from app.links.urls import INERT_PIXEL_URL
from app.mailings.compose.previews import preview, test_send
from app.mailings.compose.rendering import (
    TEST_PREFIX,
    TEST_SUPPORTER_ID,
    Mode,
    Person,
    Rendered,
    freeze_sources,
    frozen_of,
    render_for,
    sources_of,
)
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.models import Mailing
from app.supporters.models import Supporter
from tests.factories import make_list, make_mailing, make_supporters

REPORT = "https://example.org/report"
BODY = (
    '<mj-section><mj-column><mj-text><p>Dear {{ first_name | default("Friend") }},</p>'
    f'<p><a href="{REPORT}">Read</a> or <a href="{{{{ action_url }}}}">act now</a></p>'
    "</mj-text></mj-column></mj-section>"
)
PATH_PURPOSE = {
    "a": Purpose.ACTION,
    "u": Purpose.UNSUBSCRIBE,
    "p": Purpose.PREFERENCES,
    "v": Purpose.VIEW,
    "o": Purpose.OPEN,
    "c": Purpose.CLICK,
}
_SIGNED = re.compile(r"/([aupvoc])/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


def _signed_for(settings, rendered: str) -> set[tuple[Purpose, int, int]]:
    """Return (purpose, mailing id, supporter id) of every signed link in `rendered`."""
    tokens = TokenService(settings.secret_keys)
    found = set()
    for letter, token in _SIGNED.findall(rendered):
        claims = tokens.loads(PATH_PURPOSE[letter], token)
        found.add((PATH_PURPOSE[letter], claims.mailing_id, claims.supporter_id))
    return found


def _unsigned(settings, rendered: str) -> str:
    """Replace each token by what it says, so renderings signed a second apart compare equal."""
    tokens = TokenService(settings.secret_keys)

    def claims(match: re.Match) -> str:
        purpose = PATH_PURPOSE[match.group(1)]
        said = tokens.loads(purpose, match.group(2))
        return f"/{match.group(1)}/<{purpose}:{said.mailing_id}:{said.supporter_id}>"

    return _SIGNED.sub(claims, rendered)


def _same(settings, got, wanted) -> None:
    assert got.subject == wanted.subject
    assert _unsigned(settings, got.html) == _unsigned(settings, wanted.html)
    assert _unsigned(settings, got.text) == _unsigned(settings, wanted.text)


def _frozen(settings, mailing):
    return freeze_sources(
        sources_of(mailing),
        organisation_name=settings.organisation_name,
        postal_address=settings.postal_address,
        custom_fields=(),
    )


@pytest.fixture
def supporter():
    person = Supporter(email="zoe@example.org", first_name="Zoë", last_name="Ñúñez")
    db.session.add(person)
    db.session.flush()
    return person


def _parts(message) -> dict:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode().replace("\r\n", "\n")
        for part in message.walk()
        if not part.is_multipart()
    }


def test_send_mode_carries_the_recipients_own_tracked_links(settings, supporter):
    mailing = make_mailing(layout=None, body_mjml=BODY, subject="News for {{ first_name }}")
    rendered = render_for(
        _frozen(settings, mailing), mailing.id, Person.of(supporter), Mode.SEND, settings
    )
    assert rendered.subject == "News for Zoë"
    assert "Dear Zoë," in rendered.html and "Dear Zoë," in rendered.text
    signed = _signed_for(settings, rendered.html)
    assert {purpose for purpose, *_ in signed} == set(Purpose)
    assert {(m, s) for _, m, s in signed} == {(mailing.id, supporter.id)}
    assert f'href="{REPORT}"' not in rendered.html  # clicks go through /c/
    assert INERT_PIXEL_URL not in rendered.html


def test_test_mode_links_act_for_nobody_and_track_nothing(settings, supporter):
    mailing = make_mailing(layout=None, body_mjml=BODY, subject="News for {{ first_name }}")
    rendered = render_for(
        _frozen(settings, mailing), mailing.id, Person.of(supporter), Mode.TEST, settings
    )
    assert rendered.subject == TEST_PREFIX + "News for Zoë"
    assert "Dear Zoë," in rendered.html  # the person's merge fields, nobody's links
    signed = _signed_for(settings, rendered.html + rendered.text)
    assert {(m, s) for _, m, s in signed} == {(mailing.id, TEST_SUPPORTER_ID)}
    assert {purpose for purpose, *_ in signed} == {
        Purpose.ACTION,
        Purpose.UNSUBSCRIBE,
        Purpose.PREFERENCES,
        Purpose.VIEW,
    }
    assert f'href="{REPORT}"' in rendered.html and REPORT in rendered.text
    assert INERT_PIXEL_URL in rendered.html


def test_preview_mode_is_untracked_with_the_persons_own_links(settings, supporter):
    mailing = make_mailing(layout=None, body_mjml=BODY)
    rendered = render_for(
        _frozen(settings, mailing), mailing.id, Person.of(supporter), Mode.PREVIEW, settings
    )
    assert not rendered.subject.startswith(TEST_PREFIX)
    signed = _signed_for(settings, rendered.html)
    assert {purpose for purpose, *_ in signed} == {
        Purpose.ACTION,
        Purpose.UNSUBSCRIBE,
        Purpose.PREFERENCES,
        Purpose.VIEW,
    }
    assert {(m, s) for _, m, s in signed} == {(mailing.id, supporter.id)}
    assert f'href="{REPORT}"' in rendered.html
    assert INERT_PIXEL_URL in rendered.html and "/o/" not in rendered.html


def test_browser_mode_keeps_tracked_clicks_but_counts_no_open(settings, supporter):
    mailing = make_mailing(layout=None, body_mjml=BODY)
    rendered = render_for(
        _frozen(settings, mailing), mailing.id, Person.of(supporter), Mode.BROWSER, settings
    )
    signed = _signed_for(settings, rendered.html)
    assert Purpose.CLICK in {purpose for purpose, *_ in signed}
    assert Purpose.OPEN not in {purpose for purpose, *_ in signed}
    assert {(m, s) for _, m, s in signed} == {(mailing.id, supporter.id)}
    assert f'href="{REPORT}"' not in rendered.html
    assert INERT_PIXEL_URL in rendered.html


def test_freezing_is_pure(settings):
    mailing = make_mailing(layout=None, body_mjml=BODY)
    db.session.flush()
    sources = sources_of(mailing)
    first, second = _frozen(settings, mailing), _frozen(settings, mailing)
    assert (first.subject_source, first.html_source, first.text_source, first.links) == (
        second.subject_source,
        second.html_source,
        second.text_source,
        second.links,
    )
    # Nothing stored, nothing added or changed in the session, the sources untouched.
    assert mailing.frozen_at is None and mailing.frozen_html is None and not mailing.links
    assert not db.session.new and not db.session.dirty
    assert sources_of(mailing) == sources
    # A plain dict freezes as well as a mailing's fields: no stand-in object is needed.
    assert (
        freeze_sources(
            dict(sources), organisation_name="Org", postal_address="1 Street", custom_fields=()
        ).links
        == first.links
    )


def test_freezing_before_the_organisation_is_known_keeps_the_footer_placeholders(settings):
    mailing = make_mailing(layout=None, body_mjml=BODY)
    checked = freeze_sources(
        sources_of(mailing), organisation_name=None, postal_address=None, custom_fields=()
    )
    assert "{{ postal_address }}" in checked.html_source
    assert "{{ unsubscribe_url }}" in checked.html_source


def test_preview_is_render_for_preview(settings, supporter):
    mailing = make_mailing(layout=None, body_mjml=BODY)
    shown = preview(mailing, supporter, settings)
    wanted = render_for(
        _frozen(settings, mailing), mailing.id, Person.of(supporter), Mode.PREVIEW, settings
    )
    _same(settings, Rendered(**shown), wanted)


def test_test_send_is_render_for_test(settings, supporter, smtp_sink):
    settings = replace(settings, smtp_url=smtp_sink.url)
    mailing = make_mailing(layout=None, body_mjml=BODY, subject="News for {{ first_name }}")
    [result] = test_send(mailing, ["desk@example.org"], settings, supporter)
    assert result["ok"], result
    [received] = smtp_sink.messages
    parts = _parts(received.message)
    wanted = render_for(
        _frozen(settings, mailing),
        mailing.id,
        Person.of(supporter, "desk@example.org"),
        Mode.TEST,
        settings,
    )
    assert received.message["Subject"] == wanted.subject
    assert _unsigned(settings, parts["text/html"]) == _unsigned(settings, wanted.html)
    assert _unsigned(settings, parts["text/plain"]) == _unsigned(settings, wanted.text)


def _sent_mailing(settings, mailing_list):
    mailing = make_mailing(mailing_list, layout=None, body_mjml=BODY)
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)
    return db.session.get(Mailing, mailing.id)


def test_sending_is_render_for_send(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url)
    audience = make_list()
    [supporter_id] = make_supporters(1, mailing_list=audience)
    mailing = _sent_mailing(settings, audience)
    assert send_batch(mailing.id, 0, settings).sent == 1
    [received] = smtp_sink.messages
    parts = _parts(received.message)
    person = Person.of(db.session.get(Supporter, supporter_id))
    wanted = render_for(frozen_of(mailing), mailing.id, person, Mode.SEND, settings)
    assert " ".join(received.message["Subject"].split()) == wanted.subject
    assert _unsigned(settings, parts["text/html"]) == _unsigned(settings, wanted.html)
    assert _unsigned(settings, parts["text/plain"]) == _unsigned(settings, wanted.text)


def test_view_in_browser_is_render_for_browser(client, settings, redis_conn):
    audience = make_list()
    [supporter_id] = make_supporters(1, mailing_list=audience)
    mailing = _sent_mailing(settings, audience)
    token = TokenService(settings.secret_keys).dumps(Purpose.VIEW, mailing.id, supporter_id)
    page = client.get(f"/v/{token}")
    assert page.status_code == 200
    person = Person.of(db.session.get(Supporter, supporter_id))
    wanted = render_for(frozen_of(mailing), mailing.id, person, Mode.BROWSER, settings)
    # The page is the HTML part as rendered, CRLF line breaks and all.
    html = page.get_data(as_text=True).replace("\r\n", "\n")
    assert _unsigned(settings, html) == _unsigned(settings, wanted.html)
